// Package web holds the demo chat's page: plain HTML, CSS and JavaScript
// modules, embedded in the binary, with no build step and nothing fetched
// from elsewhere.
package web

import "embed"

// Files are the page's assets, served at the site's root.
//
//go:embed index.html *.css *.js *.svg
var Files embed.FS
