// Package openapi embeds the merged OpenAPI (Swagger 2.0) document for every
// public bankbridge API, written by `make generate` (protoc-gen-openapiv2).
// The gateway serves it at /openapi.json.
package openapi

import _ "embed"

//go:embed bankbridge.swagger.json
var document []byte

// JSON returns the OpenAPI document. The slice is shared: do not modify it.
func JSON() []byte { return document }
