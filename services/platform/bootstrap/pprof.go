package bootstrap

import (
	"maps"
	"net/http"
	"net/http/pprof"
)

// pprofRoutes are Go's profiling endpoints (net/http/pprof) under
// /debug/pprof/, for --pprof. A profile shows code paths and timings, never
// request data, but it costs CPU to take and names every function, so
// --pprof is off by default: the dev stack and `make bench-ratio` turn it
// on.
func pprofRoutes() map[string]http.Handler {
	return map[string]http.Handler{
		"GET /debug/pprof/":        http.HandlerFunc(pprof.Index),
		"GET /debug/pprof/cmdline": http.HandlerFunc(pprof.Cmdline),
		"GET /debug/pprof/profile": http.HandlerFunc(pprof.Profile),
		"GET /debug/pprof/symbol":  http.HandlerFunc(pprof.Symbol),
		"GET /debug/pprof/trace":   http.HandlerFunc(pprof.Trace),
	}
}

// adminRoutes are a binary's extra admin routes, plus the profiling
// endpoints with --pprof.
func (c *Config) adminRoutes(extra map[string]http.Handler) map[string]http.Handler {
	if !c.Pprof {
		return extra
	}
	routes := pprofRoutes()
	maps.Copy(routes, extra)
	return routes
}
