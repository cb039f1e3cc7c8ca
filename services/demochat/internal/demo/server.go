// Package demo is the demo chat's server: it serves the page, passes the
// page's calls to the public REST API through to the gateway unchanged
// (same origin for the browser, so no CORS), and — dev only — plays the
// outside world on the page's request: a partner pushing a receipt, the
// sandbox carrier moving a parcel, the sandbox bank raising a fraud alert,
// and the bank's support agent taking over and handing back.
package demo

import (
	"crypto/tls"
	"errors"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"
)

// Config says where the server's upstreams are.
type Config struct {
	// Gateway is the REST gateway's base URL, e.g. https://127.0.0.1:8080;
	// /v1/ is passed through to it.
	Gateway *url.URL
	// SandboxAdmin is the sandbox bank's admin listener's base URL, e.g.
	// https://127.0.0.1:9401; the triggers call its /admin/ endpoints.
	SandboxAdmin *url.URL
	// TLS is the client TLS config for both (trusting the dev CA).
	TLS *tls.Config
	// PartnerClient and PartnerSecret are the client credentials the
	// receipt trigger pushes as (a dev partner of the gateway's dev
	// issuer); without a secret the trigger answers 503.
	PartnerClient, PartnerSecret string
	// Assets is the page.
	Assets fs.FS
	// Log receives one line per trigger and per upstream failure; never a
	// body, a token or a user's data.
	Log *slog.Logger
}

// contentSecurityPolicy lets the page load and call only its own origin:
// no inline script or style, no third-party asset, no frame, no plugin.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// Handler serves the demo chat.
func Handler(c Config) http.Handler {
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	upstream := &http.Transport{
		Proxy:                 nil, // loopback only: never through a proxy from the environment
		TLSClientConfig:       c.TLS,
		ForceAttemptHTTP2:     true,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: time.Minute,
		IdleConnTimeout:       90 * time.Second,
	}
	t := &triggers{cfg: c, http: &http.Client{Transport: upstream, Timeout: 15 * time.Second}, log: c.Log}

	mux := http.NewServeMux()
	mux.Handle("/v1/", proxy(c.Gateway, upstream, c.Log))
	mux.HandleFunc("POST /demo/receipt", t.receipt)
	mux.HandleFunc("POST /demo/parcel", t.parcel)
	mux.HandleFunc("POST /demo/fraud", t.fraud)
	mux.HandleFunc("POST /demo/agent/takeover", t.agentTakeover)
	mux.HandleFunc("POST /demo/agent/handback", t.agentHandback)
	mux.HandleFunc("/demo/", func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusNotFound, "no such demo trigger")
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	files := http.FileServerFS(c.Assets)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, http.StatusMethodNotAllowed, "the page is read with GET")
			return
		}
		files.ServeHTTP(w, r)
	})
	return guard(mux)
}

// guard answers only requests addressed to a loopback name (a page of
// another site that rebinds its name to 127.0.0.1 reaches nothing), and
// sets the page's security headers.
func guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !loopbackHost(r.Host) {
			writeError(w, http.StatusMisdirectedRequest, "the demo chat answers only at a loopback address (127.0.0.1, localhost)")
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
		if !strings.HasPrefix(r.URL.Path, "/v1/") {
			h.Set("Cache-Control", "no-cache")
		}
		next.ServeHTTP(w, r)
	})
}

// loopbackHost reports whether a Host header names this machine's
// loopback interface.
func loopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// proxy passes a request to the gateway as it came, and its answer back
// as it comes: a stream's newline-delimited JSON is flushed line by line.
func proxy(target *url.URL, transport http.RoundTripper, log *slog.Logger) http.Handler {
	return &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target) // and the Host header to the gateway's
		},
		Transport:     transport,
		FlushInterval: -1,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if errors.Is(r.Context().Err(), err) || r.Context().Err() != nil {
				return // the page went away (a stream it closed): nothing to answer
			}
			log.Warn("gateway unreachable", slog.String("path", routeOf(r.URL.Path)), slog.String("error", errorText(err)))
			writeStatus(w, http.StatusBadGateway, 14, "the demo chat could not reach the gateway at "+target.Host+"; is the dev stack running?")
		},
	}
}

// routeOf is a path's first segment after /v1/, for logs: the rest names
// users and their resources.
func routeOf(path string) string {
	first, _, _ := strings.Cut(strings.TrimPrefix(path, "/v1/"), "/")
	return "/v1/" + first + "/…"
}

// errorText is err without the URL a *url.Error carries (it names a user
// and their resources).
func errorText(err error) string {
	var u *url.Error
	if errors.As(err, &u) {
		return u.Op + ": " + u.Err.Error()
	}
	return err.Error()
}
