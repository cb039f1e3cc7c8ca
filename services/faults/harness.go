package faults

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	goruntime "runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/procfs"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/bankbridge/bankbridge/services/devstack/stack"
)

// Config is how the harness starts the stack.
type Config struct {
	// Root is the repository root.
	Root string
	// Users is how many users the load spreads over, each with a token
	// and a linked sandbox bank; default 1,000.
	Users int
	// PostgresURL, when set, is the PostgreSQL server every service with
	// storage runs on, each in a database of its own made for this run
	// (and dropped after), reached through a proxy; empty: SQLite files.
	PostgresURL string
	// Logs receives every process's output.
	Logs io.Writer
}

// Harness is a running dev stack behind proxies, with linked users.
type Harness struct {
	Stack   *stack.Stack
	Proxies *Proxies
	Users   []*User

	cfg     Config
	dataDir string
	dbs     []string // databases made for this run
	http    *http.Client

	mu    sync.Mutex
	conns map[string]*grpc.ClientConn

	// served is the successful load calls the next access-log check reads.
	served servedCalls
}

// User is one load user: a dev token and a link to the sandbox bank.
type User struct {
	ID, Token, Link string
}

// storageServices are the processes of the table that keep state, each
// given a PostgreSQL database of its own when Config.PostgresURL is set.
func storageServices() []string {
	var names []string
	for _, p := range stack.Table() {
		if p.Needs.Storage {
			names = append(names, p.Name)
		}
	}
	return names
}

// Start builds and starts the stack with a proxy in front of each
// dependency, and links cfg.Users users.
func Start(ctx context.Context, cfg Config) (h *Harness, err error) {
	if cfg.Users == 0 {
		cfg.Users = 1000
	}
	if cfg.Logs == nil {
		cfg.Logs = io.Discard
	}
	h = &Harness{cfg: cfg, Proxies: NewProxies(), conns: map[string]*grpc.ClientConn{}}
	defer func() {
		if err != nil {
			h.Close()
		}
	}()
	if h.dataDir, err = os.MkdirTemp("", "bankbridge-faults-"); err != nil {
		return h, err
	}
	opts := stack.Options{
		Root: cfg.Root, DataDir: h.dataDir, FreePorts: true, Logs: cfg.Logs,
		AddrRewrite: h.Proxies.Rewrite,
		ExtraArgs:   map[string][]string{},
	}
	deps := []string{"vault", "nats"}
	for _, p := range stack.Table() {
		if p.Kind == stack.Bank || p.Kind == stack.Service {
			deps = append(deps, p.Name)
		}
	}
	if err := h.Proxies.Reserve(deps...); err != nil {
		return h, err
	}
	if cfg.PostgresURL != "" {
		if err := h.makeDatabases(ctx, &opts); err != nil {
			return h, err
		}
	}
	if err := stack.Build(ctx, opts); err != nil {
		return h, err
	}
	if h.Stack, err = stack.Start(ctx, opts); err != nil {
		return h, err
	}
	h.http = h.Stack.HTTPClient()
	users, err := h.LinkUsers(ctx, "fu", cfg.Users, "alice")
	if err != nil {
		return h, err
	}
	h.Users = users
	return h, nil
}

// makeDatabases makes one database per service with storage, and points
// each service at it through the "postgres" proxy.
func (h *Harness) makeDatabases(ctx context.Context, opts *stack.Options) error {
	conn, err := pgx.Connect(ctx, h.cfg.PostgresURL)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	defer conn.Close(ctx)
	cc := conn.Config()
	proxied := h.Proxies.AddRewrite("postgres", fmt.Sprintf("%s:%d", cc.Host, cc.Port))
	run := randomHex(4)
	for _, svc := range storageServices() {
		db := "faults_" + run + "_" + svc
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{db}.Sanitize()); err != nil {
			return fmt.Errorf("postgres: create database %s: %w", db, err)
		}
		h.dbs = append(h.dbs, db)
		opts.ExtraArgs[svc] = append(opts.ExtraArgs[svc],
			fmt.Sprintf("--database-url=postgres://%s@%s/%s?sslmode=disable", cc.User, proxied, db))
	}
	return nil
}

// Close stops the stack and the proxies and drops what the run made.
func (h *Harness) Close() {
	h.mu.Lock()
	for _, c := range h.conns {
		_ = c.Close()
	}
	h.mu.Unlock()
	if h.Stack != nil {
		h.Stack.Stop()
	}
	h.Proxies.Close()
	if len(h.dbs) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if conn, err := pgx.Connect(ctx, h.cfg.PostgresURL); err == nil {
			for _, db := range h.dbs {
				_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{db}.Sanitize()+" WITH (FORCE)")
			}
			_ = conn.Close(ctx)
		}
	}
	if h.dataDir != "" {
		_ = os.RemoveAll(h.dataDir)
	}
}

