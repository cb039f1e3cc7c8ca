package credentials

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// ErrBadSignature reports that a signature does not verify: it is
// malformed, does not match its input, or names a key version the key
// does not have or has retired (below its min_decryption_version).
var ErrBadSignature = errors.New("signature does not verify")

// DefaultTransitMount is where Vault mounts the Transit engine unless told
// otherwise.
const DefaultTransitMount = "transit"

// minKeyRefetch bounds how often a signature naming a key version newer
// than the cached ones makes the Transit client read the key again: a
// forged signature must not turn every verification into a Vault read.
const minKeyRefetch = time.Second

// The key types a Transit client signs and verifies with. Both sign the
// input itself (Ed25519) or its SHA-256 (ECDSA P-256), so signatures are
// checked without Vault.
const (
	transitEd25519   = "ed25519"
	transitECDSAP256 = "ecdsa-p256"
)

// Transit signs with one key of Vault's Transit secrets engine
// (<mount>/sign/<key>) and verifies the signatures itself, with the key's
// public versions read from <mount>/keys/<key> and cached: verifying needs
// Vault only to learn a version it has not seen (after a rotation), and
// keeps working from the cache while Vault is down. The key must be of
// type ed25519 or ecdsa-p256. It goes through the provider's Vault client,
// so it shares its login, renewal and re-login. It is safe for concurrent
// use.
//
// Signatures are Vault's own, vault:v<version>:<base64>, so `vault write
// <mount>/verify/<key>` accepts them too.
type Transit struct {
	p          *Provider
	mount, key string
	sf         singleflight.Group

	mu        sync.Mutex
	keys      *transitKeys // nil until the first read
	fetchedAt time.Time    // of keys
	stale     bool         // Sign saw a newer version than keys holds
}

// transitKeys is what <mount>/keys/<key> says of the key.
type transitKeys struct {
	typ string
	// latest is the newest version; minVersion the oldest that may still
	// verify (min_decryption_version).
	latest, minVersion int
	public             map[int]any // *ecdsa.PublicKey or ed25519.PublicKey
}

// Signature is one Transit signature.
type Signature struct {
	// Value is Vault's signature, vault:v<version>:<base64>.
	Value string
	// KeyVersion is the key version that made it, the one Value names.
	KeyVersion int
}

// Transit returns the Transit client of key in the engine mounted at mount
// (DefaultTransitMount when empty). Nothing is read from Vault until it
// is used.
func (p *Provider) Transit(mount, key string) (*Transit, error) {
	if mount == "" {
		mount = DefaultTransitMount
	}
	for _, seg := range strings.Split(mount, "/") {
		if err := validID(seg); err != nil {
			return nil, fmt.Errorf("credentials: transit mount %q: %w", mount, err)
		}
	}
	if err := validID(key); err != nil {
		return nil, fmt.Errorf("credentials: transit key %q: %w", key, err)
	}
	return &Transit{p: p, mount: mount, key: key}, nil
}

// Sign signs every input with the key's latest version, all in one request
// to Vault, and returns the signatures in the order of inputs. Errors match
// ErrUnavailable (with ErrPermissionDenied when the policy refuses) or wrap
// ctx's error, and never carry an input.
func (t *Transit) Sign(ctx context.Context, inputs [][]byte) ([]Signature, error) {
	if len(inputs) == 0 {
		return nil, nil
	}
	keys, err := t.keysFor(ctx, 0)
	if err != nil {
		return nil, err
	}
	batch := make([]map[string]any, len(inputs))
	for i, in := range inputs {
		batch[i] = map[string]any{"input": base64.StdEncoding.EncodeToString(in)}
	}
	body := map[string]any{"batch_input": batch}
	if keys.typ == transitECDSAP256 {
		// Vault's defaults, spelled out: the verifier below assumes them.
		body["hash_algorithm"] = "sha2-256"
		body["marshaling_algorithm"] = "asn1"
	}
	ctx, cancel := context.WithTimeout(ctx, t.p.cfg.RequestTimeout)
	defer cancel()
	path := t.mount + "/sign/" + t.key
	raw, err := t.p.client.Logical().WriteWithContext(ctx, path, body)
	if err != nil {
		return nil, fmt.Errorf("sign with %s: %w", path, vaultError(err))
	}
	var results []any
	if raw != nil {
		results, _ = raw.Data["batch_results"].([]any)
	}
	if len(results) != len(inputs) {
		return nil, fmt.Errorf("sign with %s: %d results for %d inputs: %w", path, len(results), len(inputs), ErrUnavailable)
	}
	sigs := make([]Signature, len(results))
	newest := 0
	for i, r := range results {
		m, _ := r.(map[string]any)
		// An item's error text may quote its input, so only its presence
		// is reported.
		if e, _ := m["error"].(string); e != "" {
			return nil, fmt.Errorf("sign with %s: vault refused input %d: %w", path, i, ErrUnavailable)
		}
		value, _ := m["signature"].(string)
		version, _, err := parseSignature(value)
		if err != nil {
			return nil, fmt.Errorf("sign with %s: result %d: %w: %w", path, i, err, ErrUnavailable)
		}
		sigs[i] = Signature{Value: value, KeyVersion: version}
		newest = max(newest, version)
	}
	if newest > keys.latest {
		// Rotated since the keys were read: whoever verifies this
		// signature here must not wait for minKeyRefetch.
		t.mu.Lock()
		t.stale = true
		t.mu.Unlock()
	}
	return sigs, nil
}

