package runtime

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
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/bankbridge/bankbridge/adapters"
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
	// DefaultFailureRatio is Breaker.FailureRatio's default: above a half,
	// so that a bank failing half its calls keeps answering the other half
	// (and, with the retry of reads, three in four reads) instead of
	// none while the breaker is open.
	DefaultFailureRatio = 0.6
	// DefaultMinRequests is Breaker.MinRequests' default: with fewer
	// calls chance decides too much (a bank failing exactly half its
	// calls shows more than 60 % over its first 20 one time in three).
	DefaultMinRequests = 40
	// DefaultWindow is Breaker.Window's default.
	DefaultWindow = 10 * time.Second
	// DefaultOpenFor is Breaker.OpenFor's default.
	DefaultOpenFor = 30 * time.Second
	// DefaultMaxInFlight is Bank.MaxInFlight's default.
	DefaultMaxInFlight = 64
	// DefaultKeepaliveTime is Keepalive.Time's default: gRPC's floor, so
	// that a silently dropped connection is found within seconds.
	DefaultKeepaliveTime = adapters.MinKeepaliveTime
	// DefaultKeepaliveTimeout is Keepalive.Timeout's default.
	DefaultKeepaliveTimeout = 5 * time.Second
	// DefaultRetryBackoff is Retry.Backoff's default.
	DefaultRetryBackoff = 50 * time.Millisecond
)

