package adapters

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Bank kinds.
const (
	// KindRemote is a bank adapter reached over gRPC at Bank.Endpoint.
	KindRemote = "remote"
	// KindInProcess is a Go adapter given to the registry with
	// [WithInProcess] and named by Bank.InProcess.
	KindInProcess = "inprocess"
)

// Defaults applied to a [Bank] whose field is zero.
const (
	// DefaultTimeout is Bank.Timeout's default.
	DefaultTimeout = 5 * time.Second
	// DefaultRatePerSecond is RateLimit.PerSecond's default.
	DefaultRatePerSecond = 50
	// DefaultRateBurst is RateLimit.Burst's default.
	DefaultRateBurst = 100
	// DefaultConsecutiveFailures is Breaker.ConsecutiveFailures' default.
	DefaultConsecutiveFailures = 5
	// DefaultOpenFor is Breaker.OpenFor's default.
	DefaultOpenFor = 30 * time.Second
)

// MaxTimeout bounds Bank.Timeout: a bank call that may take longer than
// this is a configuration mistake, not a bank.
const MaxTimeout = 5 * time.Minute

// Bank is one entry of banks.yaml: where a bank's adapter is, where its
// credential lives, and how hard bankbridge may call it.
type Bank struct {
	// ID names the bank everywhere in bankbridge, e.g. "sandbox";
	// ^[a-z0-9][a-z0-9_-]{1,62}$.
	ID string
	// DisplayName is the bank's name as its customers know it; 1 to 64
	// characters.
	DisplayName string
	// Kind is KindRemote or KindInProcess.
	Kind string
	// Endpoint is the adapter's host:port, for KindRemote only. Endpoints
	// come only from configuration, never from callers.
	Endpoint string
	// InProcess names the Go adapter given with [WithInProcess], for
	// KindInProcess only.
	InProcess string
	// VaultPath is the KV v2 path of the bank's credential under the
	// bankbridge mount; default "banks/<id>".
	VaultPath string
	// Timeout bounds every unary call to the adapter (a caller's shorter
	// deadline wins); default 5s.
	Timeout time.Duration
	// RateLimit caps the calls per second bankbridge makes.
	RateLimit RateLimit
	// Breaker stops calling a bank that keeps failing.
	Breaker Breaker
	// TLS, when set, secures the connection to a remote adapter; without it
	// the connection is plaintext (loopback, or a mesh that adds mTLS).
	TLS *TLS
}

// RateLimit is a token bucket: PerSecond calls on average, up to Burst at
// once. A call beyond it fails at once with RESOURCE_EXHAUSTED
// (RATE_LIMITED) rather than waiting.
type RateLimit struct {
	// PerSecond is the refill rate; default 50.
	PerSecond float64
	// Burst is the bucket size; default 100.
	Burst int
}

// Breaker configures the circuit breaker: after ConsecutiveFailures bank
// failures in a row it opens, and calls fail at once with UNAVAILABLE
// (BANK_UNAVAILABLE) for OpenFor; then one trial call decides whether it
// closes again.
type Breaker struct {
	// ConsecutiveFailures that open the breaker; default 5.
	ConsecutiveFailures uint32
	// OpenFor is how long the breaker stays open; default 30s.
	OpenFor time.Duration
}

// TLS secures the connection to a remote adapter.
type TLS struct {
	// CAFile is a PEM file of the CAs that sign the adapter's certificate;
	// empty trusts the system's roots. LoadConfig resolves a relative path
	// against the configuration file's directory.
	CAFile string
	// ServerName overrides the name checked in the adapter's certificate;
	// default the endpoint's host.
	ServerName string
	// ClientCertFromVault presents a client certificate (mTLS) taken from
	// the bank's credential, keys "tls_cert" and "tls_key" (PEM). A rotated
	// certificate is used from the next connection on.
	ClientCertFromVault bool
}

// Credential keys that hold the mTLS client certificate; they are never sent
// as metadata.
const (
	// CredentialTLSCert is the credential key of the PEM client certificate.
	CredentialTLSCert = "tls_cert"
	// CredentialTLSKey is the credential key of the PEM client private key.
	CredentialTLSKey = "tls_key"
)

