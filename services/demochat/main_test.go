package main

import (
	"context"
	"strings"
	"testing"
)

// TestRefusesWhatItMustNotServe: the demo chat is a dev tool in plain
// HTTP, so it listens on loopback only, and it names a bad upstream or CA
// at start rather than failing on the first click.
func TestRefusesWhatItMustNotServe(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"every interface", []string{"--addr=0.0.0.0:0"}, "loopback address only"},
		{"another host", []string{"--addr=192.0.2.1:8088"}, "loopback address only"},
		{"a gateway that is no URL", []string{"--addr=127.0.0.1:0", "--gateway-url=127.0.0.1:8080"}, "--gateway-url"},
		{"a gateway URL with a path", []string{"--addr=127.0.0.1:0", "--gateway-url=https://127.0.0.1:8080/v1"}, "--gateway-url"},
		{"a sandbox that is no URL", []string{"--addr=127.0.0.1:0", "--sandbox-admin-url=ftp://x"}, "--sandbox-admin-url"},
		{"a missing CA file", []string{"--addr=127.0.0.1:0", "--ca-file=/nonexistent/ca.pem"}, "--ca-file"},
		{"arguments", []string{"--addr=127.0.0.1:0", "extra"}, "unexpected arguments"},
	}
	for _, tt := range tests {
		err := run(context.Background(), tt.args)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error naming %q", tt.name, err, tt.want)
		}
	}
}

// TestServesUntilStopped: on loopback it serves, and stops when told.
func TestServesUntilStopped(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"--addr=127.0.0.1:0"}) }()
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run: %v", err)
	}
}
