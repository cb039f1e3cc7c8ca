package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/bankbridge/bankbridge/services/gateway/apidocs"
)

// TestDocsPageIsServedByTheGatewayAlone: /docs is the OpenAPI viewer over
// the gateway's own document, and works offline. The page names no asset
// on another host; every script, style and image it names is served by the
// gateway with its content type and the CSP, which lets the page load and
// fetch from the gateway only; the script that starts the viewer points
// it at /openapi.json and turns off the online validator.
func TestDocsPageIsServedByTheGatewayAlone(t *testing.T) {
	t.Parallel()
	f := start(t, false)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get(f.url + "/docs")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "/docs/" {
		t.Fatalf("GET /docs = %d to %q, want 301 to /docs/", resp.StatusCode, resp.Header.Get("Location"))
	}
	get := func(path, wantType string) string {
		t.Helper()
		resp, err := http.Get(f.url + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s = %d", path, resp.StatusCode)
		}
		if got := resp.Header.Get("Content-Type"); got != wantType {
			t.Errorf("GET %s: Content-Type %q, want %q", path, got, wantType)
		}
		if got := resp.Header.Get("Content-Security-Policy"); got != apidocs.CSP {
			t.Errorf("GET %s: CSP %q", path, got)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: no X-Content-Type-Options: nosniff", path)
		}
		return string(body)
	}
	page := get("/docs/", "text/html; charset=utf-8")
	for _, directive := range []string{"default-src 'none'", "script-src 'self'", "connect-src 'self'", "img-src 'self' data:"} {
		if !strings.Contains(apidocs.CSP, directive) {
			t.Errorf("CSP lacks %s", directive)
		}
	}
	absolute := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+`)
	if m := absolute.FindString(page); m != "" {
		t.Errorf("the page names %s: an asset on another host", m)
	}
	types := map[string]string{".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".png": "image/png"}
	refs := regexp.MustCompile(`(?:src|href)="([^"]+)"`).FindAllStringSubmatch(page, -1)
	if len(refs) < 4 {
		t.Fatalf("the page names %d assets, want the viewer's script and style, the start script and the icon", len(refs))
	}
	var start string
	for _, ref := range refs {
		ext := ref[1][strings.LastIndex(ref[1], "."):]
		body := get("/docs/"+ref[1], types[ext])
		if ref[1] == "init.js" {
			start = body
		}
	}
	if !strings.Contains(start, `url: "/openapi.json"`) || !strings.Contains(start, "validatorUrl: null") {
		t.Errorf("init.js does not load /openapi.json with the validator off:\n%s", start)
	}
	if m := absolute.FindString(start); m != "" {
		t.Errorf("init.js names %s, another host", m)
	}
	var lock struct {
		Packages map[string]struct{ Version string } `json:"packages"`
	}
	raw, err := os.ReadFile("apidocs/package-lock.json")
	if err != nil || json.Unmarshal(raw, &lock) != nil {
		t.Fatalf("apidocs/package-lock.json: %v", err)
	}
	if pinned := lock.Packages["node_modules/swagger-ui-dist"].Version; pinned == "" || apidocs.ViewerVersion() != pinned {
		t.Errorf("embedded swagger-ui-dist %q, package-lock.json pins %q: run make docs-assets", apidocs.ViewerVersion(), pinned)
	}
	resp, body := do(t, http.MethodGet, f.url+"/docs/missing.js", "", "", nil)
	if resp.StatusCode != http.StatusNotFound || reason(body) != "NOT_FOUND" {
		t.Errorf("GET /docs/missing.js = %d %q, want 404 NOT_FOUND", resp.StatusCode, reason(body))
	}
}