var (
	bankIDPattern    = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{1,62}$`)
	vaultPathSegment = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)
)

// LoadConfig reads and parses the banks file at path, as [ParseConfig] does,
// and resolves a relative TLS.CAFile against the file's directory.
func LoadConfig(path string) ([]Bank, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read banks config: %w", err)
	}
	banks, err := ParseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	dir := filepath.Dir(path)
	for i := range banks {
		if t := banks[i].TLS; t != nil && t.CAFile != "" && !filepath.IsAbs(t.CAFile) {
			t.CAFile = filepath.Join(dir, t.CAFile)
		}
	}
	return banks, nil
}

// ParseConfig parses banks.yaml:
//
//	banks:
//	  - id: sandbox
//	    display_name: Sandbox Bank
//	    kind: remote
//	    endpoint: 127.0.0.1:9400
//
// It is strict: an unknown field, a wrong type or a broken rule is an error
// that names the bank and the field, e.g. `banks[1] (id "dave"): endpoint:
// required for kind remote`; every such error is reported, joined. Defaults
// are applied to the banks it returns.
func ParseConfig(data []byte) ([]Bank, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("banks: no banks configured")
		}
		return nil, fmt.Errorf("parse banks config: %w", err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("banks config: want one YAML document")
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("banks config: line %d: want a mapping with the key banks", root.Line)
	}
	var list *yaml.Node
	var errs []error
	if err := eachField(root, func(key string, value *yaml.Node) error {
		if key != "banks" {
			return fmt.Errorf("unknown field %q (line %d)", key, value.Line)
		}
		list = value
		return nil
	}); err != nil {
		errs = append(errs, err)
	}
	if list == nil || (list.Kind == yaml.ScalarNode && list.Tag == "!!null") {
		return nil, errors.Join(append(errs, errors.New("banks: no banks configured"))...)
	}
	if list.Kind != yaml.SequenceNode {
		return nil, errors.Join(append(errs, fmt.Errorf("banks: line %d: want a list", list.Line))...)
	}
	if len(list.Content) == 0 {
		return nil, errors.Join(append(errs, errors.New("banks: no banks configured"))...)
	}
	banks := make([]Bank, 0, len(list.Content))
	for i, n := range list.Content {
		// Validate even what did not decode cleanly: a misspelt field is
		// best reported with the required field it left missing.
		b, err := decodeBank(n)
		b = b.withDefaults()
		if err := errors.Join(err, b.validate()); err != nil {
			errs = append(errs, bankError(i, b.ID, err))
		}
		banks = append(banks, b)
	}
	errs = append(errs, duplicateIDs(banks)...)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return banks, nil
}

// bankError prefixes err with where the bank sits in the list, one line per
// joined error.
func bankError(i int, id string, err error) error {
	prefix := fmt.Sprintf("banks[%d]", i)
	if id != "" {
		prefix += fmt.Sprintf(" (id %q)", id)
	}
	var errs []error
	for _, e := range flatten(err) {
		errs = append(errs, fmt.Errorf("%s: %w", prefix, e))
	}
	return errors.Join(errs...)
}

// flatten lists the errors joined in err, however deeply, so that each
// gets its own prefix and line.
func flatten(err error) []error {
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		if err == nil {
			return nil
		}
		return []error{err}
	}
	var out []error
	for _, e := range joined.Unwrap() {
		out = append(out, flatten(e)...)
	}
	return out
}

func duplicateIDs(banks []Bank) []error {
	var errs []error
	first := map[string]int{}
	for i, b := range banks {
		if b.ID == "" {
			continue
		}
		if j, ok := first[b.ID]; ok {
			errs = append(errs, bankError(i, b.ID, fmt.Errorf("id: duplicate of banks[%d]", j)))
			continue
		}
		first[b.ID] = i
	}
	return errs
}

