package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"text/tabwriter"
	"time"
)

// report is one bench-ratio run's figures.
type report struct {
	users    int
	duration time.Duration

	grpcStack, grpcEcho, restStack, restEcho, halfLoad result

	// balanceCalls are the GetBalance calls of the measured runs, and
	// vaultReads the bank credential reads from Vault meanwhile, by bank.
	balanceCalls int64
	vaultReads   map[string]float64
}

// Targets of issue 15.
const (
	grpcRatioTarget = 0.30 // gRPC stack req/s / echo req/s, at least
	restRatioTarget = 0.70 // REST gateway req/s / gRPC stack req/s, at least
	p99RatioTarget  = 3.0  // stack p99 at half its max rate / echo p99, at most
)

// ratio is a/b, 0 when b is.
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT MET"
}

// print writes the table: each run, then the ratios against their targets,
// then the Vault reads.
func (r *report) print(w io.Writer) {
	fmt.Fprintf(w, "\nbench-ratio: %d synthetic users, %s per run; ghz %d concurrent calls over %d connections, wrk %d threads and %d connections;\n",
		r.users, r.duration, ghzConcurrency, ghzConnections, wrkThreads, wrkConnections)
	fmt.Fprintln(w, "TLS on every listener: the stack's certificates from its Vault PKI, the echo's self-signed (ECDSA P-256); no client certificates.")
	fmt.Fprintln(w)
	t := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(t, "run\treq/s\tp50 ms\tp99 ms\tcalls\terrors\t")
	for _, res := range []result{r.grpcStack, r.grpcEcho, r.restStack, r.restEcho, r.halfLoad} {
		errs := fmt.Sprint(res.errors)
		if res.detail != "" {
			errs += " (" + res.detail + ")"
		}
		fmt.Fprintf(t, "%s\t%.0f\t%.2f\t%.2f\t%d\t%s\t\n", res.name, res.rps, res.p50ms, res.p99ms, res.calls, errs)
	}
	_ = t.Flush()
	fmt.Fprintln(w)
	t = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(t, "ratio\tvalue\ttarget\t")
	g := ratio(r.grpcStack.rps, r.grpcEcho.rps)
	fmt.Fprintf(t, "gRPC stack / echo, req/s\t%.3f\t>= %.2f %s\t\n", g, grpcRatioTarget, verdict(g >= grpcRatioTarget))
	rest := ratio(r.restStack.rps, r.grpcStack.rps)
	fmt.Fprintf(t, "REST gateway / gRPC stack, req/s\t%.3f\t>= %.2f %s\t\n", rest, restRatioTarget, verdict(rest >= restRatioTarget))
	p := ratio(r.halfLoad.p99ms, r.grpcEcho.p99ms)
	fmt.Fprintf(t, "p99 at half max rate / echo p99\t%.1f\t<= %.0f %s\t\n", p, p99RatioTarget, verdict(p > 0 && p <= p99RatioTarget))
	errs := r.grpcStack.errors + r.grpcEcho.errors + r.restStack.errors + r.restEcho.errors + r.halfLoad.errors
	fmt.Fprintf(t, "errors, all runs\t%d\t0 %s\t\n", errs, verdict(errs == 0))
	_ = t.Flush()
	fmt.Fprintf(w, "\nVault reads of bank credentials by the services during the %d GetBalance calls:", r.balanceCalls)
	if len(r.vaultReads) == 0 {
		fmt.Fprint(w, " none counted")
	}
	for _, bank := range slices.Sorted(maps.Keys(r.vaultReads)) {
		fmt.Fprintf(w, " %s %.0f", bank, r.vaultReads[bank])
	}
	fmt.Fprintln(w)
}
