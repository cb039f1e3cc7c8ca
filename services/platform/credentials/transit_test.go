package credentials_test

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/bankbridge/bankbridge/services/platform/credentials"
	"github.com/bankbridge/bankbridge/services/platform/vaulttest"
)

const signingKey = "bankbridge-test-signing"

func newTransit(t *testing.T, p *credentials.Provider) *credentials.Transit {
	t.Helper()
	tr, err := p.Transit("", signingKey)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func sign(t *testing.T, tr *credentials.Transit, inputs ...string) []credentials.Signature {
	t.Helper()
	in := make([][]byte, len(inputs))
	for i, s := range inputs {
		in[i] = []byte(s)
	}
	sigs, err := tr.Sign(t.Context(), in)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	if len(sigs) != len(inputs) {
		t.Fatalf("Sign returned %d signatures for %d inputs", len(sigs), len(inputs))
	}
	return sigs
}

func TestTransitSignsInOneRequestAndVerifiesLocally(t *testing.T) {
	t.Parallel()
	v := vaulttest.Start(t)
	for _, keyType := range []string{"ed25519", "ecdsa-p256"} {
		t.Run(keyType, func(t *testing.T) {
			key := signingKey + "-" + keyType
			v.CreateTransitKey(t, key, keyType)
			p, _ := newProvider(t, rootConfig(v))
			tr, err := p.Transit("transit", key)
			if err != nil {
				t.Fatal(err)
			}
			inputs := []string{"head one", "head two", "head three"}
			sigs := sign(t, tr, inputs...)
			for i, s := range sigs {
				if s.KeyVersion != 1 || !strings.HasPrefix(s.Value, "vault:v1:") {
					t.Errorf("signature %d is %+v, want key version 1", i, s)
				}
				if err := tr.Verify(t.Context(), []byte(inputs[i]), s); err != nil {
					t.Errorf("Verify(input %d): %v", i, err)
				}
				// Vault's own verify accepts them: they are Transit's format.
				got := v.Write(t, "transit/verify/"+key, map[string]any{
					"input": base64.StdEncoding.EncodeToString([]byte(inputs[i])), "signature": s.Value,
				})
				if got.Data["valid"] != true {
					t.Errorf("transit/verify says %v of signature %d", got.Data, i)
				}
			}

			// Every way a stored signature can be wrong is ErrBadSignature.
			// A character in the middle: the last ones of an ed25519
			// signature's base64 hold padding bits a decoder may ignore.
			flipped := []byte(sigs[0].Value)
			mid := len(flipped) / 2
			if flipped[mid] == 'A' {
				flipped[mid] = 'B'
			} else {
				flipped[mid] = 'A'
			}
			tests := []struct {
				name  string
				input string
				sig   credentials.Signature
			}{
				{"another input", inputs[1], sigs[0]},
				{"a changed input", inputs[0] + " ", sigs[0]},
				{"changed signature bytes", inputs[0], credentials.Signature{Value: string(flipped), KeyVersion: 1}},
				{"a recorded version other than the signature's", inputs[0], credentials.Signature{Value: sigs[0].Value, KeyVersion: 2}},
				{"not a Vault signature", inputs[0], credentials.Signature{Value: "v1:abc", KeyVersion: 1}},
				{"empty", inputs[0], credentials.Signature{}},
				{"a version the key never had", inputs[0], credentials.Signature{
					Value: strings.Replace(sigs[0].Value, "vault:v1:", "vault:v9:", 1), KeyVersion: 9}},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					err := tr.Verify(t.Context(), []byte(tt.input), tt.sig)
					if !errors.Is(err, credentials.ErrBadSignature) || errors.Is(err, credentials.ErrUnavailable) {
						t.Errorf("Verify = %v, want ErrBadSignature", err)
					}
				})
			}
		})
	}
}

func TestTransitKeyRotation(t *testing.T) {
	t.Parallel()
	v := vaulttest.Start(t)
	v.CreateTransitKey(t, signingKey, "ed25519")
	cfg := rootConfig(v)
	// The refresh interval is how long a raised min_decryption_version may
	// take to be seen.
	cfg.RefreshInterval = 200 * time.Millisecond
	signerP, _ := newProvider(t, cfg)
	verifierP, _ := newProvider(t, cfg)
	signer, verifier := newTransit(t, signerP), newTransit(t, verifierP)

	old := sign(t, signer, "old head")[0]
	// The verifier caches the key at version 1, as a replica would.
	if err := verifier.Verify(t.Context(), []byte("old head"), old); err != nil {
		t.Fatal(err)
	}
	if got := v.RotateTransitKey(t, signingKey); got != 2 {
		t.Fatalf("rotated to version %d, want 2", got)
	}
	fresh := sign(t, signer, "new head")[0]
	if fresh.KeyVersion != 2 || !strings.HasPrefix(fresh.Value, "vault:v2:") {
		t.Fatalf("after the rotation, signature %+v, want key version 2", fresh)
	}
	// A version newer than the cache makes the verifier read the key again;
	// the old version still verifies.
	for _, c := range []struct {
		input string
		sig   credentials.Signature
	}{{"new head", fresh}, {"old head", old}} {
		if err := verifier.Verify(t.Context(), []byte(c.input), c.sig); err != nil {
			t.Errorf("Verify(%s, v%d) after the rotation: %v", c.input, c.sig.KeyVersion, err)
		}
	}

	// Retiring version 1 (a leaked key) refuses its signatures once the
	// verifier has re-read the key.
	v.RetireTransitKeyVersions(t, signingKey, 2)
	time.Sleep(cfg.RefreshInterval)
	err := verifier.Verify(t.Context(), []byte("old head"), old)
	if !errors.Is(err, credentials.ErrBadSignature) || !strings.Contains(err.Error(), "retired") {
		t.Errorf("Verify(v1) after retiring it = %v, want ErrBadSignature naming the retirement", err)
	}
	if err := verifier.Verify(t.Context(), []byte("new head"), fresh); err != nil {
		t.Errorf("Verify(v2) after retiring v1: %v", err)
	}
}