// Conn is a gRPC connection to a service of the stack, as a product team
// makes one: TLS trusting the stack's CA, no client certificate.
func (h *Harness) Conn(service string) *grpc.ClientConn {
	h.mu.Lock()
	defer h.mu.Unlock()
	if c, ok := h.conns[service]; ok {
		return c
	}
	c, err := grpc.NewClient(h.Stack.Addr(service), grpc.WithTransportCredentials(credentials.NewTLS(h.Stack.ClientTLS())))
	if err != nil {
		panic(err) // only for a malformed address
	}
	h.conns[service] = c
	return c
}

// linkScopes and linkPurposes are what every load user's link grants:
// balance reads and shipment writes.
var (
	linkScopes   = []string{"SCOPE_ACCOUNTS", "SCOPE_BALANCES", "SCOPE_TRANSACTIONS", "SCOPE_SHIPPING"}
	linkPurposes = []string{"PURPOSE_ACCOUNT_INFORMATION", "PURPOSE_ORDER_TRACKING"}
)

// LinkUsers makes n users named prefix0000.., each with a dev token and a
// verified link to the sandbox bank as the sandbox customer login.
func (h *Harness) LinkUsers(ctx context.Context, prefix string, n int, login string) ([]*User, error) {
	users := make([]*User, n)
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i := range users {
		g.Go(func() error {
			u := &User{ID: fmt.Sprintf("%s%04d", prefix, i)}
			var err error
			if u.Token, err = h.DevToken(ctx, u.ID); err != nil {
				return err
			}
			if u.Link, err = h.Link(ctx, u, login); err != nil {
				return err
			}
			users[i] = u
			return nil
		})
	}
	return users, g.Wait()
}

// DevToken is a user token from the gateway's dev issuer.
func (h *Harness) DevToken(ctx context.Context, user string) (string, error) {
	r, err := h.REST(ctx, http.MethodPost, "/v1/dev/tokens", "", "", "", map[string]string{"user": user})
	if err != nil {
		return "", err
	}
	tok, _ := r.Body["access_token"].(string)
	if r.Status != http.StatusOK || tok == "" {
		return "", fmt.Errorf("dev token: HTTP %d %s", r.Status, r.Raw)
	}
	return tok, nil
}

// Link links u's sandbox bank as login and returns the link's name.
func (h *Harness) Link(ctx context.Context, u *User, login string) (string, error) {
	r, err := h.REST(ctx, http.MethodPost, "/v1/users/"+u.ID+"/links", u.Token, "CONSENT_MANAGEMENT", "", map[string]any{
		"bank_id": "sandbox", "scopes": linkScopes, "purposes": linkPurposes, "bank_login_hint": login,
	})
	if err != nil {
		return "", err
	}
	name, _ := nested(r.Body, "link", "name").(string)
	if r.Status != http.StatusOK || name == "" {
		return "", fmt.Errorf("create link: HTTP %d %s", r.Status, r.Raw)
	}
	v, err := h.REST(ctx, http.MethodPost, "/v1/"+name+":verify", u.Token, "CONSENT_MANAGEMENT", "", map[string]any{"code": "123456"})
	if err != nil {
		return "", err
	}
	if v.Status != http.StatusOK || nested(v.Body, "link", "state") != "CONSENT_STATE_VALID" {
		return "", fmt.Errorf("verify link: HTTP %d %s", v.Status, v.Raw)
	}
	return name, nil
}

// Reply is one REST answer of the gateway.
type Reply struct {
	Status int
	Header http.Header
	Body   map[string]any
	Raw    string
}

// Reason is the ErrorInfo reason of an error reply, "" for none.
func (r Reply) Reason() string {
	details, _ := r.Body["details"].([]any)
	for _, d := range details {
		m, _ := d.(map[string]any)
		if m["@type"] == "type.googleapis.com/google.rpc.ErrorInfo" {
			s, _ := m["reason"].(string)
			return s
		}
	}
	return ""
}

