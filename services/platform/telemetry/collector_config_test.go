package telemetry

import (
	"os"
	"regexp"
	"testing"
)

// TestTheCollectorAllowsWhatTheServicesAllow: the collector's redaction
// processor (deploy/otelcol/config.yaml) is a second line of defence over
// the same allow-list; a key allowed here but missing there would be
// stripped from every span and metric on the way out (a per-bank metric
// would lose its bank_id). Prefix rules are spelled out there key by key,
// so only the exact keys are compared.
func TestTheCollectorAllowsWhatTheServicesAllow(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../../../deploy/otelcol/config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	block := regexp.MustCompile(`(?s)allowed_keys:\n(.*?)\n    [a-z_]+:`).FindSubmatch(raw)
	if block == nil {
		t.Fatal("no allowed_keys list in deploy/otelcol/config.yaml")
	}
	inCollector := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s+- ([A-Za-z0-9_.]+)\s*$`).FindAllSubmatch(block[1], -1) {
		inCollector[string(m[1])] = true
	}
	for _, keys := range []map[string]bool{allowedKeys, freeTextKeys} {
		for k := range keys {
			if !inCollector[k] {
				t.Errorf("%s is allowed by the services but not in the collector's allowed_keys", k)
			}
		}
	}
}
