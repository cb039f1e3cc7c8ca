package app

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/bankbridge/bankbridge/adapters/stdwebhook"
	"time"
)

// Webhooks follow the Standard Webhooks specification, signed by
// adapters/stdwebhook (webhook-id is the event id, the same on every
// attempt), and the body is {"type", "timestamp", "data"}.

// Header names of a webhook.
const (
	HeaderID        = stdwebhook.HeaderID
	HeaderTimestamp = stdwebhook.HeaderTimestamp
	HeaderSignature = stdwebhook.HeaderSignature
)

// maxSecrets bounds how many secrets sign at once: rotating many times
// within one overlap keeps at most this many (the newest).
const maxSecrets = 5

// SigningSecret is one secret of an endpoint.
type SigningSecret struct {
	// Value is "whsec_" and the base64 of the key.
	Value      string    `json:"value"`
	CreateTime time.Time `json:"create_time"`
	// ExpireTime is when a replaced secret stops signing; zero for the
	// current one.
	ExpireTime time.Time `json:"expire_time,omitzero"`
}

func (s SigningSecret) key() ([]byte, error) { return stdwebhook.Key(s.Value) }

// NewSecret draws a fresh signing secret.
func NewSecret(now time.Time) SigningSecret {
	return SigningSecret{Value: stdwebhook.NewSecret(), CreateTime: now}
}

// SecretSet is an endpoint's secrets, the current one first.
type SecretSet []SigningSecret

// Current is the newest secret, the one returned to the client.
func (s SecretSet) Current() SigningSecret {
	if len(s) == 0 {
		return SigningSecret{}
	}
	return s[0]
}

// Signing returns the secrets that sign at now: the current one, and the
// replaced ones whose overlap has not ended.
func (s SecretSet) Signing(now time.Time) SecretSet {
	var out SecretSet
	for i, sec := range s {
		if i == 0 || now.Before(sec.ExpireTime) {
			out = append(out, sec)
		}
	}
	return out
}

// Rotate returns the set with fresh as its current secret: the secrets
// signing now keep signing until now+overlap at the latest, the others
// are dropped.
func (s SecretSet) Rotate(now time.Time, overlap time.Duration, fresh SigningSecret) SecretSet {
	out := SecretSet{fresh}
	until := now.Add(overlap)
	for _, sec := range s.Signing(now) {
		if !now.Before(until) {
			break
		}
		if sec.ExpireTime.IsZero() || sec.ExpireTime.After(until) {
			sec.ExpireTime = until
		}
		if len(out) < maxSecrets {
			out = append(out, sec)
		}
	}
	return out
}

// PreviousExpire is until when a replaced secret signs, or zero.
func (s SecretSet) PreviousExpire(now time.Time) time.Time {
	var last time.Time
	for _, sec := range s.Signing(now)[min(1, len(s)):] {
		if sec.ExpireTime.After(last) {
			last = sec.ExpireTime
		}
	}
	return last
}

// Encode renders the set for the secret store.
func (s SecretSet) Encode() (string, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return "", fmt.Errorf("encode signing secrets: %w", err)
	}
	return string(b), nil
}

// DecodeSecrets reads what Encode wrote.
func DecodeSecrets(v string) (SecretSet, error) {
	var s SecretSet
	if err := json.Unmarshal([]byte(v), &s); err != nil || len(s) == 0 {
		return nil, errors.New("decode signing secrets: malformed")
	}
	for _, sec := range s {
		if _, err := sec.key(); err != nil {
			return nil, fmt.Errorf("decode signing secrets: %w", err)
		}
	}
	return s, nil
}

// Sign returns the webhook-signature header of a message: one
// "v1,<base64 HMAC-SHA256>" per secret, space-separated.
func Sign(secrets SecretSet, id string, timestamp time.Time, body []byte) (string, error) {
	values := make([]string, len(secrets))
	for i, sec := range secrets {
		values[i] = sec.Value
	}
	return stdwebhook.Sign(values, id, timestamp, body)
}

// Payload is the body of an event's webhook:
//
//	{"type": "consent.link.expiring", "timestamp": "2026-...Z",
//	 "data": {"id": "<event id>", "resource": "users/.../links/...", ...}}
//
// data holds the event's own thin payload (ids, types, names) with id and
// resource set from the event. Keys are sorted, so a body is the same on
// every attempt.
func Payload(e Event) ([]byte, error) {
	data := map[string]json.RawMessage{}
	if len(e.Data) > 0 {
		// A payload that is not a JSON object adds nothing: id and
		// resource are what a receiver needs.
		_ = json.Unmarshal(e.Data, &data)
		if data == nil {
			data = map[string]json.RawMessage{}
		}
	}
	for k, v := range map[string]string{"id": e.ID, "resource": e.Resource} {
		raw, _ := json.Marshal(v) // strings always marshal
		data[k] = raw
	}
	return json.Marshal(struct {
		Type      string                     `json:"type"`
		Timestamp string                     `json:"timestamp"`
		Data      map[string]json.RawMessage `json:"data"`
	}{Type: e.Type, Timestamp: e.Time.UTC().Format(time.RFC3339Nano), Data: data})
}
