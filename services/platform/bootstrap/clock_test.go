package bootstrap

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestDevClockOffsetIsRefusedOutsideDevMode: a skewed clock decides
// whether tokens and consents still hold, so production never starts with
// one.
func TestDevClockOffsetIsRefusedOutsideDevMode(t *testing.T) {
	t.Parallel()
	spec, _ := newSpec(KindGateway, Needs{})
	err := Run(t.Context(), []string{"--addr=127.0.0.1:0", "--vault-addr=http://127.0.0.1:1", "--dev-clock-offset=-5m"}, spec)
	const want = "--dev-clock-offset (BANKBRIDGE_DEV_CLOCK_OFFSET) is refused outside dev mode"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v, want %q", err, want)
	}
}

// TestDevClockOffsetShiftsTheKitsClock: in dev mode, the clock the kit
// hands the service is the wall clock shifted by the offset.
func TestDevClockOffsetShiftsTheKitsClock(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		args   []string
		offset time.Duration
	}{
		{name: "none", offset: 0},
		{name: "behind", args: []string{"--dev-clock-offset=-5m"}, offset: -5 * time.Minute},
		{name: "ahead", args: []string{"--dev-clock-offset=5m"}, offset: 5 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			spec, _ := newSpec(KindGateway, Needs{})
			var shift time.Duration
			stop := errors.New("seen")
			spec.Start = func(_ context.Context, d *Deps) (Service, error) {
				shift = d.Now().Sub(time.Now())
				return Service{}, stop
			}
			args := append([]string{"--addr=127.0.0.1:0", "--dev-mode", "--plaintext"}, tt.args...)
			if err := Run(t.Context(), args, spec); !errors.Is(err, stop) {
				t.Fatalf("Run = %v, want Start reached", err)
			}
			if d := shift - tt.offset; d < -time.Second || d > time.Second {
				t.Errorf("Deps.Now is %s off the wall clock, want %s", shift, tt.offset)
			}
		})
	}
}
