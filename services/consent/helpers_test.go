package main

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"testing"
)

func randomKey(t testing.TB) string {
	t.Helper()
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