// REST is one call to the gateway; a POST carries key as its
// Idempotency-Key, a fresh one when key is "".
func (h *Harness) REST(ctx context.Context, method, path, token, purpose, key string, body any) (Reply, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return Reply{}, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, h.Stack.GatewayURL+path, rd)
	if err != nil {
		return Reply{}, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if purpose != "" {
		req.Header.Set("Bankbridge-Purpose", purpose)
	}
	if method == http.MethodPost {
		if key == "" {
			key = randomHex(12)
		}
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := h.http.Do(req)
	if err != nil {
		return Reply{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return Reply{}, err
	}
	out := Reply{Status: resp.StatusCode, Header: resp.Header, Raw: string(raw)}
	_ = json.Unmarshal(raw, &out.Body)
	return out, nil
}

func nested(m map[string]any, keys ...string) any {
	var v any = m
	for _, k := range keys {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = mm[k]
	}
	return v
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// RSS is the resident memory of a process of the stack, in bytes, read
// from /proc; 0 when it is not running.
func (h *Harness) RSS(name string) int64 {
	pid := h.Stack.PID(name)
	if pid == 0 {
		return 0
	}
	p, err := procfs.NewProc(pid)
	if err != nil {
		return 0
	}
	st, err := p.NewStatus()
	if err != nil {
		return 0
	}
	return int64(st.VmRSS)
}

// Goroutines is a service's go_goroutines from its admin /metrics, -1
// when it does not export it.
func (h *Harness) Goroutines(ctx context.Context, name string) int {
	addr := h.Stack.AdminAddr(name)
	if addr == "" {
		return -1
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+addr+"/metrics", nil)
	resp, err := h.http.Do(req)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "go_goroutines "); ok {
			var n float64
			_, _ = fmt.Sscanf(rest, "%g", &n)
			return int(n)
		}
	}
	return -1
}

// CPUTimes are the CPU seconds (user and system) each process of the
// stack has used so far, by name, with the harness's own process (the load
// generator and the proxies) as "harness". A load row reads them before
// and after its run, to say where the machine's cores went.
func (h *Harness) CPUTimes() map[string]float64 {
	out := map[string]float64{}
	for name, pid := range h.Stack.PIDs() {
		if s, ok := cpuSeconds(fmt.Sprint(pid)); ok {
			out[name] = s
		}
	}
	if s, ok := cpuSeconds("self"); ok {
		out["harness"] = s
	}
	// The servers the stack uses but does not run: their share of the
	// cores is the stack's too.
	for name, s := range serverCPUSeconds() {
		out[name] = s
	}
	if s, ok := machineBusySeconds(); ok {
		out[machineKey] = s
	}
	return out
}

// machineKey is the CPUTimes entry of the whole machine's busy time.
const machineKey = "(machine)"

// serverProcesses are the local servers a stack may use, by the command
// name of their processes (/proc/<pid>/comm), and how a row names them.
var serverProcesses = map[string]string{"postgres": "postgres", "nats-server": "nats", "redis-server": "redis"}

// serverCPUSeconds are the CPU seconds of every process of
// serverProcesses, as "postgres[pid]" (PostgreSQL runs one per
// connection): cpuShares adds up each server's processes, counting a
// process from its start when it started between two readings, and
// leaving out one that ended (its time is gone from /proc).
func serverCPUSeconds() map[string]float64 {
	out := map[string]float64{}
	procs, err := procfs.AllProcs()
	if err != nil {
		return out
	}
	for _, p := range procs {
		comm, err := p.Comm()
		if err != nil {
			continue
		}
		name, ok := serverProcesses[comm]
		if !ok {
			continue
		}
		if st, err := p.Stat(); err == nil {
			out[fmt.Sprintf("%s[%d]", name, p.PID)] = st.CPUTime()
		}
	}
	return out
}

// machineBusySeconds is the CPU time every core has spent busy (all but
// idle and iowait) since boot, from /proc/stat.
func machineBusySeconds() (float64, bool) {
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return 0, false
	}
	st, err := fs.Stat()
	if err != nil {
		return 0, false
	}
	c := st.CPUTotal
	return c.User + c.Nice + c.System + c.IRQ + c.SoftIRQ + c.Steal, true
}

// cpuSeconds is the CPU time (user and system) process pid ("self", or a
// number) has used.
func cpuSeconds(pid string) (float64, bool) {
	var (
		p   procfs.Proc
		err error
	)
	if pid == "self" {
		p, err = procfs.Self()
	} else {
		var n int
		if n, err = strconv.Atoi(pid); err == nil {
			p, err = procfs.NewProc(n)
		}
	}
	if err != nil {
		return 0, false
	}
	st, err := p.Stat()
	if err != nil {
		return 0, false
	}
	return st.CPUTime(), true
}

// cpuShares describes the cores each process used between two CPUTimes
// readings over elapsed, busiest first: "balance 0.71, consent 0.52, ...".
func cpuShares(before, after map[string]float64, elapsed time.Duration) string {
	type use struct {
		name  string
		cores float64
	}
	var uses []use
	total, machine := 0.0, -1.0
	byName := map[string]float64{}
	for key, a := range after {
		name, perProcess := strings.CutSuffix(key, "]")
		if perProcess {
			name, _, _ = strings.Cut(name, "[")
		}
		b, ok := before[key]
		if (!ok && !perProcess) || elapsed <= 0 {
			continue
		}
		c := (a - b) / elapsed.Seconds()
		if name == machineKey {
			machine = c
			continue
		}
		total += c
		byName[name] += c
	}
	for name, c := range byName {
		if c >= 0.01 {
			uses = append(uses, use{name, c})
		}
	}
	sort.Slice(uses, func(i, j int) bool { return uses[i].cores > uses[j].cores })
	parts := make([]string, 0, len(uses))
	for _, u := range uses {
		parts = append(parts, fmt.Sprintf("%s %.2f", u.name, u.cores))
	}
	out := fmt.Sprintf("%.2f in all (%s)", total, strings.Join(parts, ", "))
	if machine >= 0 {
		out += fmt.Sprintf("; the machine's %d cores %.2f busy", goruntime.NumCPU(), machine)
	}
	return out
}
