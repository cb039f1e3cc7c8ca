package main

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"strings"

	"github.com/bankbridge/bankbridge/gen/openapi"
)

// devOpenAPI documents the paths only a dev-mode gateway serves (its token
// issuer), merged into the served document in dev mode only: they have no
// RPC, so nothing generates them.
//
//go:embed openapi_dev.json
var devOpenAPI []byte

// openAPIDocument is the document /openapi.json serves: the one generated
// from the contracts, each operation's comment split into a one-sentence
// summary and the rest as its description (splitSummary), the headers its
// RPC requires declared (declareHeaders) and the idempotency_key field
// they stand for left out (hideIdempotencyField), with
// devOpenAPI's paths, definitions and tags when the gateway runs in dev
// mode.
func openAPIDocument(devMode bool) ([]byte, error) {
	var doc map[string]any
	if err := json.Unmarshal(openapi.JSON(), &doc); err != nil {
		return nil, fmt.Errorf("openapi document: %w", err)
	}
	methods, err := restMethods() // openapiheaders.go
	if err != nil {
		return nil, fmt.Errorf("openapi document: %w", err)
	}
	paths, _ := doc["paths"].(map[string]any)
	defs, _ := doc["definitions"].(map[string]any)
	for _, p := range paths {
		ops, _ := p.(map[string]any)
		for _, o := range ops {
			if op, ok := o.(map[string]any); ok {
				splitSummary(op)
				id, _ := op["operationId"].(string)
				if m, ok := methods[id]; ok {
					declareHeaders(op, m)
					hideIdempotencyField(op, m, defs)
				}
			}
		}
	}
	if devMode {
		var dev map[string]any
		if err := json.Unmarshal(devOpenAPI, &dev); err != nil {
			return nil, fmt.Errorf("dev openapi fragment: %w", err)
		}
		for _, key := range []string{"paths", "definitions"} {
			into, _ := doc[key].(map[string]any)
			from, _ := dev[key].(map[string]any)
			for k := range from {
				if _, clash := into[k]; clash {
					return nil, fmt.Errorf("dev openapi fragment: %s %s is generated too", key, k)
				}
			}
			maps.Copy(into, from)
		}
		tags, _ := doc["tags"].([]any)
		devTags, _ := dev["tags"].([]any)
		doc["tags"] = append(tags, devTags...)
	}
	return json.Marshal(doc)
}

// splitSummary makes an operation's summary its comment's first sentence
// and the rest, failure codes included, its description. protoc-gen-openapiv2
// splits at the first blank comment line, which the contracts' RPC
// comments do not have, so the whole comment would be the one-line
// summary viewers show beside each path.
func splitSummary(op map[string]any) {
	summary, _ := op["summary"].(string)
	if _, has := op["description"]; has || summary == "" {
		return
	}
	end := -1
	for _, stop := range []string{". ", ".\n"} {
		if i := strings.Index(summary, stop); i >= 0 && (end < 0 || i < end) {
			end = i
		}
	}
	if end < 0 || end+2 >= len(summary) {
		return
	}
	op["summary"] = strings.Join(strings.Fields(summary[:end+1]), " ") // one line
	op["description"] = strings.TrimSpace(summary[end+2:])
}

// serveOpenAPI serves doc as /openapi.json.
func serveOpenAPI(doc []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(doc)
	}
}
