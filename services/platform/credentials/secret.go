package credentials

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Secret is one version of a bank's or partner's credentials.
type Secret struct {
	// ID is the bank or partner id the secret belongs to.
	ID string
	// Version is the KV v2 version the data were read at.
	Version int
	// Data holds the credentials, by key. Each Secret has its own copy.
	Data map[string]string
	// FetchedAt is when this version was last read from Vault; a secret
	// served from cache while Vault is down carries its old FetchedAt.
	FetchedAt time.Time
	// CreatedAt is when this version was written to Vault (its rotation
	// time); zero if Vault did not say.
	CreatedAt time.Time
}

// String describes the secret by id, version and key names only, so that
// logging or printing a Secret by mistake cannot leak credentials.
func (s Secret) String() string {
	return fmt.Sprintf("Secret{ID: %s, Version: %d, Keys: [%s], FetchedAt: %s}",
		s.ID, s.Version, strings.Join(slices.Sorted(maps.Keys(s.Data)), " "), s.FetchedAt.Format(time.RFC3339))
}

// GoString describes the secret as String does, for %#v.
func (s Secret) GoString() string { return s.String() }

// LogValue logs the secret without its values, for the same reason.
func (s Secret) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("id", s.ID),
		slog.Int("version", s.Version),
		slog.Any("keys", slices.Sorted(maps.Keys(s.Data))),
	)
}

// clone returns s with its own Data, so no caller can change what the cache
// or another caller holds.
func (s Secret) clone() Secret {
	s.Data = maps.Clone(s.Data)
	return s
}

// stringData converts a KV v2 data object to strings. Credentials are
// strings; numbers and booleans are accepted as their JSON text because an
// operator writing `port=8443` with the CLI gets a string but one writing
// JSON may not. Anything else is refused, naming the key and the type but
// never the value.
func stringData(raw map[string]any) (map[string]string, error) {
	out := make(map[string]string, len(raw))
	for k, v := range raw {
		switch v := v.(type) {
		case string:
			out[k] = v
		case json.Number:
			out[k] = v.String()
		case bool:
			out[k] = strconv.FormatBool(v)
		default:
			return nil, fmt.Errorf("key %q holds %s, want a string", k, jsonKind(v))
		}
	}
	return out, nil
}

// jsonKind names the JSON type of a decoded value that is not a scalar.
func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	default:
		return fmt.Sprintf("a %T", v)
	}
}
