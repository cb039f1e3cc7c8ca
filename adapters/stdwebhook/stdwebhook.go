// Package stdwebhook signs and verifies messages in the Standard Webhooks
// scheme (github.com/standard-webhooks/standard-webhooks,
// spec/standard-webhooks.md), the one way bankbridge signs what it sends
// (webhooks to product teams) and checks what it is sent (carrier pushes):
//
//	webhook-id:        the message id, the same on every attempt
//	webhook-timestamp: the attempt's time, unix seconds
//	webhook-signature: "v1,<base64 HMAC-SHA256>" per signing secret,
//	                   space-separated, of "<id>.<timestamp>.<body>" keyed
//	                   with the secret's base64-decoded bytes
//
// A secret is written "whsec_" followed by the base64 of its key. The
// package is in the adapter SDK so that a carrier or bank integrator signs
// exactly as bankbridge verifies.
package stdwebhook

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header names of a signed message.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// SecretPrefix marks a signing secret.
const SecretPrefix = "whsec_"

// secretBytes is the size of a fresh secret's key: that of the HMAC.
const secretBytes = 32

// DefaultTolerance is how far a message's timestamp may be from the
// receiver's clock, either way, as the specification recommends.
const DefaultTolerance = 5 * time.Minute

// Errors Verify returns; each means the message must be refused.
var (
	ErrMissingHeaders = errors.New("stdwebhook: webhook-id, webhook-timestamp or webhook-signature missing")
	ErrTimestamp      = errors.New("stdwebhook: timestamp malformed or outside the tolerance")
	ErrSignature      = errors.New("stdwebhook: no signature matches")
	ErrSecret         = errors.New("stdwebhook: malformed signing secret")
)

// NewSecret draws a fresh signing secret, "whsec_<base64 key>".
func NewSecret() string {
	k := make([]byte, secretBytes)
	_, _ = rand.Read(k) // never fails
	return SecretPrefix + base64.StdEncoding.EncodeToString(k)
}

// Key returns the HMAC key of a "whsec_..." secret.
func Key(secret string) ([]byte, error) {
	rest, ok := strings.CutPrefix(secret, SecretPrefix)
	k, err := base64.StdEncoding.DecodeString(rest)
	if !ok || err != nil || len(k) == 0 {
		return nil, ErrSecret
	}
	return k, nil
}

// Sign returns the webhook-signature header of a message: one
// "v1,<base64 HMAC-SHA256>" per secret, space-separated (several while a
// rotated secret still signs).
func Sign(secrets []string, id string, timestamp time.Time, body []byte) (string, error) {
	sigs := make([]string, 0, len(secrets))
	for _, sec := range secrets {
		k, err := Key(sec)
		if err != nil {
			return "", err
		}
		sigs = append(sigs, "v1,"+base64.StdEncoding.EncodeToString(mac(k, id, timestamp.Unix(), body)))
	}
	return strings.Join(sigs, " "), nil
}

// SetHeaders signs body and sets the three headers on h.
func SetHeaders(h http.Header, secrets []string, id string, timestamp time.Time, body []byte) error {
	sig, err := Sign(secrets, id, timestamp, body)
	if err != nil {
		return err
	}
	h.Set(HeaderID, id)
	h.Set(HeaderTimestamp, strconv.FormatInt(timestamp.Unix(), 10))
	h.Set(HeaderSignature, sig)
	return nil
}

// Verify checks a received message: its headers are present, its
// timestamp is within tolerance of now, and one of its signatures was made
// with one of secrets (compared in constant time). It returns the message
// id, which the receiver must also check was not seen before (replay).
func Verify(secrets []string, h http.Header, body []byte, now time.Time, tolerance time.Duration) (string, error) {
	id, ts, sigs := h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	if id == "" || ts == "" || sigs == "" {
		return "", ErrMissingHeaders
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return "", ErrTimestamp
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return "", ErrTimestamp
	}
	for _, secret := range secrets {
		k, err := Key(secret)
		if err != nil {
			return "", err
		}
		want := mac(k, id, sec, body)
		for _, sig := range strings.Fields(sigs) {
			b64, ok := strings.CutPrefix(sig, "v1,")
			if !ok {
				continue
			}
			got, err := base64.StdEncoding.DecodeString(b64)
			if err == nil && hmac.Equal(got, want) {
				return id, nil
			}
		}
	}
	return "", ErrSignature
}

func mac(key []byte, id string, unix int64, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + strconv.FormatInt(unix, 10) + "."))
	m.Write(body)
	return m.Sum(nil)
}
