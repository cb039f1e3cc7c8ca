package pseudonym_test

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/bankbridge/bankbridge/services/platform/pseudonym"
)

var (
	keyA = strings.Repeat("a1", 32) // hex, 32 bytes
	keyB = strings.Repeat("b2", 32)
)

func mustRefs(t *testing.T, key string) *pseudonym.Refs {
	t.Helper()
	r, err := pseudonym.New(pseudonym.ParseKey(key))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestReferencesAreStableKeyedAndShort: one key gives one reference per
// user everywhere (two processes with the same key agree); another key
// gives unrelated ones; a user and a link of the same text differ; the
// id itself never shows.
func TestReferencesAreStableKeyedAndShort(t *testing.T) {
	t.Parallel()
	one, other, elsewhere := mustRefs(t, keyA), mustRefs(t, keyB), mustRefs(t, keyA)
	const user, link = "alice", "users/alice/links/l-1"
	if one.User(user) != elsewhere.User(user) || one.Link(link) != elsewhere.Link(link) {
		t.Error("the same key gives different references in two processes")
	}
	if one.User(user) == other.User(user) || one.Link(link) == other.Link(link) {
		t.Error("another key gives the same references")
	}
	if one.User(user) == one.User("bob") {
		t.Error("two users share a reference")
	}
	if strings.TrimPrefix(one.User("x"), "u_") == strings.TrimPrefix(one.Link("x"), "l_") {
		t.Error("a user and a link of the same text share a hash")
	}
	if got := one.User(user); !regexp.MustCompile(`^u_[0-9a-f]{16}$`).MatchString(got) || strings.Contains(got, user) {
		t.Errorf("User = %q, want u_ and 16 hex digits", got)
	}
	if got := one.Link(link); !regexp.MustCompile(`^l_[0-9a-f]{16}$`).MatchString(got) {
		t.Errorf("Link = %q, want l_ and 16 hex digits", got)
	}
	var none *pseudonym.Refs
	if none.User(user) != "" || one.User("") != "" {
		t.Error("nil Refs or an empty id make a reference")
	}
}

func TestShortKeysAreRefused(t *testing.T) {
	t.Parallel()
	if _, err := pseudonym.New([]byte("short")); err == nil {
		t.Error("a 5-byte key was taken")
	}
}

type secrets map[string]map[string]string

func (s secrets) Get(_ context.Context, id string) (map[string]string, error) {
	d, ok := s[id]
	if !ok {
		return nil, errors.New("not found")
	}
	return d, nil
}

// TestLoadReadsTheKeyField: the key is the secret's "key" field; a secret
// without it is ErrNoKey.
func TestLoadReadsTheKeyField(t *testing.T) {
	t.Parallel()
	r, err := pseudonym.Load(t.Context(), secrets{pseudonym.PathID: {pseudonym.KeyField: keyA}})
	if err != nil || r.User("alice") != mustRefs(t, keyA).User("alice") {
		t.Fatalf("Load: %v", err)
	}
	if _, err := pseudonym.Load(t.Context(), secrets{pseudonym.PathID: {"other": keyA}}); !errors.Is(err, pseudonym.ErrNoKey) {
		t.Errorf("Load without the key field: %v, want ErrNoKey", err)
	}
}
