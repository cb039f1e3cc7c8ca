package faults

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Outcome is one row's figures and verdict.
type Outcome struct {
	Summary
	// Lost are acknowledged writes not found afterwards (in storage, or
	// on a watched stream); Duplicated writes applied, or delivered, more
	// than once, or concurrent callers of one key given different answers.
	Lost, Duplicated int
	// Unlogged are successful calls of the load with no matching allowed
	// entry in their user's access log (of the users sampled).
	Unlogged int
	Pass     bool
	// Notes say what else was measured and, on a FAIL, which part of the
	// hypothesis did not hold.
	Notes []string
	// NotDone, when set, says why the row was not run.
	NotDone string
}

func (o *Outcome) note(format string, args ...any) {
	o.Notes = append(o.Notes, fmt.Sprintf(format, args...))
}

// fail records a part of the hypothesis that did not hold.
func (o *Outcome) fail(format string, args ...any) {
	o.Pass = false
	o.note("FAIL: "+format, args...)
}

// Row is one fault of the matrix.
type Row struct {
	Name string
	// Hypothesis is what the suite must do under the fault, as the row
	// checks it.
	Hypothesis string
	// Quick rows make up the bounded subset CI runs (FAULTS=quick).
	Quick bool
	Run   func(ctx context.Context, m *Matrix) Outcome
}

// Matrix runs rows on one harness and keeps what rows share.
type Matrix struct {
	H *Harness
	// capacity is the successful calls per second the load rows take as
	// 1x: the baseline's, and capacityOf's when load-1x measures it again.
	capacity float64
	// capacityRamp says how capacityOf found capacity.
	capacityRamp string
	// PGCluster is the local cluster pg_ctlcluster restarts ("15 main").
	PGCluster []string

	mu      sync.Mutex
	results []result
}

type result struct {
	row Row
	out Outcome
	dur time.Duration
}

// Select returns the rows named in spec: "" or "all" every row, "quick"
// the Quick ones, else a comma-separated list of names.
func Select(rows []Row, spec string) ([]Row, error) {
	spec = strings.TrimSpace(spec)
	if spec == "" || spec == "all" {
		return rows, nil
	}
	var out []Row
	for _, name := range strings.Split(spec, ",") {
		name = strings.TrimSpace(name)
		found := false
		for _, r := range rows {
			if r.Name == name || (name == "quick" && r.Quick) {
				out = append(out, r)
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("faults: no row %q", name)
		}
	}
	return out, nil
}

// Run runs rows in order, each after the stack has settled from the
// one before, and returns whether every row that ran passed.
func (m *Matrix) Run(ctx context.Context, rows []Row, progress io.Writer) bool {
	ok := true
	for _, r := range rows {
		fmt.Fprintf(progress, "== %s: %s\n", r.Name, r.Hypothesis)
		start := time.Now()
		out := r.Run(ctx, m)
		m.checkAccessLog(ctx, &out)
		if out.NotDone != "" {
			out.Pass = false
		}
		m.mu.Lock()
		m.results = append(m.results, result{row: r, out: out, dur: time.Since(start)})
		m.mu.Unlock()
		ok = ok && out.Pass
		fmt.Fprintf(progress, "   %s in %s: avail %s p99 %s errors %s lost %d dup %d unlogged %d %s\n", verdict(out), time.Since(start).Round(time.Second),
			pct(out), ms(out.P99), out.ErrorsText(), out.Lost, out.Duplicated, out.Unlogged, strings.Join(out.Notes, "; "))
		// Let the stack settle (breakers close, connections come back).
		m.settle(ctx)
	}
	return ok
}

// settle waits until a read succeeds again, for at most 20 s.
func (m *Matrix) settle(ctx context.Context) {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		ok := 0
		for _, u := range m.H.Users[:5] {
			if c := m.H.read(ctx, u, 5*time.Second); c.Code == 0 && !c.Stale {
				ok++
			}
		}
		if ok == 5 {
			return
		}
		time.Sleep(time.Second)
	}
}

func verdict(o Outcome) string {
	switch {
	case o.NotDone != "":
		return "NOT DONE"
	case o.Pass:
		return "PASS"
	}
	return "FAIL"
}

func pct(o Outcome) string {
	if o.NotDone != "" || o.Calls == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f%%", o.Availability*100)
}

func ms(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	if d < 10*time.Second {
		return fmt.Sprintf("%d ms", d.Milliseconds())
	}
	return d.Round(100 * time.Millisecond).String()
}

// Table writes the results as one Markdown table, then each row's notes.
func (m *Matrix) Table(w io.Writer) {
	m.mu.Lock()
	defer m.mu.Unlock()
	fmt.Fprintln(w, "| row | hypothesis | availability | p99 | errors by reason | lost | duplicated | unlogged | result |")
	fmt.Fprintln(w, "| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
	for _, r := range m.results {
		o := r.out
		if o.NotDone != "" {
			fmt.Fprintf(w, "| %s | %s | - | - | - | - | - | - | NOT DONE |\n", r.row.Name, r.row.Hypothesis)
			continue
		}
		fmt.Fprintf(w, "| %s | %s | %s (%d calls) | %s | %s | %d | %d | %d | %s |\n", r.row.Name, r.row.Hypothesis, pct(o), o.Calls, ms(o.P99),
			o.ErrorsText(), o.Lost, o.Duplicated, o.Unlogged, verdict(o))
	}
	fmt.Fprintln(w)
	for _, r := range m.results {
		if r.out.NotDone != "" {
			fmt.Fprintf(w, "- %s: not done: %s\n", r.row.Name, r.out.NotDone)
		} else if len(r.out.Notes) > 0 {
			fmt.Fprintf(w, "- %s (%s): %s\n", r.row.Name, r.dur.Round(time.Second), strings.Join(r.out.Notes, "; "))
		}
	}
}