func TestTransitWhileVaultIsDown(t *testing.T) {
	t.Parallel()
	v := vaulttest.Start(t)
	v.CreateTransitKey(t, signingKey, "ed25519")
	cfg := rootConfig(v)
	cfg.RequestTimeout = 2 * time.Second
	p, _ := newProvider(t, cfg)
	tr := newTransit(t, p)
	sig := sign(t, tr, "head")[0]
	if err := tr.Verify(t.Context(), []byte("head"), sig); err != nil {
		t.Fatal(err)
	}

	v.Stop()
	// Verifying needs no Vault once the key is cached ...
	if err := tr.Verify(t.Context(), []byte("head"), sig); err != nil {
		t.Errorf("Verify with Vault down: %v", err)
	}
	if err := tr.Verify(t.Context(), []byte("changed"), sig); !errors.Is(err, credentials.ErrBadSignature) {
		t.Errorf("Verify of a changed input with Vault down = %v, want ErrBadSignature", err)
	}
	// ... signing does, and says so.
	if _, err := tr.Sign(t.Context(), [][]byte{[]byte("head 2")}); !errors.Is(err, credentials.ErrUnavailable) {
		t.Errorf("Sign with Vault down = %v, want ErrUnavailable", err)
	}
	// A version the cache has not seen cannot be judged: unavailable, not
	// bad, so a rotation during an outage does not read as tampering.
	newer := credentials.Signature{Value: strings.Replace(sig.Value, "vault:v1:", "vault:v2:", 1), KeyVersion: 2}
	err := tr.Verify(t.Context(), []byte("head"), newer)
	if !errors.Is(err, credentials.ErrUnavailable) || errors.Is(err, credentials.ErrBadSignature) {
		t.Errorf("Verify of an unseen version with Vault down = %v, want ErrUnavailable", err)
	}
}

func TestTransitRefusals(t *testing.T) {
	t.Parallel()
	v := vaulttest.Start(t)
	v.CreateTransitKey(t, signingKey, "ed25519")
	v.CreateTransitKey(t, "bankbridge-test-aes", "aes256-gcm96")

	t.Run("a policy without the key", func(t *testing.T) {
		v.PutPolicy(t, "no-transit", vaulttest.BankReadPolicy("acme"))
		cfg := rootConfig(v)
		cfg.Auth.Token = credentials.Sensitive(v.CreateToken(t, vaulttest.TokenRequest{Policies: []string{"no-transit"}}))
		p, _ := newProvider(t, cfg)
		_, err := newTransit(t, p).Sign(t.Context(), [][]byte{[]byte("head")})
		if !errors.Is(err, credentials.ErrPermissionDenied) || !errors.Is(err, credentials.ErrUnavailable) {
			t.Errorf("Sign = %v, want ErrPermissionDenied and ErrUnavailable", err)
		}
	})
	t.Run("a key that cannot sign", func(t *testing.T) {
		p, _ := newProvider(t, rootConfig(v))
		tr, err := p.Transit("", "bankbridge-test-aes")
		if err != nil {
			t.Fatal(err)
		}
		_, err = tr.Sign(t.Context(), [][]byte{[]byte("head")})
		if !errors.Is(err, credentials.ErrUnavailable) || !strings.Contains(err.Error(), "aes256-gcm96") {
			t.Errorf("Sign = %v, want ErrUnavailable naming the key type", err)
		}
	})
	t.Run("names that could reach another path", func(t *testing.T) {
		p, _ := newProvider(t, rootConfig(v))
		for _, c := range [][2]string{{"transit", "../sys"}, {"transit", "a/b"}, {"..", "key"}, {"transit", ""}} {
			if _, err := p.Transit(c[0], c[1]); err == nil {
				t.Errorf("Transit(%q, %q) accepted", c[0], c[1])
			}
		}
	})
}