// Bounds of the resilience settings, checked by ParseConfig and NewRegistry.
const (
	// MaxRetryBackoff bounds Retry.Backoff: the retry must fit in a
	// caller's deadline.
	MaxRetryBackoff = time.Second
	// MaxMaxInFlight bounds Bank.MaxInFlight.
	MaxMaxInFlight = 100_000
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
	// Breaker stops calling a bank that fails most of its calls.
	Breaker Breaker
	// MaxInFlight bounds the calls in flight to the bank at once (the
	// bulkhead); a call beyond it fails at once with UNAVAILABLE
	// (BANK_UNAVAILABLE) and RetryInfo, so that a slow bank cannot hold
	// every caller for its whole timeout; default 64.
	MaxInFlight int
	// Keepalive finds a silently dropped connection to a remote adapter.
	Keepalive Keepalive
	// Retry repeats a safe read once, within the call's deadline.
	Retry Retry
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

// Breaker configures the circuit breaker. It opens when, over the last
// Window, at least MinRequests calls to the bank ended and more than
// FailureRatio of them failed; calls then fail at once with UNAVAILABLE
// (BANK_UNAVAILABLE) and RetryInfo for OpenFor, and one trial call decides
// whether it closes again. Only the bank's failures count: unavailable,
// timed out (on the bank's own timeout), or an answer outside the protocol;
// business answers such as NOT_FOUND, and calls bankbridge itself refused,
// do not.
type Breaker struct {
	// FailureRatio is the share of failed calls in Window above which the
	// breaker opens, in (0, 1); default 0.6.
	FailureRatio float64
	// MinRequests is how many calls must have ended in Window before the
	// ratio counts; default 40.
	MinRequests uint32
	// Window is the rolling window the ratio is taken over, in ten
	// buckets; default 10s.
	Window time.Duration
	// OpenFor is how long the breaker stays open; default 30s.
	OpenFor time.Duration
}

// Keepalive sends HTTP/2 pings on a remote adapter's connection: when one
// is not acknowledged within Timeout, the connection is closed, its calls
// fail (a safe read is retried on a new connection), and the next call
// reconnects. Pings go every Time without reads, on idle connections too,
// so the adapter's server must permit them (see adapters.KeepaliveServerOption).
type Keepalive struct {
	// Time without reads after which a ping is sent; at least 10s (gRPC's
	// floor); default 10s.
	Time time.Duration
	// Timeout is how long a ping may go unacknowledged; default 5s.
	Timeout time.Duration
}

// Retry repeats a safe read once: an RPC that only reads (GetAdapterInfo,
// CheckHealth, ListAccounts, GetBalances, SyncTransactions,
// GetPurchaseDetails, ListCards; never a write, never StartSca or
// VerifySca) that failed UNAVAILABLE in transport or BANK_UNAVAILABLE from
// the adapter, when what is left of the call's deadline after Backoff is
// more than the first attempt took. The retry takes a rate-limit token;
// the breaker counts the call once, by how it ended.
type Retry struct {
	// Disabled turns the retry off.
	Disabled bool
	// Backoff is the pause before the retry, without jitter (one retry
	// cannot synchronise callers); default 50ms, at most 1s.
	Backoff time.Duration
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
	// the bank's credential, keys "tls_cert" and "tls_key" (PEM): one the
	// bank issued bankbridge. A rotated certificate is used from the next
	// connection on.
	ClientCertFromVault bool
	// ClientCertFromService presents the calling service's own
	// certificate (mTLS), which Vault's PKI engine issues it and it renews
	// (see [WithClientCertificate]): for adapters that trust bankbridge's
	// CA, such as the sandbox bank in the dev stack. Not with
	// ClientCertFromVault.
	ClientCertFromService bool
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
// and resolves a relative TLS.CAFile against the file's directory. Each
// error line starts with path.
func LoadConfig(path string) ([]Bank, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read banks config: %w", err)
	}
	banks, err := ParseConfig(data)
	if err != nil {
		return nil, prefixLines(path, err)
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
// It is strict: an unknown or repeated field, a value of the wrong type or a
// broken rule is an error that names the bank, the field and, for what the
// file itself got wrong, the line, e.g. `banks[1] (id "dave"): endpont:
// unknown field (line 7)` or `banks[1] (id "dave"): endpoint: required for
// kind remote`; every such error is reported, joined. Defaults are applied
// to the banks it returns.
func ParseConfig(data []byte) ([]Bank, error) {
	root, err := parseDocument(data)
	if err != nil {
		return nil, err
	}
	var file fileYAML
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var errs []error
	if err := dec.Decode(&file); err != nil && !errors.Is(err, io.EOF) {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return nil, fmt.Errorf("parse banks config: %w", err)
		}
		for _, msg := range te.Errors {
			errs = append(errs, locate(root, msg, true).err())
		}
	}
	if len(file.Banks) == 0 {
		// A banks key of the wrong kind is already reported.
		if len(errs) == 0 || mappingValue(root, "banks") == nil {
			errs = append(errs, errors.New("banks: no banks configured"))
		}
		return nil, errors.Join(errs...)
	}
	// Decoding keeps every entry (bankYAML never fails), so entry i is node
	// i, unless the list came through a YAML merge key; its problems then
	// name fields without their lines' help.
	nodes := make([]*yaml.Node, len(file.Banks))
	if n := mappingValue(root, "banks"); n != nil && len(n.Content) == len(nodes) {
		copy(nodes, n.Content)
	}
	banks := make([]Bank, 0, len(file.Banks))
	for i, entry := range file.Banks {
		b, err := entry.bank(nodes[i])
		if err != nil {
			id := b.ID
			if id == "" {
				// The entry did not decode; name it as the file does.
				if n := mappingValue(nodes[i], "id"); n != nil && n.Kind == yaml.ScalarNode {
					id = n.Value
				}
			}
			errs = append(errs, bankError(i, id, err))
		}
		banks = append(banks, b)
	}
	errs = append(errs, duplicateIDs(banks)...)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return banks, nil
}

// parseDocument reads the one YAML document of data. Its node tree locates
// the problems the typed decode reports by line only.
func parseDocument(data []byte) (*yaml.Node, error) {
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
	if len(doc.Content) == 1 {
		return doc.Content[0], nil
	}
	return &doc, nil
}

// fileYAML is banks.yaml as written. Field names are the yaml tags;
// adapters/README.md documents each.
type fileYAML struct {
	Banks []bankYAML `yaml:"banks"`
}

// bankYAML is one entry of banks; see [bankYAML.UnmarshalYAML].
type bankYAML struct {
	fields bankFields
	// problems are what the decoder reported about this entry alone.
	problems []string
}

type bankFields struct {
	ID          string        `yaml:"id"`
	DisplayName string        `yaml:"display_name"`
	Kind        string        `yaml:"kind"`
	Endpoint    string        `yaml:"endpoint"`
	InProcess   string        `yaml:"in_process"`
	VaultPath   string        `yaml:"vault_path"`
	Timeout     duration      `yaml:"timeout"`
	RateLimit   rateLimitYAML `yaml:"rate_limit"`
	Breaker     breakerYAML   `yaml:"breaker"`
	MaxInFlight count         `yaml:"max_in_flight"`
	Keepalive   keepaliveYAML `yaml:"keepalive"`
	Retry       retryYAML     `yaml:"retry"`
	TLS         *tlsYAML      `yaml:"tls"`
}

type keepaliveYAML struct {
	Time    duration `yaml:"time"`
	Timeout duration `yaml:"timeout"`
}

type retryYAML struct {
	Disabled flag     `yaml:"disabled"`
	Backoff  duration `yaml:"backoff"`
}

type rateLimitYAML struct {
	PerSecond number `yaml:"per_second"`
	Burst     count  `yaml:"burst"`
}

type breakerYAML struct {
	FailureRatio number   `yaml:"failure_ratio"`
	MinRequests  count    `yaml:"min_requests"`
	Window       duration `yaml:"window"`
	OpenFor      duration `yaml:"open_for"`
}

type tlsYAML struct {
	CAFile                string `yaml:"ca_file"`
	ServerName            string `yaml:"server_name"`
	ClientCertFromVault   flag   `yaml:"client_cert_from_vault"`
	ClientCertFromService flag   `yaml:"client_cert_from_service"`
}

// UnmarshalYAML decodes one bank with the decoder's own settings (unknown
// fields refused), keeps what it reports and never fails, so that the list
// keeps every entry at its index and each problem can name its bank. It
// takes the decode function rather than the node because yaml.v3 applies
// KnownFields only through that form.
func (b *bankYAML) UnmarshalYAML(unmarshal func(any) error) error {
	err := unmarshal(&b.fields)
	var te *yaml.TypeError
	if errors.As(err, &te) {
		// The decoder reuses the slice it hands over.
		b.problems = slices.Clone(te.Errors)
		return nil
	}
	return err
}

// bank converts the entry, applies the defaults and checks it; node is the
// entry in the file, to place its problems.
func (b *bankYAML) bank(node *yaml.Node) (Bank, error) {
	var errs []error
	aborted := false
	for _, msg := range b.problems {
		p := locate(node, msg, false)
		// A repeated key stops the decoder from reading the mapping that
		// holds it; the entry's other fields are then unknown, not missing.
		aborted = aborted || (p.repeated && !strings.Contains(p.path, "."))
		errs = append(errs, p.err())
	}
	if t := mappingValue(node, "tls"); t != nil && t.ShortTag() == "!!null" {
		// yaml reads "tls:" as no TLS at all: never let a forgotten line
		// below it turn the connection into plaintext.
		errs = append(errs, fmt.Errorf("tls: no value; give its fields, {} for the system roots, or delete it for plaintext (line %d)", t.Line))
	}
	f := b.fields
	out := Bank{
		ID:          f.ID,
		DisplayName: f.DisplayName,
		Kind:        f.Kind,
		Endpoint:    f.Endpoint,
		InProcess:   f.InProcess,
		VaultPath:   f.VaultPath,
		Timeout:     time.Duration(f.Timeout),
		RateLimit:   RateLimit{PerSecond: float64(f.RateLimit.PerSecond), Burst: int(f.RateLimit.Burst)},
		Breaker: Breaker{FailureRatio: float64(f.Breaker.FailureRatio), MinRequests: uint32(f.Breaker.MinRequests),
			Window: time.Duration(f.Breaker.Window), OpenFor: time.Duration(f.Breaker.OpenFor)},
		MaxInFlight: int(f.MaxInFlight),
		Keepalive:   Keepalive{Time: time.Duration(f.Keepalive.Time), Timeout: time.Duration(f.Keepalive.Timeout)},
		Retry:       Retry{Disabled: bool(f.Retry.Disabled), Backoff: time.Duration(f.Retry.Backoff)},
	}
	if t := f.TLS; t != nil {
		out.TLS = &TLS{CAFile: t.CAFile, ServerName: t.ServerName,
			ClientCertFromVault: bool(t.ClientCertFromVault), ClientCertFromService: bool(t.ClientCertFromService)}
	}
	out = out.withDefaults()
	if !aborted {
		// Checked even when some field did not decode: a misspelt field is
		// best reported with the required field it left missing.
		errs = append(errs, out.validate())
	}
	return out, errors.Join(errs...)
}

// The leaves of banks.yaml that are not strings parse their own text, so a
// wrong value is reported in the file's terms ("5" is not a duration) rather
// than Go's. Their problems travel as yaml.TypeError lines, which lets the
// decode go on, and carry the column so that [locate] finds the field even
// in a flow mapping.
type (
	// duration is a Go duration: "500ms", "5s", "1m30s".
	duration time.Duration
	// number is a finite decimal number.
	number float64
	// count is a whole number from 0 to math.MaxInt32.
	count int64
	// flag is true or false, spelt so.
	flag bool
)

func (d *duration) UnmarshalYAML(n *yaml.Node) error {
	want := `a duration such as "5s" or "1m30s"`
	if n.Kind != yaml.ScalarNode {
		return leafProblem(n, "want %s", want)
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return leafProblem(n, "want %s, got %q", want, n.Value)
	}
	*d = duration(v)
	return nil
}

func (x *number) UnmarshalYAML(n *yaml.Node) error {
	v, err := strconv.ParseFloat(n.Value, 64)
	if n.Kind != yaml.ScalarNode || err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return leafProblem(n, "want a number, got %q", n.Value)
	}
	*x = number(v)
	return nil
}

func (c *count) UnmarshalYAML(n *yaml.Node) error {
	v, err := strconv.ParseInt(n.Value, 10, 64)
	if n.Kind != yaml.ScalarNode || err != nil {
		return leafProblem(n, "want a whole number, got %q", n.Value)
	}
	if v < 0 || v > math.MaxInt32 {
		return leafProblem(n, "must be between 0 and %d, got %d", math.MaxInt32, v)
	}
	*c = count(v)
	return nil
}

func (f *flag) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode || (n.Value != "true" && n.Value != "false") {
		return leafProblem(n, "want true or false, got %q", n.Value)
	}
	*f = n.Value == "true"
	return nil
}

