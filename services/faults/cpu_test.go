package faults

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A process that burns CPU shows it in cpuSeconds; one that sleeps does
// not, so a load row's "cores used" reads the machine, not a constant.
func TestCPUSecondsReadsProc(t *testing.T) {
	t.Parallel()
	before, ok := cpuSeconds("self")
	if !ok {
		t.Fatal("cpuSeconds(self): /proc/self/stat not read")
	}
	// Busy until the reading has moved by 0.1 s (on a loaded machine
	// the loop may get a small share of a core), for 10 s at most.
	if !busyUntil(func() bool { after, _ := cpuSeconds("self"); return after-before >= 0.1 }) {
		after, _ := cpuSeconds("self")
		t.Errorf("10 s of busy loop counted as %.2f CPU seconds", after-before)
	}

	sleeper := exec.Command("sleep", "1")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	defer sleeper.Wait()
	if s, ok := cpuSeconds(strconv.Itoa(sleeper.Process.Pid)); !ok || s > 0.05 {
		t.Errorf("a sleeping process: %.2f CPU seconds, read %v", s, ok)
	}
	if _, ok := cpuSeconds("0"); ok {
		t.Error("pid 0 has no /proc entry, yet it was read")
	}
}

func TestCPUShares(t *testing.T) {
	t.Parallel()
	got := cpuShares(
		map[string]float64{"balance": 10, "consent": 5, "harness": 1, "gone": 3},
		map[string]float64{"balance": 17, "consent": 9, "harness": 1.2, "new": 4},
		10*time.Second)
	want := "1.12 in all (balance 0.70, consent 0.40, harness 0.02)"
	if got != want {
		t.Errorf("cpuShares = %q; want %q", got, want)
	}
	// A server's processes add up; one that started in between counts
	// from its start, one that ended drops out.
	got = cpuShares(
		map[string]float64{"postgres[10]": 5, "postgres[11]": 7, "postgres[12]": 9},
		map[string]float64{"postgres[10]": 6, "postgres[11]": 7.5, "postgres[13]": 1},
		10*time.Second)
	want = "0.25 in all (postgres 0.25)"
	if got != want {
		t.Errorf("cpuShares = %q; want %q", got, want)
	}
	got = cpuShares(map[string]float64{"balance": 1, machineKey: 100}, map[string]float64{"balance": 2, machineKey: 119.5}, 10*time.Second)
	want = fmt.Sprintf("0.10 in all (balance 0.10); the machine's %d cores 1.95 busy", runtime.NumCPU())
	if got != want {
		t.Errorf("cpuShares = %q; want %q", got, want)
	}
}

// The servers the stack uses are found by their command name, and the
// machine's busy time grows with a busy loop.
func TestServerAndMachineCPU(t *testing.T) {
	before, ok := machineBusySeconds()
	if !ok {
		t.Fatal("/proc/stat not read")
	}
	if !busyUntil(func() bool { after, _ := machineBusySeconds(); return after-before >= 0.1 }) {
		after, _ := machineBusySeconds()
		t.Errorf("10 s of busy loop: the machine counted %.2f busy seconds", after-before)
	}
	if os.Getenv("BANKBRIDGE_TEST_POSTGRES_URL") == "" {
		return
	}
	found := false
	for key := range serverCPUSeconds() {
		found = found || strings.HasPrefix(key, "postgres[")
	}
	if !found {
		t.Error("PostgreSQL runs (BANKBRIDGE_TEST_POSTGRES_URL is set), yet no postgres process was found")
	}
}

// busyUntil spins until done reports true, checking it every 50 ms, for
// 10 s at most; it reports whether done did.
func busyUntil(done func() bool) bool {
	for start := time.Now(); time.Since(start) < 10*time.Second; {
		for tick := time.Now(); time.Since(tick) < 50*time.Millisecond; {
		}
		if done() {
			return true
		}
	}
	return false
}