// eachField calls fn for every key of a mapping node, refusing duplicate
// keys, and joins what fn returns.
func eachField(n *yaml.Node, fn func(key string, value *yaml.Node) error) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: want a mapping", n.Line)
	}
	var errs []error
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if seen[k.Value] {
			errs = append(errs, fmt.Errorf("%s: given twice (line %d)", k.Value, k.Line))
			continue
		}
		seen[k.Value] = true
		if err := fn(k.Value, v); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func decodeBank(n *yaml.Node) (Bank, error) {
	var b Bank
	if n.Kind != yaml.MappingNode {
		return b, fmt.Errorf("line %d: want a mapping", n.Line)
	}
	// Read the id first so that every error can name the bank.
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "id" && n.Content[i+1].Kind == yaml.ScalarNode {
			b.ID = n.Content[i+1].Value
		}
	}
	err := eachField(n, func(key string, v *yaml.Node) error {
		var err error
		switch key {
		case "id":
			b.ID, err = yamlString(v)
		case "display_name":
			b.DisplayName, err = yamlString(v)
		case "kind":
			b.Kind, err = yamlString(v)
		case "endpoint":
			b.Endpoint, err = yamlString(v)
		case "in_process":
			b.InProcess, err = yamlString(v)
		case "vault_path":
			b.VaultPath, err = yamlString(v)
		case "timeout":
			b.Timeout, err = yamlDuration(v)
		case "rate_limit":
			return prefixed(key, eachField(v, func(key string, v *yaml.Node) error {
				var err error
				switch key {
				case "per_second":
					b.RateLimit.PerSecond, err = yamlFloat(v)
				case "burst":
					b.RateLimit.Burst, err = yamlInt(v, math.MaxInt32)
				default:
					return unknownField(key, v)
				}
				return prefixed(key, err)
			}))
		case "breaker":
			return prefixed(key, eachField(v, func(key string, v *yaml.Node) error {
				var err error
				switch key {
				case "consecutive_failures":
					var n int
					n, err = yamlInt(v, math.MaxUint32)
					b.Breaker.ConsecutiveFailures = uint32(n)
				case "open_for":
					b.Breaker.OpenFor, err = yamlDuration(v)
				default:
					return unknownField(key, v)
				}
				return prefixed(key, err)
			}))
		case "tls":
			b.TLS = &TLS{}
			return prefixed(key, eachField(v, func(key string, v *yaml.Node) error {
				var err error
				switch key {
				case "ca_file":
					b.TLS.CAFile, err = yamlString(v)
				case "server_name":
					b.TLS.ServerName, err = yamlString(v)
				case "client_cert_from_vault":
					b.TLS.ClientCertFromVault, err = yamlBool(v)
				default:
					return unknownField(key, v)
				}
				return prefixed(key, err)
			}))
		default:
			return unknownField(key, v)
		}
		return prefixed(key, err)
	})
	return b, err
}

// prefixed puts the field name before each joined error: "breaker:
// open_for: ..." reads from the outside in.
func prefixed(field string, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := err.(interface{ Unwrap() []error }); ok {
		var errs []error
		for _, e := range flatten(err) {
			errs = append(errs, fmt.Errorf("%s.%w", field, e))
		}
		return errors.Join(errs...)
	}
	return fmt.Errorf("%s: %w", field, err)
}

func unknownField(key string, v *yaml.Node) error {
	return fmt.Errorf("%s: unknown field (line %d)", key, v.Line)
}

func yamlScalar(v *yaml.Node, what string) (string, error) {
	if v.Kind != yaml.ScalarNode {
		return "", fmt.Errorf("want %s (line %d)", what, v.Line)
	}
	return v.Value, nil
}

func yamlString(v *yaml.Node) (string, error) {
	s, err := yamlScalar(v, "a string")
	if err == nil && v.Tag == "!!null" {
		return "", nil
	}
	return s, err
}

func yamlDuration(v *yaml.Node) (time.Duration, error) {
	s, err := yamlScalar(v, `a duration such as "5s"`)
	if err != nil {
		return 0, err
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf(`want a duration such as "5s" or "1m30s", got %q (line %d)`, s, v.Line)
	}
	return d, nil
}

func yamlFloat(v *yaml.Node) (float64, error) {
	s, err := yamlScalar(v, "a number")
	if err != nil {
		return 0, err
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("want a number, got %q (line %d)", s, v.Line)
	}
	return f, nil
}

func yamlInt(v *yaml.Node, maxValue int64) (int, error) {
	s, err := yamlScalar(v, "a whole number")
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("want a whole number, got %q (line %d)", s, v.Line)
	}
	if n < 0 || n > maxValue {
		return 0, fmt.Errorf("must be between 0 and %d, got %d (line %d)", maxValue, n, v.Line)
	}
	return int(n), nil
}

