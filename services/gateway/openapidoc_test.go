package main

import (
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// swaggerDoc is the part of a Swagger 2.0 document the tests read.
type swaggerDoc struct {
	Security            []map[string][]string `json:"security"`
	SecurityDefinitions map[string]struct {
		Type string `json:"type"`
		In   string `json:"in"`
		Name string `json:"name"`
	} `json:"securityDefinitions"`
	Paths       map[string]map[string]swaggerOp `json:"paths"`
	Definitions map[string]swaggerSchema        `json:"definitions"`
}

type swaggerOp struct {
	OperationID string                 `json:"operationId"`
	Summary     string                 `json:"summary"`
	Description string                 `json:"description"`
	Tags        []string               `json:"tags"`
	Security    *[]map[string][]string `json:"security"`
	Parameters  []struct {
		Name     string         `json:"name"`
		In       string         `json:"in"`
		Required bool           `json:"required"`
		Schema   *swaggerSchema `json:"schema"`
	} `json:"parameters"`
	Responses map[string]struct {
		Schema *swaggerSchema `json:"schema"`
	} `json:"responses"`
}

type swaggerSchema struct {
	Ref        string                   `json:"$ref"`
	Example    any                      `json:"example"`
	Type       string                   `json:"type"`
	Properties map[string]swaggerSchema `json:"properties"`
	Items      *swaggerSchema           `json:"items"`
}

// served fetches the gateway's /openapi.json.
func served(t *testing.T, f *fixture) swaggerDoc {
	t.Helper()
	resp, err := http.Get(f.url + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var doc swaggerDoc
	if resp.StatusCode != http.StatusOK || json.Unmarshal(raw, &doc) != nil {
		t.Fatalf("GET /openapi.json = %d %.200s", resp.StatusCode, raw)
	}
	return doc
}

// op finds the operation with the id.
func (d swaggerDoc) op(id string) (path, verb string, op swaggerOp, ok bool) {
	for p, ops := range d.Paths {
		for v, o := range ops {
			if o.OperationID == id {
				return p, v, o, true
			}
		}
	}
	return "", "", swaggerOp{}, false
}

// TestTheOpenAPIDocumentDescribesTheWire: a client generated from the
// served document reads what the gateway sends. Every key of a real
// GetBalance answer, at every depth, is a property the document's schema
// names (snake_case, as the gateway marshals with proto names), every
// example's too, and no schema anywhere names a field in camelCase.
func TestTheOpenAPIDocumentDescribesTheWire(t *testing.T) {
	t.Parallel()
	f := start(t, false)
	doc := served(t, f)
	_, _, op, ok := doc.op("BalanceService_GetBalance")
	if !ok {
		t.Fatal("no BalanceService_GetBalance operation")
	}
	_, body := do(t, http.MethodGet, f.url+"/v1/users/alice/accounts/sandbox~a1/balance", f.token(t, "alice"), "ACCOUNT_INFORMATION", nil)
	if body["balance"] == nil {
		t.Fatalf("no balance in %s", mustJSON(body))
	}
	checked := holdsTo(t, doc, "$", body, *op.Responses["200"].Schema)
	if checked < 5 {
		t.Errorf("only %d keys checked against the schema; the answer was %s", checked, mustJSON(body))
	}
	examples := 0
	for name, def := range doc.Definitions {
		if def.Example == nil {
			continue
		}
		examples++
		if holdsTo(t, doc, name+".example", def.Example, def) == 0 {
			t.Errorf("%s: example %v names no property", name, def.Example)
		}
	}
	if examples < 3 {
		t.Errorf("%d definitions have an example, want at least Money, MaskedAccountNumber and GetBalanceResponse", examples)
	}
	camel := regexp.MustCompile(`[a-z][A-Z]`)
	for name, def := range doc.Definitions {
		for prop := range def.Properties {
			if camel.MatchString(prop) {
				t.Errorf("definition %s names property %s in camelCase; the gateway sends proto names", name, prop)
			}
		}
	}
}

// holdsTo checks that every key of v is a property of schema s, at every
// depth, and returns how many keys it checked.
func holdsTo(t *testing.T, doc swaggerDoc, at string, v any, s swaggerSchema) int {
	t.Helper()
	if s.Ref != "" {
		def, ok := doc.Definitions[strings.TrimPrefix(s.Ref, "#/definitions/")]
		if !ok {
			t.Errorf("%s: $ref %s names no definition", at, s.Ref)
			return 0
		}
		s = def
	}
	n := 0
	switch v := v.(type) {
	case map[string]any:
		for k, inner := range v {
			ps, ok := s.Properties[k]
			if !ok {
				t.Errorf("%s: %q is not a property the document's schema names (it has %v)", at, k, keys(s.Properties))
				continue
			}
			n += 1 + holdsTo(t, doc, at+"."+k, inner, ps)
		}
	case []any:
		for i, inner := range v {
			if s.Items == nil {
				t.Errorf("%s: an array where the schema has none", at)
				break
			}
			n += holdsTo(t, doc, at+"["+strconv.Itoa(i)+"]", inner, *s.Items)
		}
	}
	return n
}

func keys(m map[string]swaggerSchema) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestTheOpenAPIDocumentDeclaresHeadersAndSecurity: what the gateway
// requires, the document declares. Every operation is under bearer
// security (an API key in the Authorization header, as OpenAPI 2 spells a
// bearer token); every RPC that declares purposes has a required
// Bankbridge-Purpose header; every RPC whose request has idempotency_key
// (which validation requires) has a required Idempotency-Key header; and
// path templates keep their resource-name form, each variable one path
// segment named after its collection. Each operation's summary is its
// comment's first sentence, and its description the rest, failure codes
// included.
func TestTheOpenAPIDocumentDeclaresHeadersAndSecurity(t *testing.T) {
	t.Parallel()
	doc := served(t, start(t, false))
	if _, _, op, _ := doc.op("BalanceService_GetBalance"); op.Summary != "GetBalance reads the account's balances from the bank." ||
		!strings.Contains(op.Description, "Fails with UNAUTHENTICATED (TOKEN_INVALID)") {
		t.Errorf("GetBalance: summary %q, description %.100q; want the first sentence, then the rest with its failures", op.Summary, op.Description)
	}
	bearer, ok := doc.SecurityDefinitions["bearer"]
	if !ok || bearer.Type != "apiKey" || bearer.In != "header" || bearer.Name != "Authorization" {
		t.Errorf("securityDefinitions.bearer = %+v, want an apiKey in header Authorization", bearer)
	}
	if len(doc.Security) != 1 || doc.Security[0]["bearer"] == nil {
		t.Errorf("security = %v, want bearer on every operation", doc.Security)
	}
	checked := 0
	for _, r := range routes {
		for _, svc := range r.services {
			sd, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(svc.name))
			if err != nil {
				t.Fatal(err)
			}
			methods := sd.(protoreflect.ServiceDescriptor).Methods()
			for i := range methods.Len() {
				m := methods.Get(i)
				if rule, _ := proto.GetExtension(m.Options(), annotations.E_Http).(*annotations.HttpRule); rule == nil {
					continue
				}
				id := string(sd.Name()) + "_" + string(m.Name())
				_, _, op, ok := doc.op(id)
				if !ok {
					t.Errorf("no operation %s", id)
					continue
				}
				want := map[string]bool{}
				if rule, _ := proto.GetExtension(m.Options(), commonv1.E_Access).(*commonv1.AccessRule); len(rule.GetPurposes()) > 0 {
					want["Bankbridge-Purpose"] = true
				}
				if m.Input().Fields().ByName("idempotency_key") != nil {
					want["Idempotency-Key"] = true
				}
				for _, p := range op.Parameters {
					if p.In == "header" && want[p.Name] && p.Required {
						delete(want, p.Name)
					}
				}
				for h := range want {
					t.Errorf("%s: no required %s header parameter", id, h)
				}
				if strings.Contains(op.Summary, "\n") || !strings.HasSuffix(op.Summary, ".") || !strings.Contains(op.Description, "Fails with") && !strings.Contains(op.Summary+op.Description, "fail") {
					t.Errorf("%s: summary %q is not the comment's first sentence, or the description %.80q lacks its failures", id, op.Summary, op.Description)
				}
				checked++
			}
		}
	}
	if checked < 40 {
		t.Errorf("only %d REST operations checked", checked)
	}
	variable := regexp.MustCompile(`\{([^}]*)\}`)
	for path := range doc.Paths {
		for _, v := range variable.FindAllStringSubmatch(path, -1) {
			if !regexp.MustCompile(`^[a-z][A-Za-z]*$`).MatchString(v[1]) {
				t.Errorf("path %s has variable {%s}; want a resource-name segment like {user}", path, v[1])
			}
		}
		if !strings.Contains(path, "users/{user}") && !strings.Contains(path, "clients/{client}") && path != "/v1/dev/tokens" {
			t.Errorf("path %s names neither users/{user} nor clients/{client}", path)
		}
	}
}

// TestDevTokensAreDocumentedInDevModeOnly: a dev-mode gateway's document
// has POST /v1/dev/tokens, tagged Dev, needing no token, with the standard
// error shape; a production gateway's has no such path, as it has no such
// route.
func TestDevTokensAreDocumentedInDevModeOnly(t *testing.T) {
	t.Parallel()
	dev := served(t, start(t, true))
	path, verb, op, ok := dev.op("Dev_CreateToken")
	if !ok || path != "/v1/dev/tokens" || verb != "post" {
		t.Fatalf("dev document: Dev_CreateToken at %s %s (found %v)", verb, path, ok)
	}
	if len(op.Tags) != 1 || op.Tags[0] != "Dev" || op.Security == nil || len(*op.Security) != 0 {
		t.Errorf("Dev_CreateToken tags %v, security %v; want [Dev] and none", op.Tags, op.Security)
	}
	if s := op.Responses["default"].Schema; s == nil || s.Ref != "#/definitions/rpcStatus" {
		t.Errorf("Dev_CreateToken errors are %+v, want rpcStatus", s)
	}
	if _, ok := dev.Definitions["devCreateTokenRequest"].Properties["expires_in"]; !ok {
		t.Error("devCreateTokenRequest has no expires_in")
	}
	if _, _, _, ok := served(t, start(t, false)).op("Dev_CreateToken"); ok {
		t.Error("a gateway outside dev mode documents the dev token endpoint")
	}
}

// TestTheOpenAPIDocumentOffersOnlyTheIdempotencyHeader: over REST the
// idempotency key is the Idempotency-Key header, required where the RPC
// takes one (TestTheOpenAPIDocumentDeclaresHeadersAndSecurity); the
// idempotency_key field it fills is nowhere in the document, neither as a
// query parameter nor as a body property, so a generated client cannot
// take it for an optional alternative (a call without the header is 400).
// In dev mode too.
func TestTheOpenAPIDocumentOffersOnlyTheIdempotencyHeader(t *testing.T) {
	t.Parallel()
	for _, devMode := range []bool{false, true} {
		f := start(t, devMode)
		resp, err := http.Get(f.url + "/openapi.json")
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var doc struct {
			Paths map[string]map[string]struct {
				OperationID string `json:"operationId"`
				Parameters  []struct {
					Name   string `json:"name"`
					In     string `json:"in"`
					Schema struct {
						Ref        string         `json:"$ref"`
						Properties map[string]any `json:"properties"`
					} `json:"schema"`
				} `json:"parameters"`
			} `json:"paths"`
			Definitions map[string]struct {
				Properties map[string]any `json:"properties"`
				Required   []string       `json:"required"`
			} `json:"definitions"`
		}
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Fatal(err)
		}
		headers, bodies := 0, 0
		for path, ops := range doc.Paths {
			for verb, op := range ops {
				for _, p := range op.Parameters {
					switch {
					case p.Name == "idempotency_key" || p.Name == "idempotencyKey":
						t.Errorf("dev %v: %s %s (%s) lists %s in %s; the header is the key", devMode, verb, path, op.OperationID, p.Name, p.In)
					case p.In == "header" && p.Name == "Idempotency-Key":
						headers++
					case p.In == "body":
						bodies++
						if _, ok := p.Schema.Properties["idempotency_key"]; ok {
							t.Errorf("dev %v: %s %s: the inline body schema lists idempotency_key", devMode, verb, path)
						}
					}
				}
			}
		}
		for name, def := range doc.Definitions {
			if _, ok := def.Properties["idempotency_key"]; ok || slices.Contains(def.Required, "idempotency_key") {
				t.Errorf("dev %v: definition %s lists idempotency_key", devMode, name)
			}
		}
		// The contracts have 15 RPCs that take a key over REST (5 as a query
		// parameter, 10 in a body); fewer headers means the check above
		// looked at nothing.
		if headers < 15 || bodies < 10 {
			t.Errorf("dev %v: %d Idempotency-Key headers and %d bodies checked, want at least 15 and 10", devMode, headers, bodies)
		}
	}
}
