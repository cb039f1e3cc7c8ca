package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/bankbridge/bankbridge/services/platform/names"
)

// How an event looks on the bus.
//
// Subject: <prefix>.<userRef>.<type>, e.g.
// bankbridge.events.u3k9....consent.link.expiring. The user's pseudonym
// comes before the type so that either filter is one wildcard subject: one
// user's events are <prefix>.<ref>.>, one type's events <prefix>.*.<type>.
//
// Headers: Nats-Msg-Id (the event id, so JetStream drops a republished
// duplicate), Bankbridge-Event-Type, Bankbridge-Event-Source and
// Bankbridge-Event-Client. Neither the subject nor a header names the user
// or the resource.
//
// Payload: the Event as JSON (wireEvent), version 1; Data is embedded as
// the JSON it is (protojson of the source's message), not base64, so a
// message read with the nats CLI is legible. An audience event lists its
// recipients' resources in "audience" (absent otherwise, so version 1
// readers of other events see no change).
const (
	headerType   = "Bankbridge-Event-Type"
	headerSource = "Bankbridge-Event-Source"
	headerClient = "Bankbridge-Event-Client"
)

// MaxDataBytes bounds Event.Data: payloads are thin, and an event too large
// for the bus would block its user's later events in the outbox.
const MaxDataBytes = 64 << 10

// wireEvent is the payload of a message on the bus.
type wireEvent struct {
	V        int             `json:"v"`
	ID       string          `json:"id"`
	Type     string          `json:"type"`
	Source   string          `json:"source,omitempty"`
	User     string          `json:"user"`
	Client   string          `json:"client,omitempty"`
	Resource string          `json:"resource,omitempty"`
	Time     time.Time       `json:"time"`
	Data     json.RawMessage `json:"data,omitempty"`
	Audience []string        `json:"audience,omitempty"`
}

const wireVersion = 1

func encodeEvent(e Event) ([]byte, error) {
	// Without HTML escaping, a string is as long on the wire as Validate
	// counted it (json.Marshal writes each <, > and & as six bytes).
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(wireEvent{
		V: wireVersion, ID: e.ID, Type: e.Type, Source: e.Source, User: e.User,
		Client: e.Client, Resource: e.Resource, Time: e.Time.UTC(), Data: json.RawMessage(e.Data), Audience: e.Audience,
	}); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

func decodeEvent(b []byte) (Event, error) {
	var w wireEvent
	if err := json.Unmarshal(b, &w); err != nil {
		return Event{}, fmt.Errorf("events: payload: %w", err)
	}
	if w.V != wireVersion {
		return Event{}, fmt.Errorf("events: payload version %d, want %d", w.V, wireVersion)
	}
	e := Event{ID: w.ID, Type: w.Type, Source: w.Source, User: w.User, Client: w.Client,
		Resource: w.Resource, Time: w.Time, Data: []byte(w.Data), Audience: w.Audience}
	if len(e.Data) == 0 {
		e.Data = nil
	}
	return e, nil
}

// Validate reports what keeps e from being written or published: an empty
// ID, User or Type, a Type that is not dot-separated tokens of letters,
// digits, '_' and '-', Data that is not JSON or larger than MaxDataBytes.
// Source and Client, which ride in headers, must be printable ASCII
// without spaces.
func (e Event) Validate() error {
	var problems []string
	if e.ID == "" || len(e.ID) > 128 || !printable(e.ID) {
		problems = append(problems, "ID must be 1 to 128 printable characters")
	}
	if e.User == "" {
		problems = append(problems, "User is empty")
	}
	if err := checkType(e.Type, false); err != nil {
		problems = append(problems, err.Error())
	}
	if !printable(e.Source) || !printable(e.Client) {
		problems = append(problems, "Source and Client must be printable ASCII without spaces")
	}
	if len(e.Data) > MaxDataBytes {
		problems = append(problems, fmt.Sprintf("Data is %d bytes, more than %d", len(e.Data), MaxDataBytes))
	} else if len(e.Data) > 0 && !json.Valid(e.Data) {
		problems = append(problems, "Data is not JSON")
	}
	if len(e.Audience) > 0 {
		problems = append(problems, checkAudience(e)...)
	}
	if len(problems) > 0 {
		return fmt.Errorf("events: invalid event %q: %s", e.ID, strings.Join(problems, "; "))
	}
	return nil
}

// checkAudience reports what is wrong with an audience event.
func checkAudience(e Event) []string {
	var problems []string
	if e.Client != "" {
		problems = append(problems, "an event with an Audience goes to no webhook: Client must be empty")
	}
	size := 0
	for _, r := range e.Audience {
		size += len(r) + 3
		// Printable ASCII without quotes or backslashes: an entry is as
		// long in the payload as counted here.
		if _, ok := names.UserOf(r); !ok || !printable(r) || strings.ContainsAny(r, "\"\\") {
			problems = append(problems, fmt.Sprintf("Audience entry %q is not a resource under users/{user}/", r))
			break
		}
	}
	if size > MaxAudienceBytes {
		problems = append(problems, fmt.Sprintf("Audience is %d bytes, more than %d (SplitAudience)", size, MaxAudienceBytes))
	}
	return problems
}

// checkType accepts dot-separated tokens of [A-Za-z0-9_-]; with wildcards,
// a token may also be "*", and the last one ">" (Filter.Types).
func checkType(t string, wildcards bool) error {
	if t == "" {
		return errors.New("type is empty")
	}
	tokens := strings.Split(t, ".")
	for i, tok := range tokens {
		switch {
		case wildcards && tok == "*":
		case wildcards && tok == ">" && i == len(tokens)-1:
		case tok == "" || strings.IndexFunc(tok, func(r rune) bool {
			return (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') && (r < '0' || r > '9') && r != '_' && r != '-'
		}) >= 0:
			return fmt.Errorf("type %q is not dot-separated tokens of letters, digits, '_' and '-'", t)
		}
	}
	return nil
}

// printable reports whether s is printable ASCII without spaces (safe in a
// header value).
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}
