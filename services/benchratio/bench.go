package main

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/bankbridge/bankbridge/services/devstack/stack"
)

//go:embed wrk.lua
var wrkScript []byte

// getBalance is the method the gRPC runs call on the stack.
const getBalance = "bankbridge.balance.v1.BalanceService/GetBalance"

// bench holds what the runs need: the stack, the echo, and the users'
// files for ghz-bench and wrk.
type bench struct {
	cfg   config
	stack *stack.Stack
	echo  *echoProc
	// ghzUsers has "<user>\t<token>\t<GetBalanceRequest JSON>" lines,
	// wrkUsers "<path> <token>" lines, and wrkLua the script reading them.
	ghzUsers, wrkUsers, wrkLua string
	protoset                   string
	users                      int
}

func newBench(cfg config, s *stack.Stack, echo *echoProc, dir string, users []user) (*bench, error) {
	b := &bench{cfg: cfg, stack: s, echo: echo, users: len(users),
		ghzUsers: filepath.Join(dir, "ghz-users.tsv"), wrkUsers: filepath.Join(dir, "wrk-users.txt"), wrkLua: filepath.Join(dir, "wrk.lua"),
		protoset: filepath.Join(cfg.root, "gen", "descriptor", "bankbridge.binpb")}
	var ghz, wrk bytes.Buffer
	for _, u := range users {
		req, _ := json.Marshal(map[string]string{"name": u.balance})
		fmt.Fprintf(&ghz, "%s\t%s\t%s\n", u.id, u.token, req)
		fmt.Fprintf(&wrk, "/v1/%s %s\n", u.balance, u.token)
	}
	for path, data := range map[string][]byte{b.ghzUsers: ghz.Bytes(), b.wrkUsers: wrk.Bytes(), b.wrkLua: wrkScript} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return nil, err
		}
	}
	if _, err := os.Stat(b.protoset); err != nil {
		return nil, fmt.Errorf("the contracts' descriptor set: %w", err)
	}
	return b, nil
}

// result is one run's figures.
type result struct {
	name   string
	calls  int64
	rps    float64
	p50ms  float64
	p99ms  float64
	errors int64
	// detail says what the errors were (ghz: status codes; wrk: kinds).
	detail string
}

