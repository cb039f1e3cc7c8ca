package credentials_test

import (
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/bankbridge/bankbridge/services/platform/credentials"
	"github.com/bankbridge/bankbridge/services/platform/telemetry"
	"github.com/bankbridge/bankbridge/services/platform/vaulttest"
)

func TestMetrics(t *testing.T) {
	t.Parallel()
	v := vaulttest.Start(t)
	v.PutBankSecret(t, "acme", map[string]any{"api_key": "k1"})
	reader := sdkmetric.NewManualReader()
	clock := newClock()
	p, _ := newProvider(t, rootConfig(v),
		credentials.WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))),
		credentials.WithClock(clock.Now))

	var acme credentials.Secret
	for range 3 {
		var err error
		if acme, err = p.Bank(t.Context(), "acme"); err != nil {
			t.Fatalf("Bank(acme): %v", err)
		}
	}
	if acme.CreatedAt.IsZero() {
		t.Fatal("Bank(acme).CreatedAt is zero: Vault's created_time was not read")
	}
	if _, err := p.Bank(t.Context(), "missing"); err == nil {
		t.Fatal("Bank(missing) succeeded")
	}
	clock.Add(42 * time.Second)

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(t.Context(), &rm); err != nil {
		t.Fatalf("Collect: %v", err)
	}
	bank := func(id string) attribute.KeyValue { return attribute.String("bank_id", id) }
	outcome := func(o string) attribute.KeyValue { return attribute.String(telemetry.AttrOutcome, o) }
	tests := []struct {
		name   string
		metric string
		attrs  attribute.Set
		want   float64
	}{
		{"ok reads", "bankbridge.credentials.reads", attribute.NewSet(bank("acme"), outcome("ok")), 1},
		{"failed reads", "bankbridge.credentials.reads", attribute.NewSet(bank("missing"), outcome("error")), 1},
		{"failures", "bankbridge.credentials.failures",
			attribute.NewSet(bank("missing"), attribute.String(telemetry.AttrReason, "not_found")), 1},
		{"logins", "bankbridge.credentials.logins",
			attribute.NewSet(attribute.String("bankbridge.vault_auth_method", "token"), outcome("ok")), 1},
		{"secret age", "bankbridge.credentials.secret_age", attribute.NewSet(bank("acme")), 42},
		{"version age", "bankbridge.credentials.version_age", attribute.NewSet(bank("acme")),
			clock.Now().Sub(acme.CreatedAt).Seconds()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := point(rm, tt.metric, tt.attrs)
			if !ok {
				t.Fatalf("no %s point with %v in %+v", tt.metric, tt.attrs.ToSlice(), rm.ScopeMetrics)
			}
			if got != tt.want {
				t.Errorf("%s{%v} = %v, want %v", tt.metric, tt.attrs.ToSlice(), got, tt.want)
			}
		})
	}
}

// point finds the value of a metric's data point with exactly attrs.
func point(rm metricdata.ResourceMetrics, name string, attrs attribute.Set) (float64, bool) {
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			switch data := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, dp := range data.DataPoints {
					if dp.Attributes.Equals(&attrs) {
						return float64(dp.Value), true
					}
				}
			case metricdata.Gauge[float64]:
				for _, dp := range data.DataPoints {
					if dp.Attributes.Equals(&attrs) {
						return dp.Value, true
					}
				}
			}
		}
	}
	return 0, false
}
