package events_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/bankbridge/bankbridge/services/platform/events"
)

func TestEventValidate(t *testing.T) {
	ok := events.Event{ID: "e1", Type: "consent.link.expiring", User: "alice", Source: "consent", Client: "c", Data: []byte(`{"a":1}`)}
	// audience makes the event an audience event: about a parcel, for
	// the users listed, and for no client's webhooks.
	audience := func(resources ...string) func(*events.Event) {
		return func(e *events.Event) {
			e.User, e.Client, e.Type, e.Audience = "parcels/ups/1Z999AA10123456784", "", "shipping.parcel.tracked", resources
		}
	}
	tests := []struct {
		name   string
		change func(*events.Event)
		valid  bool
		// why, for an invalid event, is what the error must name.
		why string
	}{
		{"valid", func(*events.Event) {}, true, ""},
		{"no data", func(e *events.Event) { e.Data = nil }, true, ""},
		{"no id", func(e *events.Event) { e.ID = "" }, false, "ID"},
		{"id with a space", func(e *events.Event) { e.ID = "a b" }, false, "ID"},
		{"no user", func(e *events.Event) { e.User = "" }, false, "User"},
		{"no type", func(e *events.Event) { e.Type = "" }, false, "type"},
		{"empty type token", func(e *events.Event) { e.Type = "consent..expiring" }, false, "type"},
		{"wildcard type", func(e *events.Event) { e.Type = "consent.>" }, false, "type"},
		{"type with a space", func(e *events.Event) { e.Type = "consent link" }, false, "type"},
		{"client with a newline", func(e *events.Event) { e.Client = "c\nX-Injected: 1" }, false, "Client"},
		{"data not JSON", func(e *events.Event) { e.Data = []byte("not json") }, false, "Data"},
		{"data too large", func(e *events.Event) { e.Data = []byte(`"` + strings.Repeat("x", events.MaxDataBytes) + `"`) }, false, "Data"},

		{"audience", audience("users/alice/shipments/a1", "users/bob/shipments/b1"), true, ""},
		{"audience of one", audience("users/alice/shipments/a1"), true, ""},
		{"audience with a client", func(e *events.Event) {
			audience("users/alice/shipments/a1")(e)
			e.Client = "chat-app"
		}, false, "Client"},
		{"audience entry outside users/", audience("users/alice/shipments/a1", "shipments/b1"), false, `"shipments/b1"`},
		{"audience entry of another collection", audience("clients/chat-app/endpoints/ep1"), false, "clients/chat-app"},
		{"audience entry of no user", audience("users//shipments/b1"), false, "users//shipments/b1"},
		{"empty audience entry", audience("users/alice/shipments/a1", ""), false, `Audience entry ""`},
		{"audience entry with a newline", audience("users/alice/shipments/a1\nusers/mallory/shipments/m1"), false, "Audience entry"},
		{"audience entry with a carriage return", audience("users/alice/shipments/a1\r"), false, "Audience entry"},
		{"audience too large", audience(manyResources(events.MaxAudienceBytes / 20)...), false, "bytes"},
		{"one audience entry too large", audience("users/alice/shipments/" + strings.Repeat("x", events.MaxAudienceBytes)), false, "bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := ok
			tt.change(&e)
			err := e.Validate()
			if (err == nil) != tt.valid {
				t.Fatalf("Validate() = %v, want valid %v", err, tt.valid)
			}
			if err != nil && !strings.Contains(err.Error(), tt.why) {
				t.Errorf("Validate() = %v, want it to name %s", err, tt.why)
			}
		})
	}
}

// manyResources are n recipients' resources, of varied lengths.
func manyResources(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("users/user-%d/shipments/%s%d", i%997, strings.Repeat("s", i%13), i)
	}
	return out
}

// audienceEvent is an event that reaches every resource's user.
func audienceEvent(id string, resources []string) events.Event {
	return events.Event{
		ID: id, Type: "shipping.parcel.tracked", Source: "test", User: "parcels/ups/1Z999AA10123456784",
		Resource: "parcels/ups/1Z999AA10123456784", Data: []byte(`{"status":"IN_TRANSIT"}`), Audience: resources,
	}
}

func TestSplitAudience(t *testing.T) {
	t.Parallel()
	large := manyResources(3 * events.MaxAudienceBytes / 30)
	tests := []struct {
		name      string
		resources []string
		chunks    int // at least
	}{
		{"one", []string{"users/alice/shipments/a1"}, 1},
		{"a few", []string{"users/alice/shipments/a1", "users/bob/shipments/b1", "users/alice/shipments/a2"}, 1},
		{"more than one event holds", large, 2},
		{"entries of a full event each", []string{
			"users/a/shipments/" + strings.Repeat("a", events.MaxAudienceBytes-30),
			"users/b/shipments/" + strings.Repeat("b", events.MaxAudienceBytes-30),
			"users/c/shipments/c",
		}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := slices.Clone(tt.resources)
			got := events.SplitAudience(tt.resources)
			if len(got) < tt.chunks {
				t.Fatalf("%d audiences, want at least %d", len(got), tt.chunks)
			}
			if joined := slices.Concat(got...); !slices.Equal(joined, in) {
				t.Fatalf("the audiences joined are %d resources, not the %d given in their order", len(joined), len(in))
			}
			if !slices.Equal(tt.resources, in) {
				t.Fatal("SplitAudience changed its input")
			}
			for i, a := range got {
				if len(a) == 0 {
					t.Fatalf("audience %d is empty", i)
				}
				// Every audience makes an event that can be written ...
				if err := audienceEvent("e", a).Validate(); err != nil {
					t.Fatalf("audience %d of %d (%d resources): %v", i, len(got), len(a), err)
				}
				// ... and none was cut short: with the next resource it
				// would not be.
				if i+1 < len(got) {
					if err := audienceEvent("e", append(slices.Clone(a), got[i+1][0])).Validate(); err == nil {
						t.Fatalf("audience %d was cut although the next resource fits in it", i)
					}
				}
			}
		})
	}
	for _, empty := range [][]string{nil, {}} {
		if got := events.SplitAudience(empty); len(got) != 0 {
			t.Errorf("SplitAudience(%#v) = %d audiences, want none", empty, len(got))
		}
	}
}
