package vaulttest

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"

	"github.com/hashicorp/vault/api"
)

// TransitMount is where EnableTransit mounts the Transit secrets engine,
// Vault's default path and the one the services are configured with.
const TransitMount = "transit"

// EnableTransit mounts the Transit secrets engine at transit/, unless it
// is mounted already.
func (s *Server) EnableTransit(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	mounts, err := s.client.Sys().ListMountsWithContext(ctx)
	if err != nil {
		t.Fatalf("vaulttest: list mounts: %v", err)
	}
	if _, ok := mounts[TransitMount+"/"]; ok {
		return
	}
	if err := s.client.Sys().MountWithContext(ctx, TransitMount, &api.MountInput{Type: "transit"}); err != nil {
		t.Fatalf("vaulttest: mount transit at %s/: %v", TransitMount, err)
	}
}

// CreateTransitKey enables Transit if need be and creates a key named name
// of the given type ("ed25519", "ecdsa-p256", ...), at version 1.
func (s *Server) CreateTransitKey(t testing.TB, name, keyType string) {
	t.Helper()
	s.EnableTransit(t)
	s.Write(t, TransitMount+"/keys/"+name, map[string]any{"type": keyType})
}

// RotateTransitKey adds a version to a Transit key, which signs from then
// on, and returns that version.
func (s *Server) RotateTransitKey(t testing.TB, name string) int {
	t.Helper()
	s.Write(t, TransitMount+"/keys/"+name+"/rotate", nil)
	return s.TransitKeyVersion(t, name)
}

// TransitKeyVersion returns the latest version of a Transit key.
func (s *Server) TransitKeyVersion(t testing.TB, name string) int {
	t.Helper()
	raw := s.read(t, TransitMount+"/keys/"+name).Data["latest_version"]
	n, ok := raw.(json.Number)
	if !ok {
		t.Fatalf("vaulttest: transit key %s: latest_version is %v", name, raw)
	}
	v, err := strconv.Atoi(n.String())
	if err != nil {
		t.Fatalf("vaulttest: transit key %s: latest_version %s: %v", name, n, err)
	}
	return v
}

// RetireTransitKeyVersions makes Vault refuse signatures made with a Transit
// key's versions below minVersion (its min_decryption_version), as an
// operator does after a key version leaked.
func (s *Server) RetireTransitKeyVersions(t testing.TB, name string, minVersion int) {
	t.Helper()
	s.Write(t, TransitMount+"/keys/"+name+"/config", map[string]any{"min_decryption_version": minVersion})
}
