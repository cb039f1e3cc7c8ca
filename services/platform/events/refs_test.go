package events_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/bankbridge/bankbridge/services/platform/events"
)

func TestRefs(t *testing.T) {
	refs := events.NewRefs(testKey)
	shape := regexp.MustCompile(`^u[a-z2-7]{26}$`)
	tests := []struct {
		name string
		user string
	}{
		{"plain", "alice"},
		{"email-like", "alice@example.com"},
		{"with subject wildcards", "a.b*c>d e"},
		{"empty", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ref := refs.User(tt.user)
			if !shape.MatchString(ref) {
				t.Errorf("ref %q is not u + 26 base32 characters (one subject token)", ref)
			}
			if tt.user != "" && strings.Contains(ref, tt.user) {
				t.Errorf("ref %q contains the user", ref)
			}
			if again := events.NewRefs(testKey).User(tt.user); again != ref {
				t.Errorf("not stable: %q then %q", ref, again)
			}
			if other := events.NewRefs([]byte("another key")).User(tt.user); other == ref {
				t.Error("the same ref under another key: not keyed")
			}
		})
	}
	if refs.User("alice") == refs.User("bob") {
		t.Error("two users share a ref")
	}
}
