package adapters_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bankbridge/bankbridge/adapters"
)

func writeKey(t *testing.T, path, key string) {
	t.Helper()
	// Write then rename, as a secret manager would: readers never see half
	// a key.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(key), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestNewKeyFileRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		content *string
		wantErr string
	}{
		{name: "missing file", wantErr: "read api key file"},
		{name: "empty file", content: ptr("  \n"), wantErr: "is empty"},
		{name: "two words", content: ptr("key one\n"), wantErr: "one word of printable ASCII"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "api-key")
			if tt.content != nil {
				writeKey(t, path, *tt.content)
			}
			_, err := adapters.NewKeyFile(path, time.Minute)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("got %v, want an error saying %q", err, tt.wantErr)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestKeyFileRotation(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "api-key")
	writeKey(t, path, "first-key-0001\n")
	const grace = 300 * time.Millisecond
	k, err := adapters.NewKeyFile(path, grace)
	if err != nil {
		t.Fatal(err)
	}
	if got := k.Keys(); !slices.Equal(got, []string{"first-key-0001"}) {
		t.Fatalf("Keys() = %q", got)
	}

	ctx, cancel := context.WithCancel(t.Context())
	rotated := make(chan struct{}, 1)
	watching := make(chan struct{})
	go func() {
		defer close(watching)
		k.Watch(ctx, 10*time.Millisecond, func() { rotated <- struct{}{} }, func(err error) { t.Errorf("watch: %v", err) })
	}()
	defer func() { cancel(); <-watching }()

	writeKey(t, path, "second-key-0002")
	select {
	case <-rotated:
	case <-time.After(2 * time.Second):
		t.Fatal("the rotation was not noticed")
	}
	if got := k.Keys(); !slices.Equal(got, []string{"second-key-0002", "first-key-0001"}) {
		t.Errorf("during the grace period Keys() = %q, want the new and the old key", got)
	}
	time.Sleep(grace + 50*time.Millisecond)
	if got := k.Keys(); !slices.Equal(got, []string{"second-key-0002"}) {
		t.Errorf("after the grace period Keys() = %q, want the new key only", got)
	}
}

func TestKeyFileKeepsKeysWhenUnreadable(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "api-key")
	writeKey(t, path, "first-key-0001")
	k, err := adapters.NewKeyFile(path, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Reload(); err == nil {
		t.Error("Reload of a missing file: want an error")
	}
	if got := k.Keys(); !slices.Equal(got, []string{"first-key-0001"}) {
		t.Errorf("Keys() = %q after a failed read, want the key kept", got)
	}
}