func yamlBool(v *yaml.Node) (bool, error) {
	s, err := yamlScalar(v, "true or false")
	if err != nil {
		return false, err
	}
	switch s {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, fmt.Errorf("want true or false, got %q (line %d)", s, v.Line)
}

// withDefaults returns b with every zero field that has a default set.
func (b Bank) withDefaults() Bank {
	if b.VaultPath == "" && b.ID != "" {
		b.VaultPath = "banks/" + b.ID
	}
	if b.Timeout == 0 {
		b.Timeout = DefaultTimeout
	}
	if b.RateLimit.PerSecond == 0 {
		b.RateLimit.PerSecond = DefaultRatePerSecond
	}
	if b.RateLimit.Burst == 0 {
		b.RateLimit.Burst = DefaultRateBurst
	}
	if b.Breaker.ConsecutiveFailures == 0 {
		b.Breaker.ConsecutiveFailures = DefaultConsecutiveFailures
	}
	if b.Breaker.OpenFor == 0 {
		b.Breaker.OpenFor = DefaultOpenFor
	}
	if b.TLS != nil {
		t := *b.TLS
		b.TLS = &t
	}
	return b
}

// validate checks a bank whose defaults are applied; each error names the
// field.
func (b Bank) validate() error {
	var errs []error
	fail := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	switch {
	case b.ID == "":
		fail("id", "required")
	case !bankIDPattern.MatchString(b.ID):
		fail("id", "must match %s", bankIDPattern)
	}
	if n := len([]rune(b.DisplayName)); n == 0 || n > 64 {
		fail("display_name", "required, at most 64 characters")
	}
	switch b.Kind {
	case KindRemote:
		if b.Endpoint == "" {
			fail("endpoint", "required for kind %s", KindRemote)
		} else if err := checkEndpoint(b.Endpoint); err != nil {
			fail("endpoint", "%v", err)
		}
		if b.InProcess != "" {
			fail("in_process", "only for kind %s", KindInProcess)
		}
	case KindInProcess:
		if b.InProcess == "" {
			fail("in_process", "required for kind %s", KindInProcess)
		} else if !bankIDPattern.MatchString(b.InProcess) {
			fail("in_process", "must match %s", bankIDPattern)
		}
		if b.Endpoint != "" {
			fail("endpoint", "only for kind %s; an in-process adapter has none", KindRemote)
		}
		if b.TLS != nil {
			fail("tls", "only for kind %s", KindRemote)
		}
	case "":
		fail("kind", "required: %s or %s", KindRemote, KindInProcess)
	default:
		fail("kind", "must be %s or %s, got %q", KindRemote, KindInProcess, b.Kind)
	}
	// Without an id the vault path has no default; the id is what to fix.
	if b.ID != "" || b.VaultPath != "" {
		if err := checkVaultPath(b.VaultPath); err != nil {
			fail("vault_path", "%v", err)
		}
	}
	if b.Timeout < 0 || b.Timeout > MaxTimeout {
		fail("timeout", "must be positive and at most %s", MaxTimeout)
	}
	if b.RateLimit.PerSecond < 0 || math.IsNaN(b.RateLimit.PerSecond) || math.IsInf(b.RateLimit.PerSecond, 0) {
		fail("rate_limit.per_second", "must be a positive number")
	}
	if b.RateLimit.Burst < 0 {
		fail("rate_limit.burst", "must be positive")
	}
	if b.Breaker.OpenFor < 0 {
		fail("breaker.open_for", "must be positive")
	}
	if b.TLS != nil && b.TLS.ServerName != "" && strings.ContainsAny(b.TLS.ServerName, " /:") {
		fail("tls.server_name", "must be a host name")
	}
	return errors.Join(errs...)
}

// checkEndpoint accepts host:port only: no scheme, no path, no resolver
// syntax, so that an endpoint names one place.
func checkEndpoint(endpoint string) error {
	host, port, err := net.SplitHostPort(endpoint)
	if err != nil || host == "" || strings.ContainsAny(endpoint, "/@ ") {
		return fmt.Errorf("want host:port, got %q", endpoint)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port must be 1 to 65535, got %q", port)
	}
	return nil
}

func checkVaultPath(p string) error {
	if p == "" {
		return errors.New("required")
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "." || seg == ".." || !vaultPathSegment.MatchString(seg) {
			return fmt.Errorf("want segments of [A-Za-z0-9._-] joined by /, got %q", p)
		}
	}
	return nil
}
