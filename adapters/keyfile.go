package adapters

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// KeyFile is an API key read from a file, for [WithAPIKeys]: when the file
// changes, the new key is accepted at once and the one it replaced stays
// accepted for a grace period, so that bankbridge, which picks up the
// rotated credential when it re-reads Vault (every --vault-refresh, 5
// minutes by default), never sees a rejection: make grace longer than that.
type KeyFile struct {
	path  string
	grace time.Duration
	now   func() time.Time

	mu           sync.Mutex
	current      string
	previous     string
	previousEnds time.Time
}

// NewKeyFile reads the key at path, the file's content with surrounding
// white space trimmed. grace is how long a replaced key stays accepted.
func NewKeyFile(path string, grace time.Duration) (*KeyFile, error) {
	if grace < 0 {
		return nil, errors.New("api key file: grace must not be negative")
	}
	k := &KeyFile{path: path, grace: grace, now: time.Now}
	key, err := k.read()
	if err != nil {
		return nil, err
	}
	k.current = key
	return k, nil
}

func (k *KeyFile) read() (string, error) {
	data, err := os.ReadFile(k.path)
	if err != nil {
		return "", fmt.Errorf("read api key file: %w", err)
	}
	key := string(bytes.TrimSpace(data))
	if key == "" {
		return "", fmt.Errorf("api key file %s is empty", k.path)
	}
	for _, r := range key {
		// The key travels as a gRPC metadata value: printable ASCII only.
		if r < 0x21 || r > 0x7e {
			return "", fmt.Errorf("api key file %s: the key must be one word of printable ASCII", k.path)
		}
	}
	return key, nil
}

// Keys returns the keys accepted now: the current one and, during the
// grace period after a rotation, the previous one.
func (k *KeyFile) Keys() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.previous != "" && k.now().Before(k.previousEnds) {
		return []string{k.current, k.previous}
	}
	return []string{k.current}
}

// Reload reads the file again and reports whether the key changed. On an
// error the keys accepted so far stay accepted.
func (k *KeyFile) Reload() (changed bool, err error) {
	key, err := k.read()
	if err != nil {
		return false, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if key == k.current {
		return false, nil
	}
	k.previous, k.previousEnds = k.current, k.now().Add(k.grace)
	k.current = key
	return true, nil
}

// Watch reloads the file every interval until ctx ends. onChange, when not
// nil, is called after a rotation, onError after a failed read (a file being
// replaced may be missing for a moment); neither is given the key.
func (k *KeyFile) Watch(ctx context.Context, interval time.Duration, onChange func(), onError func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			changed, err := k.Reload()
			switch {
			case err != nil && onError != nil:
				onError(err)
			case changed && onChange != nil:
				onChange()
			}
		}
	}
}
