package events_test

import (
	"strings"
	"testing"

	"github.com/bankbridge/bankbridge/services/platform/events"
)

func TestEventValidate(t *testing.T) {
	ok := events.Event{ID: "e1", Type: "consent.link.expiring", User: "alice", Source: "consent", Client: "c", Data: []byte(`{"a":1}`)}
	tests := []struct {
		name   string
		change func(*events.Event)
		valid  bool
	}{
		{"valid", func(*events.Event) {}, true},
		{"no data", func(e *events.Event) { e.Data = nil }, true},
		{"no id", func(e *events.Event) { e.ID = "" }, false},
		{"id with a space", func(e *events.Event) { e.ID = "a b" }, false},
		{"no user", func(e *events.Event) { e.User = "" }, false},
		{"no type", func(e *events.Event) { e.Type = "" }, false},
		{"empty type token", func(e *events.Event) { e.Type = "consent..expiring" }, false},
		{"wildcard type", func(e *events.Event) { e.Type = "consent.>" }, false},
		{"type with a space", func(e *events.Event) { e.Type = "consent link" }, false},
		{"client with a newline", func(e *events.Event) { e.Client = "c\nX-Injected: 1" }, false},
		{"data not JSON", func(e *events.Event) { e.Data = []byte("not json") }, false},
		{"data too large", func(e *events.Event) { e.Data = []byte(`"` + strings.Repeat("x", events.MaxDataBytes) + `"`) }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := ok
			tt.change(&e)
			if err := e.Validate(); (err == nil) != tt.valid {
				t.Errorf("Validate() = %v, want valid %v", err, tt.valid)
			}
		})
	}
}