func leafProblem(n *yaml.Node, format string, args ...any) error {
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d column %d: %s", n.Line, n.Column, fmt.Sprintf(format, args...))}}
}

// The lines of a yaml.TypeError: the leaves' own, and yaml.v3's (fixed by
// its version in go.mod, held by TestParseConfigErrors).
var (
	leafProblemLine = regexp.MustCompile(`^line (\d+) column (\d+): (.*)$`)
	unknownField    = regexp.MustCompile(`^line (\d+): field (.+?) not found in type .+$`)
	repeatedKey     = regexp.MustCompile(`^line (\d+): mapping key (".*") already defined at line \d+$`)
	wrongKind       = regexp.MustCompile(`^line (\d+): cannot unmarshal !!\w+.* into (\S+)$`)
)

// problem is one thing wrong in the file, placed at a field path under the
// node it was found in ("" for that node itself).
type problem struct {
	path     string
	line     int
	msg      string
	repeated bool
}

func (p problem) err() error {
	s := p.msg
	if p.line > 0 {
		s += fmt.Sprintf(" (line %d)", p.line)
	}
	if p.path != "" {
		s = p.path + ": " + s
	}
	return errors.New(s)
}

// locate turns a line of a yaml.TypeError about what lies under n into a
// problem that names the field; atRoot says n is the file's top mapping.
func locate(n *yaml.Node, msg string, atRoot bool) problem {
	if m := leafProblemLine.FindStringSubmatch(msg); m != nil {
		line, col := atoi(m[1]), atoi(m[2])
		path, _ := findKey(n, func(_, v *yaml.Node) bool { return v.Line == line && v.Column == col })
		return problem{path: path, line: line, msg: m[3]}
	}
	if m := unknownField.FindStringSubmatch(msg); m != nil {
		line, name := atoi(m[1]), m[2]
		path, _ := findKey(n, func(k, _ *yaml.Node) bool { return k.Line == line && k.Value == name })
		return problem{path: orDefault(path, name), line: line, msg: "unknown field"}
	}
	if m := repeatedKey.FindStringSubmatch(msg); m != nil {
		line := atoi(m[1])
		name, _ := strconv.Unquote(m[2])
		path, _ := findKey(n, func(k, _ *yaml.Node) bool { return k.Line == line && k.Value == name })
		return problem{path: orDefault(path, name), line: line, msg: "given twice", repeated: true}
	}
	if m := wrongKind.FindStringSubmatch(msg); m != nil {
		line, into := atoi(m[1]), m[2]
		want, kind := "want a mapping", yaml.MappingNode
		switch {
		case strings.HasPrefix(into, "[]"):
			want, kind = "want a list", yaml.SequenceNode
		case into == "string":
			want, kind = "want a single value", yaml.ScalarNode
		}
		if path, ok := findKey(n, func(_, v *yaml.Node) bool { return v.Line == line && v.Kind != kind }); ok {
			return problem{path: path, line: line, msg: want}
		}
		// Not a field under n: n itself is of the wrong kind.
		if atRoot {
			want += " with the key banks"
		}
		return problem{line: line, msg: want}
	}
	return problem{msg: msg}
}

