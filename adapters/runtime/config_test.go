package runtime_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bankbridge/bankbridge/adapters/runtime"
)

func TestParseConfigDefaults(t *testing.T) {
	t.Parallel()
	banks, err := runtime.ParseConfig([]byte(`
banks:
  - id: sandbox
    display_name: Sandbox Bank
    kind: inprocess
    in_process: sandbox
  - id: acme
    display_name: ACME Bank
    kind: remote
    endpoint: acme-adapter.bankbridge.svc:443
    vault_path: banks/acme-prod
    timeout: 2s
    rate_limit: {per_second: 10.5, burst: 20}
    breaker: {failure_ratio: 0.5, min_requests: 30, window: 30s, open_for: 1m}
    max_in_flight: 16
    keepalive: {time: 20s, timeout: 2s}
    retry: {disabled: true}
    tls:
      ca_file: /etc/bankbridge/acme-ca.pem
      server_name: adapter.acme.example
      client_cert_from_vault: true
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []runtime.Bank{
		{
			ID: "sandbox", DisplayName: "Sandbox Bank", Kind: runtime.KindInProcess, InProcess: "sandbox",
			VaultPath: "banks/sandbox", Timeout: 5 * time.Second,
			RateLimit:   runtime.RateLimit{PerSecond: 50, Burst: 100},
			Breaker:     runtime.Breaker{FailureRatio: 0.6, MinRequests: 40, Window: 10 * time.Second, OpenFor: 30 * time.Second},
			MaxInFlight: 64,
			Keepalive:   runtime.Keepalive{Time: 10 * time.Second, Timeout: 5 * time.Second},
			Retry:       runtime.Retry{Backoff: 50 * time.Millisecond},
		},
		{
			ID: "acme", DisplayName: "ACME Bank", Kind: runtime.KindRemote, Endpoint: "acme-adapter.bankbridge.svc:443",
			VaultPath: "banks/acme-prod", Timeout: 2 * time.Second,
			RateLimit:   runtime.RateLimit{PerSecond: 10.5, Burst: 20},
			Breaker:     runtime.Breaker{FailureRatio: 0.5, MinRequests: 30, Window: 30 * time.Second, OpenFor: time.Minute},
			MaxInFlight: 16,
			Keepalive:   runtime.Keepalive{Time: 20 * time.Second, Timeout: 2 * time.Second},
			Retry:       runtime.Retry{Disabled: true, Backoff: 50 * time.Millisecond},
		},
	}
	wantTLS := runtime.TLS{CAFile: "/etc/bankbridge/acme-ca.pem", ServerName: "adapter.acme.example", ClientCertFromVault: true}
	if len(banks) != 2 {
		t.Fatalf("got %d banks, want 2", len(banks))
	}
	if banks[0].TLS != nil || banks[1].TLS == nil || *banks[1].TLS != wantTLS {
		t.Errorf("TLS = %+v, %+v; want nil, %+v", banks[0].TLS, banks[1].TLS, wantTLS)
	}
	for i := range banks {
		banks[i].TLS = nil
		if banks[i] != want[i] {
			t.Errorf("banks[%d] = %+v\nwant %+v", i, banks[i], want[i])
		}
	}
}

func TestParseConfigErrors(t *testing.T) {
	t.Parallel()
	const sandbox = "  - id: sandbox\n    display_name: Sandbox Bank\n    kind: inprocess\n    in_process: sandbox\n"
	tests := []struct {
		name string
		yaml string
		// want are the lines the error must hold, notWant what it must not.
		want, notWant []string
	}{
		{
			name: "remote without endpoint",
			yaml: "banks:\n" + sandbox + "  - id: dave\n    display_name: Dave's Bank\n    kind: remote\n",
			want: []string{`banks[1] (id "dave"): endpoint: required for kind remote`},
		},
		{
			name: "unknown field",
			yaml: "banks:\n  - id: acme\n    display_name: ACME\n    kind: remote\n    endpont: acme:443\n",
			want: []string{`banks[0] (id "acme"): endpont: unknown field (line 5)`, `banks[0] (id "acme"): endpoint: required for kind remote`},
		},
		{
			name: "unknown nested field",
			yaml: "banks:\n" + strings.TrimSuffix(sandbox, "\n") + "\n    rate_limit: {per_sec: 5}\n",
			want: []string{`banks[0] (id "sandbox"): rate_limit.per_sec: unknown field`},
		},
		{
			name: "unknown top-level field",
			yaml: "bank:\n" + sandbox,
			want: []string{"bank: unknown field (line 1)", "banks: no banks configured"},
		},
		{
			name: "duration without unit",
			yaml: "banks:\n" + sandbox + "    timeout: 5\n",
			want: []string{`banks[0] (id "sandbox"): timeout: want a duration such as "5s" or "1m30s", got "5" (line 6)`},
		},
		{
			name: "nested duration",
			yaml: "banks:\n" + sandbox + "    breaker: {open_for: soon}\n",
			want: []string{`banks[0] (id "sandbox"): breaker.open_for: want a duration`},
		},
		{
			name: "negative burst",
			yaml: "banks:\n" + sandbox + "    rate_limit: {burst: -1}\n",
			want: []string{`banks[0] (id "sandbox"): rate_limit.burst: must be between 0 and`},
		},
		{
			name: "rate not a number",
			yaml: "banks:\n" + sandbox + "    rate_limit: {per_second: lots}\n",
			want: []string{`banks[0] (id "sandbox"): rate_limit.per_second: want a number, got "lots"`},
		},
		{
			name: "bad id",
			yaml: "banks:\n  - id: Sandbox Bank\n    display_name: Sandbox Bank\n    kind: inprocess\n    in_process: sandbox\n",
			want: []string{`banks[0] (id "Sandbox Bank"): id: must match`},
		},
		{
			name: "missing id and kind",
			yaml: "banks:\n  - display_name: Nameless\n",
			want: []string{`banks[0]: id: required`, `banks[0]: kind: required: remote or inprocess`},
		},
		{
			name: "unknown kind",
			yaml: "banks:\n  - id: acme\n    display_name: ACME\n    kind: http\n",
			want: []string{`banks[0] (id "acme"): kind: must be remote or inprocess, got "http"`},
		},
		{
			name: "endpoint with a scheme",
			yaml: "banks:\n  - id: acme\n    display_name: ACME\n    kind: remote\n    endpoint: https://acme.example\n",
			want: []string{`banks[0] (id "acme"): endpoint: want host:port`},
		},
		{
			name: "endpoint with a bad port",
			yaml: "banks:\n  - id: acme\n    display_name: ACME\n    kind: remote\n    endpoint: acme.example:99999\n",
			want: []string{`banks[0] (id "acme"): endpoint: port must be 1 to 65535`},
		},
		{
			name: "in-process with endpoint and tls",
			yaml: "banks:\n" + sandbox + "    endpoint: 127.0.0.1:9400\n    tls: {server_name: x}\n",
			want: []string{`banks[0] (id "sandbox"): endpoint: only for kind remote`, `banks[0] (id "sandbox"): tls: only for kind remote`},
		},
		{
			name: "remote with in_process",
			yaml: "banks:\n  - id: acme\n    display_name: ACME\n    kind: remote\n    endpoint: acme:443\n    in_process: sandbox\n",
			want: []string{`banks[0] (id "acme"): in_process: only for kind inprocess`},
		},
		{
			name: "vault path escaping its mount",
			yaml: "banks:\n" + sandbox + "    vault_path: banks/../../secret\n",
			want: []string{`banks[0] (id "sandbox"): vault_path: want segments`},
		},
		{
			name: "display name missing",
			yaml: "banks:\n  - id: acme\n    kind: remote\n    endpoint: acme:443\n",
			want: []string{`banks[0] (id "acme"): display_name: required`},
		},
		{
			name: "two client certificates",
			yaml: "banks:\n  - id: acme\n    display_name: ACME\n    kind: remote\n    endpoint: acme:443\n    tls: {client_cert_from_vault: true, client_cert_from_service: true}\n",
			want: []string{`banks[0] (id "acme"): tls.client_cert_from_service: not with client_cert_from_vault`},
		},
		{
			name: "tls flag not a bool",
			yaml: "banks:\n  - id: acme\n    display_name: ACME\n    kind: remote\n    endpoint: acme:443\n    tls: {client_cert_from_vault: yes}\n",
			want: []string{`banks[0] (id "acme"): tls.client_cert_from_vault: want true or false, got "yes"`},
		},
		{
			name: "field given twice",
			yaml: "banks:\n" + sandbox + "    kind: remote\n",
			want: []string{`banks[0] (id "sandbox"): kind: given twice (line 6)`},
			// The decoder reads nothing of a mapping with a repeated key:
			// its fields are unknown, not missing.
			notWant: []string{"display_name: required", "in_process: required"},
		},
		{
			name: "duplicate ids",
			yaml: "banks:\n" + sandbox + sandbox,
			want: []string{`banks[1] (id "sandbox"): id: duplicate of banks[0]`},
		},
		{
			name: "every broken bank is reported",
			yaml: "banks:\n  - id: a1\n    display_name: A\n    kind: remote\n  - id: b2\n    display_name: B\n    kind: inprocess\n",
			want: []string{`banks[0] (id "a1"): endpoint: required for kind remote`, `banks[1] (id "b2"): in_process: required for kind inprocess`},
		},
		{
			name: "two bad values on one line",
			yaml: "banks:\n" + sandbox + "    rate_limit: {per_second: lots, burst: -1}\n",
			want: []string{`banks[0] (id "sandbox"): rate_limit.per_second: want a number, got "lots" (line 6)`, `banks[0] (id "sandbox"): rate_limit.burst: must be between 0 and 2147483647, got -1 (line 6)`},
		},
		{
			name: "count too large",
			yaml: "banks:\n" + sandbox + "    breaker:\n      min_requests: 99999999999\n",
			want: []string{`banks[0] (id "sandbox"): breaker.min_requests: must be between 0 and 2147483647, got 99999999999 (line 7)`},
		},
		{
			name: "breaker ratio out of range",
			yaml: "banks:\n" + sandbox + "    breaker: {failure_ratio: 1.5, window: 100ms}\n",
			want: []string{`banks[0] (id "sandbox"): breaker.failure_ratio: must be above 0 and below 1`, `banks[0] (id "sandbox"): breaker.window: must be from 1s to 1h`},
		},
		{
			// gRPC would raise it to 10s without a word.
			name: "keepalive below gRPC's floor",
			yaml: "banks:\n" + sandbox + "    keepalive: {time: 1s, timeout: -1s}\n",
			want: []string{`banks[0] (id "sandbox"): keepalive.time: must be from 10s to 2h`, `banks[0] (id "sandbox"): keepalive.timeout: must be positive`},
		},
		{
			name: "retry backoff beyond a deadline's reach",
			yaml: "banks:\n" + sandbox + "    retry: {backoff: 2s, disabled: maybe}\n",
			want: []string{`banks[0] (id "sandbox"): retry.backoff: must be positive and at most 1s`, `banks[0] (id "sandbox"): retry.disabled: want true or false, got "maybe"`},
		},
		{
			name: "bulkhead too large",
			yaml: "banks:\n" + sandbox + "    max_in_flight: 1000000\n",
			want: []string{`banks[0] (id "sandbox"): max_in_flight: must be from 1 to 100000`},
		},
		{
			name: "nested field given twice",
			yaml: "banks:\n" + sandbox + "    breaker:\n      open_for: 1s\n      open_for: 2s\n",
			want: []string{`banks[0] (id "sandbox"): breaker.open_for: given twice (line 8)`},
		},
		{
			name: "section not a mapping",
			yaml: "banks:\n" + sandbox + "    rate_limit: 5\n",
			want: []string{`banks[0] (id "sandbox"): rate_limit: want a mapping (line 6)`},
		},
		{
			name: "string field given a list",
			yaml: "banks:\n  - id: acme\n    display_name: ACME\n    kind: remote\n    endpoint: [a, b]\n",
			want: []string{`banks[0] (id "acme"): endpoint: want a single value (line 5)`},
		},
		{
			name: "tls without a value",
			yaml: "banks:\n  - id: acme\n    display_name: ACME\n    kind: remote\n    endpoint: acme:443\n    tls:\n",
			want: []string{`banks[0] (id "acme"): tls: no value; give its fields, {} for the system roots, or delete it for plaintext (line 6)`},
		},
		{
			name: "bank not a mapping",
			yaml: "banks:\n  - sandbox\n" + sandbox,
			want: []string{`banks[0]: want a mapping (line 2)`, `banks[0]: id: required`},
		},
		{
			name: "errors stay with their bank",
			yaml: "banks:\n" + sandbox + "    kind: remote\n  - id: acme\n    display_name: ACME\n    kind: remote\n    timeout: soon\n",
			want: []string{`banks[0] (id "sandbox"): kind: given twice (line 6)`, `banks[1] (id "acme"): timeout: want a duration such as "5s" or "1m30s", got "soon" (line 10)`, `banks[1] (id "acme"): endpoint: required for kind remote`},
		},
		{name: "not a mapping", yaml: "- sandbox\n", want: []string{"want a mapping with the key banks (line 1)"}},
		{name: "empty file", yaml: "", want: []string{"banks: no banks configured"}},
		{name: "empty list", yaml: "banks: []\n", want: []string{"banks: no banks configured"}},
		{name: "banks not a list", yaml: "banks: sandbox\n", want: []string{"banks: want a list (line 1)"}},
		{name: "not YAML", yaml: "banks: [\n", want: []string{"parse banks config"}},
		{name: "two documents", yaml: "banks:\n" + sandbox + "---\nbanks: []\n", want: []string{"want one YAML document"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := runtime.ParseConfig([]byte(tt.yaml))
			if err == nil {
				t.Fatalf("want an error saying %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%s\ndoes not say\n%s", err, w)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(err.Error(), w) {
					t.Errorf("error\n%s\nsays\n%s", err, w)
				}
			}
			// The file's terms only: no Go type names from the decoder.
			if strings.Contains(err.Error(), "adapters.") || strings.Contains(err.Error(), "not found in type") {
				t.Errorf("error speaks Go, not YAML:\n%s", err)
			}
		})
	}
}

func TestLoadConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "banks.yaml")
	err := os.WriteFile(path, []byte(`banks:
  - id: acme
    display_name: ACME Bank
    kind: remote
    endpoint: acme:443
    tls: {ca_file: certs/ca.pem}
`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	banks, err := runtime.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := banks[0].TLS.CAFile, filepath.Join(dir, "certs", "ca.pem"); got != want {
		t.Errorf("ca_file = %q, want it resolved against the file's directory: %q", got, want)
	}

	// Every line of a failure names the file.
	broken := filepath.Join(dir, "broken.yaml")
	if err := os.WriteFile(broken, []byte("banks:\n  - id: acme\n    kind: remote\n    endpont: acme:443\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = runtime.LoadConfig(broken)
	lines := strings.Split(fmt.Sprint(err), "\n")
	if len(lines) < 3 {
		t.Fatalf("want at least 3 error lines (unknown endpont, missing display_name and endpoint), got %v", err)
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, broken+`: banks[0] (id "acme"): `) {
			t.Errorf("error line %q does not start with the file and the bank", l)
		}
	}
	if !strings.Contains(err.Error(), "endpont: unknown field (line 4)") {
		t.Errorf("error %v does not name endpont and its line", err)
	}

	_, err = runtime.LoadConfig(filepath.Join(dir, "missing.yaml"))
	if err == nil || !strings.Contains(err.Error(), "read banks config") {
		t.Errorf("missing file: got %v", err)
	}
}

// TestExampleConfig keeps banks.example.yaml valid.
func TestExampleConfig(t *testing.T) {
	t.Parallel()
	banks, err := runtime.LoadConfig("banks.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(banks) == 0 || banks[0].ID != "sandbox" {
		t.Errorf("the example's first bank is %+v, want the sandbox", banks)
	}
}
