package runtime

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

// FuzzParseConfig reads any bytes as banks.yaml. ParseConfig must not
// panic; it either refuses the file, with an error of one line per
// problem and no banks, or returns banks that NewRegistry's own checks
// accept: each with its defaults applied, valid, with an id that can sit
// in a resource name (no "~"), and no id twice.
func FuzzParseConfig(f *testing.F) {
	example, err := os.ReadFile("banks.example.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(example)
	for _, s := range []string{
		`
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
    tls:
      ca_file: /etc/bankbridge/acme-ca.pem
      server_name: adapter.acme.example
      client_cert_from_vault: true
`,
		`banks: [{id: "[::1]", display_name: x, kind: remote, endpoint: "[::1]:9400", tls: {}}]`,
		`banks: [{id: dave, display_name: Dave, kind: remote, endpont: 127.0.0.1:9400}]`,
		"banks:\n  - id: a1\n    id: a2\n    display_name: A\n",
		"banks:\n  - &b {id: b1, display_name: B, kind: inprocess, in_process: b}\n  - *b\n",
		"banks:\n  - <<: {id: m1, display_name: M, kind: inprocess}\n    in_process: m\n",
		"banks:\n  - {id: t1, display_name: T, kind: remote, endpoint: h:1, tls:}\n",
		"banks:\n  - {id: r1, display_name: R, kind: remote, endpoint: h:1, timeout: 5, rate_limit: {per_second: .nan, burst: -1}, breaker: {min_requests: 4294967296, failure_ratio: 1.5}}\n",
		"banks: {}\n",
		"banks: []\n---\nbanks: []\n",
		"- banks\n",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		banks, err := ParseConfig(data)
		if err != nil {
			if banks != nil {
				t.Fatalf("ParseConfig refused the file (%v) but returned %d banks", err, len(banks))
			}
			for line := range strings.SplitSeq(err.Error(), "\n") {
				if strings.TrimSpace(line) == "" {
					t.Fatalf("ParseConfig's error has an empty line: %q", err)
				}
			}
			return
		}
		if len(banks) == 0 {
			t.Fatal("ParseConfig accepted a file without banks")
		}
		seen := map[string]bool{}
		for i, b := range banks {
			if d := b.withDefaults(); !reflect.DeepEqual(d, b) {
				t.Fatalf("banks[%d] = %+v lacks a default: %+v", i, b, d)
			}
			if err := b.validate(); err != nil {
				t.Fatalf("banks[%d] = %+v was accepted, but does not validate: %v", i, b, err)
			}
			if strings.Contains(b.ID, "~") || seen[b.ID] {
				t.Fatalf("banks[%d] has id %q, which names no single bank", i, b.ID)
			}
			seen[b.ID] = true
		}
	})
}