// findKey walks the mappings under n depth first and returns the dotted
// path of the first key for which match holds.
func findKey(n *yaml.Node, match func(key, value *yaml.Node) bool) (string, bool) {
	if n == nil || n.Kind != yaml.MappingNode {
		return "", false
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if match(k, v) {
			return k.Value, true
		}
		if p, ok := findKey(v, match); ok {
			return k.Value + "." + p, true
		}
	}
	return "", false
}

// mappingValue returns the value of key in mapping n, or nil.
func mappingValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// bankError prefixes err with where the bank sits in the list, one line per
// joined error.
func bankError(i int, id string, err error) error {
	prefix := fmt.Sprintf("banks[%d]", i)
	if id != "" {
		prefix += fmt.Sprintf(" (id %q)", id)
	}
	return prefixLines(prefix, err)
}

// prefixLines puts prefix before each of the errors joined in err, however
// deeply, so that each gets its own line.
func prefixLines(prefix string, err error) error {
	var errs []error
	for _, e := range flatten(err) {
		errs = append(errs, fmt.Errorf("%s: %w", prefix, e))
	}
	return errors.Join(errs...)
}

// flatten lists the errors joined in err, however deeply.
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
	if b.Breaker.FailureRatio == 0 {
		b.Breaker.FailureRatio = DefaultFailureRatio
	}
	if b.Breaker.MinRequests == 0 {
		b.Breaker.MinRequests = DefaultMinRequests
	}
	if b.Breaker.Window == 0 {
		b.Breaker.Window = DefaultWindow
	}
	if b.Breaker.OpenFor == 0 {
		b.Breaker.OpenFor = DefaultOpenFor
	}
	if b.MaxInFlight == 0 {
		b.MaxInFlight = DefaultMaxInFlight
	}
	if b.Keepalive.Time == 0 {
		b.Keepalive.Time = DefaultKeepaliveTime
	}
	if b.Keepalive.Timeout == 0 {
		b.Keepalive.Timeout = DefaultKeepaliveTimeout
	}
	if b.Retry.Backoff == 0 {
		b.Retry.Backoff = DefaultRetryBackoff
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
	if r := b.Breaker.FailureRatio; !(r > 0 && r < 1) {
		fail("breaker.failure_ratio", "must be above 0 and below 1")
	}
	if b.Breaker.Window < time.Second || b.Breaker.Window > time.Hour {
		fail("breaker.window", "must be from 1s to 1h")
	}
	if b.Breaker.OpenFor < 0 {
		fail("breaker.open_for", "must be positive")
	}
	if b.MaxInFlight < 0 || b.MaxInFlight > MaxMaxInFlight {
		fail("max_in_flight", "must be from 1 to %d", MaxMaxInFlight)
	}
	if b.Keepalive.Time < adapters.MinKeepaliveTime || b.Keepalive.Time > 2*time.Hour {
		// gRPC would raise a shorter one to its floor without a word.
		fail("keepalive.time", "must be from %s to 2h", adapters.MinKeepaliveTime)
	}
	if b.Keepalive.Timeout < 0 || b.Keepalive.Timeout > time.Minute {
		fail("keepalive.timeout", "must be positive and at most 1m")
	}
	if b.Retry.Backoff < 0 || b.Retry.Backoff > MaxRetryBackoff {
		fail("retry.backoff", "must be positive and at most %s", MaxRetryBackoff)
	}
	if b.TLS != nil && b.TLS.ServerName != "" && strings.ContainsAny(b.TLS.ServerName, " /:") {
		fail("tls.server_name", "must be a host name")
	}
	if b.TLS != nil && b.TLS.ClientCertFromVault && b.TLS.ClientCertFromService {
		fail("tls.client_cert_from_service", "not with client_cert_from_vault: one client certificate")
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