// Verify checks that sig is the key's signature of input. It returns nil,
// an error matching ErrBadSignature that says why not, or, when the key
// version sig names could not be read, one matching ErrUnavailable (or
// ctx's error).
func (t *Transit) Verify(ctx context.Context, input []byte, sig Signature) error {
	version, raw, err := parseSignature(sig.Value)
	if err != nil {
		return err
	}
	if sig.KeyVersion != version {
		return fmt.Errorf("signature made with key version %d is recorded as version %d: %w", version, sig.KeyVersion, ErrBadSignature)
	}
	keys, err := t.keysFor(ctx, version)
	if err != nil {
		return err
	}
	if version < keys.minVersion {
		return fmt.Errorf("key version %d is retired (the key's min_decryption_version is %d): %w", version, keys.minVersion, ErrBadSignature)
	}
	pub, ok := keys.public[version]
	if !ok {
		return fmt.Errorf("the key has no version %d: %w", version, ErrBadSignature)
	}
	switch pub := pub.(type) {
	case ed25519.PublicKey:
		ok = ed25519.Verify(pub, input, raw)
	case *ecdsa.PublicKey:
		sum := sha256.Sum256(input)
		ok = ecdsa.VerifyASN1(pub, sum[:], raw)
	}
	if !ok {
		return fmt.Errorf("signature of key version %d does not match: %w", version, ErrBadSignature)
	}
	return nil
}

// parseSignature splits vault:v<version>:<base64>.
func parseSignature(value string) (int, []byte, error) {
	rest, ok := strings.CutPrefix(value, "vault:v")
	if !ok {
		return 0, nil, fmt.Errorf("not a Vault signature: %w", ErrBadSignature)
	}
	v, b64, ok := strings.Cut(rest, ":")
	version, err := strconv.Atoi(v)
	if !ok || err != nil || version < 1 || v != strconv.Itoa(version) {
		return 0, nil, fmt.Errorf("not a Vault signature: %w", ErrBadSignature)
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(raw) == 0 {
		return 0, nil, fmt.Errorf("not a Vault signature: %w", ErrBadSignature)
	}
	return version, raw, nil
}

// keysFor returns the key's public versions, read again when none are
// cached, when the cache is older than the provider's RefreshInterval (to
// learn a raised min_decryption_version), or when version is newer than
// the newest cached one. A failed re-read keeps the cache, which holds
// public keys only and so cannot leak or expire, unless it lacks version.
func (t *Transit) keysFor(ctx context.Context, version int) (*transitKeys, error) {
	t.mu.Lock()
	keys, fetchedAt, stale := t.keys, t.fetchedAt, t.stale
	t.mu.Unlock()
	newer := keys != nil && version > keys.latest
	if keys != nil && !newer && time.Since(fetchedAt) < t.p.cfg.RefreshInterval {
		return keys, nil
	}
	if newer && !stale {
		if wait := minKeyRefetch - time.Since(fetchedAt); wait > 0 {
			timer := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				timer.Stop()
				return nil, ctx.Err()
			case <-timer.C:
			}
		}
	}
	fresh, err := t.fetch(ctx)
	switch {
	case err == nil:
		return fresh, nil
	case keys != nil && !newer:
		t.p.log.Warn("transit key read failed; verifying with the cached versions",
			append([]any{slog.Int(attrVersion, keys.latest)}, errorAttrs(err)...)...)
		return keys, nil
	default:
		return nil, err
	}
}