// ghzRun runs ghz-bench for the run's duration: on GetBalance spread over
// the users (stack), or on the echo's health Check; rps 0 loads as hard as
// the server answers.
func (b *bench) ghzRun(ctx context.Context, name string, onStack bool, rps int, d time.Duration) (result, error) {
	args := []string{"--concurrency", strconv.Itoa(ghzConcurrency), "--connections", strconv.Itoa(ghzConnections),
		"--duration", d.String(), "--rps", strconv.Itoa(rps)}
	if onStack {
		args = append(args, "--host", b.stack.Addr("balance"), "--cacert", b.stack.CAFile, "--call", getBalance,
			"--protoset", b.protoset, "--users", b.ghzUsers, "--purpose", "ACCOUNT_INFORMATION")
	} else {
		args = append(args, "--host", b.echo.grpcAddr, "--cacert", b.echo.caFile, "--call", "grpc.health.v1.Health/Check")
	}
	cmd := exec.CommandContext(ctx, filepath.Join(b.cfg.bin, "ghz-bench"), args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return result{}, fmt.Errorf("ghz-bench %s: %w", name, err)
	}
	var r struct {
		Calls  int64            `json:"calls"`
		RPS    float64          `json:"rps"`
		P50ms  float64          `json:"p50_ms"`
		P99ms  float64          `json:"p99_ms"`
		Errors int64            `json:"errors"`
		ByCode map[string]int64 `json:"by_code"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		return result{}, fmt.Errorf("ghz-bench %s: %w: %s", name, err, out)
	}
	var detail []string
	for code, n := range r.ByCode {
		detail = append(detail, fmt.Sprintf("%s %d", code, n))
	}
	return result{name: name, calls: r.Calls, rps: r.RPS, p50ms: r.P50ms, p99ms: r.P99ms, errors: r.Errors, detail: strings.Join(detail, ", ")}, nil
}

// wrkRun runs wrk with the users' requests against base (the gateway, or
// the echo's JSON handler).
func (b *bench) wrkRun(ctx context.Context, name, base string, d time.Duration) (result, error) {
	return runWrk(ctx, name, b.wrkLua, b.wrkUsers, base, d)
}

// runWrk runs wrk with the script lua reading the users file against base
// for d (whole seconds) and reads its result.
func runWrk(ctx context.Context, name, lua, users, base string, d time.Duration) (result, error) {
	cmd := exec.CommandContext(ctx, "wrk", "-t", strconv.Itoa(wrkThreads), "-c", strconv.Itoa(wrkConnections),
		"-d", fmt.Sprintf("%ds", int(d.Seconds())), "--timeout", "20s", "-s", lua, base, "--", users)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return result{}, fmt.Errorf("wrk %s: %w: %s", name, err, out)
	}
	return parseWrk(name, out)
}

// parseWrk reads the line wrk.lua's done() prints.
func parseWrk(name string, out []byte) (result, error) {
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "benchratio-wrk ")
		if !ok {
			continue
		}
		var w struct {
			Requests   int64 `json:"requests"`
			DurationUS int64 `json:"duration_us"`
			P50US      int64 `json:"p50_us"`
			P99US      int64 `json:"p99_us"`
			Connect    int64 `json:"connect"`
			Read       int64 `json:"read"`
			Write      int64 `json:"write"`
			Status     int64 `json:"status"`
			Timeout    int64 `json:"timeout"`
		}
		if err := json.Unmarshal([]byte(line), &w); err != nil {
			return result{}, fmt.Errorf("wrk %s: %w: %s", name, err, line)
		}
		if w.DurationUS <= 0 {
			return result{}, fmt.Errorf("wrk %s: no duration: %s", name, line)
		}
		r := result{name: name, calls: w.Requests, rps: float64(w.Requests) / (float64(w.DurationUS) / 1e6),
			p50ms: float64(w.P50US) / 1000, p99ms: float64(w.P99US) / 1000,
			errors: w.Connect + w.Read + w.Write + w.Status + w.Timeout}
		var detail []string
		for _, e := range []struct {
			what string
			n    int64
		}{{"connect", w.Connect}, {"read", w.Read}, {"write", w.Write}, {"HTTP status >= 400", w.Status}, {"timeout", w.Timeout}} {
			if e.n > 0 {
				detail = append(detail, fmt.Sprintf("%s %d", e.what, e.n))
			}
		}
		r.detail = strings.Join(detail, ", ")
		return r, nil
	}
	return result{}, fmt.Errorf("wrk %s: no result line in its output:\n%s", name, out)
}

// measure makes the runs, in an order that leaves each one the machine to
// itself: a warm-up on the stack, the stack and the echo over gRPC, the
// gateway and the echo over REST, then the stack at half its rate.
func (b *bench) measure(ctx context.Context) (*report, error) {
	rep := &report{users: b.users, duration: b.cfg.duration}
	readsBefore, err := b.vaultReads(ctx)
	if err != nil {
		return nil, err
	}
	if b.cfg.warmup > 0 {
		step(fmt.Sprintf("warm-up, %s of ghz and of wrk on the stack", b.cfg.warmup))
		if _, err := b.ghzRun(ctx, "warm-up", true, 0, b.cfg.warmup); err != nil {
			return nil, err
		}
		if _, err := b.wrkRun(ctx, "warm-up", b.stack.GatewayURL, max(b.cfg.warmup, time.Second)); err != nil {
			return nil, err
		}
	}
	d := b.cfg.duration
	step("ghz GetBalance on the stack")
	if rep.grpcStack, err = b.ghzRun(ctx, "gRPC GetBalance, stack", true, 0, d); err != nil {
		return nil, err
	}
	step("ghz health Check on the echo")
	if rep.grpcEcho, err = b.ghzRun(ctx, "gRPC health Check, echo", false, 0, d); err != nil {
		return nil, err
	}
	step("wrk GET balance on the gateway")
	if rep.restStack, err = b.wrkRun(ctx, "REST GET balance, gateway", b.stack.GatewayURL, d); err != nil {
		return nil, err
	}
	step("wrk GET on the echo")
	if rep.restEcho, err = b.wrkRun(ctx, "REST GET JSON, echo", "https://"+b.echo.httpAddr, d); err != nil {
		return nil, err
	}
	half := max(1, int(rep.grpcStack.rps/2))
	step(fmt.Sprintf("ghz GetBalance on the stack at %d/s", half))
	if rep.halfLoad, err = b.ghzRun(ctx, fmt.Sprintf("gRPC GetBalance, stack, at %d/s", half), true, half, d); err != nil {
		return nil, err
	}
	readsAfter, err := b.vaultReads(ctx)
	if err != nil {
		return nil, err
	}
	rep.balanceCalls = rep.grpcStack.calls + rep.restStack.calls + rep.halfLoad.calls
	rep.vaultReads = map[string]float64{}
	for bank, n := range readsAfter {
		rep.vaultReads[bank] = n - readsBefore[bank]
	}
	return rep, nil
}

func step(what string) { fmt.Fprintln(os.Stderr, "benchratio:", what+"...") }

// readsLine is one series of the credential provider's Vault read counter
// (platform/credentials) on a service's /metrics.
var readsLine = regexp.MustCompile(`^bankbridge_credentials_reads_total\{([^}]*)\} ([0-9.e+]+)$`)
var bankLabel = regexp.MustCompile(`bank_id="([^"]*)"`)

// vaultReads sums, by bank, the Vault reads of bank credentials every
// service of the stack has made so far, from their /metrics.
func (b *bench) vaultReads(ctx context.Context) (map[string]float64, error) {
	reads := map[string]float64{}
	for _, p := range stack.Table() {
		if p.Kind != stack.Service || !p.Needs.Banks {
			continue
		}
		body, err := b.get(ctx, "https://"+b.stack.AdminAddr(p.Name)+"/metrics")
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(bytes.NewReader(body))
		sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
		for sc.Scan() {
			m := readsLine.FindStringSubmatch(sc.Text())
			if m == nil {
				continue
			}
			bank := bankLabel.FindStringSubmatch(m[1])
			if bank == nil {
				continue
			}
			v, _ := strconv.ParseFloat(m[2], 64)
			reads[bank[1]] += v
		}
	}
	return reads, nil
}

func (b *bench) get(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := b.stack.HTTPClient().Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: HTTP %d: %s", url, resp.StatusCode, body)
	}
	return body, nil
}
