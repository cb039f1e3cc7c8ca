package main

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestWrkSendsEachUsersOwnRequest runs the real wrk with wrk.lua against an
// HTTPS server that refuses a request whose token is not its path's
// user's: every request must pass, every user must be reached, and the
// result line must count what the server saw.
func TestWrkSendsEachUsersOwnRequest(t *testing.T) {
	if _, err := exec.LookPath("wrk"); err != nil {
		t.Skip("wrk is not installed (make bench-ratio installs it)")
	}
	var mu sync.Mutex
	seen := map[string]int{}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user := strings.Split(strings.TrimPrefix(r.URL.Path, "/v1/users/"), "/")[0]
		if r.Header.Get("Authorization") != "Bearer token-of-"+user || r.Header.Get("Bankbridge-Purpose") != "ACCOUNT_INFORMATION" {
			http.Error(w, "not this user's token", http.StatusForbidden)
			return
		}
		mu.Lock()
		seen[user]++
		mu.Unlock()
		_, _ = w.Write([]byte(`{}`))
	}))
	defer srv.Close()

	dir := t.TempDir()
	lua, users := filepath.Join(dir, "wrk.lua"), filepath.Join(dir, "users.txt")
	var lines bytes.Buffer
	const n = 7
	for i := range n {
		fmt.Fprintf(&lines, "/v1/users/u%d/accounts/sandbox~a%d/balance token-of-u%d\n", i, i, i)
	}
	for path, data := range map[string][]byte{lua: wrkScript, users: lines.Bytes()} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	res, err := runWrk(t.Context(), "test", lua, users, srv.URL, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if res.errors != 0 || res.calls == 0 {
		t.Errorf("%d requests, %d errors (%s): want requests and no error", res.calls, res.errors, res.detail)
	}
	mu.Lock()
	defer mu.Unlock()
	total := 0
	for i := range n {
		if seen[fmt.Sprintf("u%d", i)] == 0 {
			t.Errorf("no request for u%d: %v", i, seen)
		}
		total += seen[fmt.Sprintf("u%d", i)]
	}
	if int64(total) < res.calls {
		t.Errorf("wrk counts %d requests, the server answered %d", res.calls, total)
	}
}

// TestReport: the table names each run and says, for each ratio, whether
// its target is met.
func TestReport(t *testing.T) {
	r := &report{users: 1000, duration: 15 * time.Second,
		grpcStack: result{name: "gRPC GetBalance, stack", rps: 1000, p99ms: 260},
		grpcEcho:  result{name: "gRPC health Check, echo", rps: 14500, p99ms: 9},
		restStack: result{name: "REST GET balance, gateway", rps: 800, errors: 2, detail: "HTTP status >= 400 2"},
		restEcho:  result{name: "REST GET JSON, echo", rps: 20000},
		halfLoad:  result{name: "gRPC GetBalance, stack, at 500/s", rps: 500, p99ms: 20},
	}
	var out bytes.Buffer
	r.print(&out)
	for _, want := range []string{
		"gRPC stack / echo, req/s 0.069 >= 0.30 NOT MET",
		"REST gateway / gRPC stack, req/s 0.800 >= 0.70 met",
		"p99 at half max rate / echo p99 2.2 <= 3 met",
		"errors, all runs 2 0 NOT MET",
		"REST GET balance, gateway 800 0.00 0.00 0 2 (HTTP status >= 400 2)",
	} {
		if !strings.Contains(strings.Join(strings.Fields(out.String()), " "), want) {
			t.Errorf("the report lacks %q:\n%s", want, out.String())
		}
	}
}