// fetch reads the key's public versions once for every caller waiting, on
// the provider's life rather than one caller's context.
func (t *Transit) fetch(ctx context.Context) (*transitKeys, error) {
	ch := t.sf.DoChan("keys", func() (any, error) {
		rctx, cancel := context.WithTimeout(t.p.ctx, t.p.cfg.RequestTimeout)
		defer cancel()
		keys, err := t.readKeys(rctx)
		if err != nil {
			return nil, err
		}
		t.mu.Lock()
		old := t.keys
		t.keys, t.fetchedAt, t.stale = keys, time.Now(), false
		t.mu.Unlock()
		if old != nil && old.latest != keys.latest {
			t.p.log.Info("transit key "+t.key+" rotated",
				slog.Int(attrOldVersion, old.latest), slog.Int(attrVersion, keys.latest))
		}
		return keys, nil
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*transitKeys), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// readKeys reads <mount>/keys/<key>.
func (t *Transit) readKeys(ctx context.Context) (*transitKeys, error) {
	path := t.mount + "/keys/" + t.key
	raw, err := t.p.client.Logical().ReadWithContext(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, vaultError(err))
	}
	if raw == nil || raw.Data == nil {
		return nil, fmt.Errorf("read %s: no such key: %w: %w", path, ErrNotFound, ErrUnavailable)
	}
	keys := &transitKeys{public: map[int]any{}}
	keys.typ, _ = raw.Data["type"].(string)
	if keys.typ != transitEd25519 && keys.typ != transitECDSAP256 {
		return nil, fmt.Errorf("read %s: key type %q cannot sign here, want %s or %s: %w",
			path, keys.typ, transitEd25519, transitECDSAP256, ErrUnavailable)
	}
	if keys.latest, err = jsonInt(raw.Data["latest_version"]); err != nil {
		return nil, fmt.Errorf("read %s: latest_version: %w: %w", path, err, ErrUnavailable)
	}
	if keys.minVersion, err = jsonInt(raw.Data["min_decryption_version"]); err != nil {
		return nil, fmt.Errorf("read %s: min_decryption_version: %w: %w", path, err, ErrUnavailable)
	}
	versions, _ := raw.Data["keys"].(map[string]any)
	for v, k := range versions {
		version, err := strconv.Atoi(v)
		if err != nil {
			return nil, fmt.Errorf("read %s: version %q: %w", path, v, ErrUnavailable)
		}
		m, _ := k.(map[string]any)
		encoded, _ := m["public_key"].(string)
		pub, err := parsePublicKey(keys.typ, encoded)
		if err != nil {
			return nil, fmt.Errorf("read %s: version %d: %w: %w", path, version, err, ErrUnavailable)
		}
		keys.public[version] = pub
	}
	if _, ok := keys.public[keys.latest]; !ok {
		return nil, fmt.Errorf("read %s: no public key of the latest version %d: %w", path, keys.latest, ErrUnavailable)
	}
	return keys, nil
}

// parsePublicKey reads a version's public key as Transit gives it: base64
// for Ed25519, PEM (PKIX) for ECDSA.
func parsePublicKey(typ, encoded string) (any, error) {
	if typ == transitEd25519 {
		raw, err := base64.StdEncoding.DecodeString(encoded)
		if err != nil || len(raw) != ed25519.PublicKeySize {
			return nil, errors.New("public key is not an Ed25519 key in base64")
		}
		return ed25519.PublicKey(raw), nil
	}
	block, _ := pem.Decode([]byte(encoded))
	if block == nil {
		return nil, errors.New("public key is not PEM")
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	ec, ok := pub.(*ecdsa.PublicKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, errors.New("public key is not an ECDSA P-256 key")
	}
	return ec, nil
}

// jsonInt reads a number Vault sent.
func jsonInt(v any) (int, error) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, fmt.Errorf("%v is not a number", v)
	}
	i, err := strconv.Atoi(n.String())
	if err != nil {
		return 0, fmt.Errorf("%s is not an integer", n)
	}
	return i, nil
}
