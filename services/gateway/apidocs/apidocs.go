// Package apidocs serves the gateway's API documentation page: a pinned
// OpenAPI viewer (swagger-ui-dist, see package.json and sync.sh) over the
// document the gateway itself serves at /openapi.json. Every file is
// embedded in the binary, so the page works offline, and the Content
// Security Policy lets it load and fetch from the gateway alone.
package apidocs

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

// files are the viewer's files as sync.sh copied them from npm (assets/),
// and the page that starts it (page/).
//
//go:embed assets page
var files embed.FS

// Prefix is the path the page is served under.
const Prefix = "/docs/"

// CSP is the Content-Security-Policy of every file served: scripts, styles,
// images and fetches from the gateway only. Inline styles are allowed
// because the viewer sets style attributes; inline scripts are not (the
// page starts the viewer from init.js).
const CSP = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// contentTypes are the types of the files served, by extension; a file of
// another kind is not served.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".png":  "image/png",
}

// Handler serves the page at Prefix and its files under it; Prefix without
// its slash redirects there, so the page's relative links resolve. A file
// it does not have is notFound's to answer.
func Handler(notFound http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == strings.TrimSuffix(Prefix, "/") {
			http.Redirect(w, r, Prefix, http.StatusMovedPermanently)
			return
		}
		name := strings.TrimPrefix(r.URL.Path, Prefix)
		if name == "" {
			name = "index.html"
		}
		body, ctype, ok := file(name)
		if !ok {
			notFound.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Type", ctype)
		h.Set("Content-Security-Policy", CSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-cache")
		_, _ = w.Write(body)
	})
}

// file finds name (one path element) among the page's files, then the
// viewer's.
func file(name string) ([]byte, string, bool) {
	ctype, ok := contentTypes[path.Ext(name)]
	if !ok || strings.Contains(name, "/") {
		return nil, "", false
	}
	for _, dir := range []string{"page", "assets"} {
		if b, err := fs.ReadFile(files, dir+"/"+name); err == nil {
			return b, ctype, true
		}
	}
	return nil, "", false
}

// ViewerVersion is the swagger-ui-dist version embedded (assets/VERSION).
func ViewerVersion() string {
	b, _ := fs.ReadFile(files, "assets/VERSION")
	return strings.TrimSpace(string(b))
}
