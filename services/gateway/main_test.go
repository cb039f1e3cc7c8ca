package main

import (
	"strings"
	"testing"
)

// TestTheBinaryRefusesUnsafeStarts runs the gateway binary's run with
// flags it must refuse: a dev-mode gateway (which mints tokens for anyone)
// on an address other machines reach, and plaintext outside dev mode.
func TestTheBinaryRefusesUnsafeStarts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"dev mode on every interface", []string{"--dev-mode", "--dev-service-secret=s", "--plaintext", "--addr=0.0.0.0:8080"},
			"--dev-mode with --addr 0.0.0.0:8080: a dev-mode gateway mints tokens for anyone who asks, so it listens on a loopback address only"},
		{"dev mode on a routable address", []string{"--dev-mode", "--dev-service-secret=s", "--vault-addr=http://127.0.0.1:1", "--addr=10.1.2.3:8080"},
			"listens on a loopback address only"},
		{"plaintext outside dev mode", []string{"--plaintext", "--addr=0.0.0.0:8080"},
			"--plaintext (BANKBRIDGE_PLAINTEXT) is refused outside dev mode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := run(t.Context(), tt.args)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("run(%q) = %v, want %q", tt.args, err, tt.want)
			}
		})
	}
}
