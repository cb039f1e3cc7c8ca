package main

import (
	"fmt"
	"strings"

	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// The headers the kit requires of a REST call, declared in the served
// document from what the contracts already say: a Bankbridge-Purpose
// header where the RPC's access rule lists purposes, an Idempotency-Key
// header where its request has idempotency_key (which validation
// requires). Derived here rather than annotated on each RPC, so a new RPC
// documents them without a copy of the annotation, and the document cannot
// drift from the rule the kit enforces.
const (
	purposeHeader     = "Bankbridge-Purpose"
	idempotencyHeader = "Idempotency-Key"
	idempotencyField  = "idempotency_key"
	idempotencyText   = "8-128 letters, digits, _ or -, new for each distinct write: a retry with the same key and body returns the first answer and changes nothing again; the same key with another body is 409 IDEMPOTENCY_KEY_REUSED."
)

// restMethods maps each REST operation's id, as protoc-gen-openapiv2
// writes it (Service_Method), to its RPC, over every bankbridge contract
// linked into the gateway.
func restMethods() (map[string]protoreflect.MethodDescriptor, error) {
	out := map[string]protoreflect.MethodDescriptor{}
	var err error
	protoregistry.GlobalFiles.RangeFiles(func(f protoreflect.FileDescriptor) bool {
		if !strings.HasPrefix(string(f.Package()), "bankbridge.") {
			return true
		}
		for i := range f.Services().Len() {
			s := f.Services().Get(i)
			for j := range s.Methods().Len() {
				m := s.Methods().Get(j)
				if rule, _ := proto.GetExtension(m.Options(), annotations.E_Http).(*annotations.HttpRule); rule == nil {
					continue
				}
				id := string(s.Name()) + "_" + string(m.Name())
				if prev, clash := out[id]; clash {
					err = fmt.Errorf("operation id %s names both %s and %s", id, prev.FullName(), m.FullName())
					return false
				}
				out[id] = m
			}
		}
		return true
	})
	return out, err
}

// declareHeaders adds the required header parameters of m to op.
func declareHeaders(op map[string]any, m protoreflect.MethodDescriptor) {
	params, _ := op["parameters"].([]any)
	declared := map[string]bool{}
	for _, p := range params {
		if q, _ := p.(map[string]any); q["in"] == "header" {
			name, _ := q["name"].(string)
			declared[name] = true
		}
	}
	if rule, _ := proto.GetExtension(m.Options(), commonv1.E_Access).(*commonv1.AccessRule); len(rule.GetPurposes()) > 0 && !declared[purposeHeader] {
		names := make([]string, 0, len(rule.GetPurposes()))
		for _, p := range rule.GetPurposes() {
			names = append(names, strings.TrimPrefix(p.String(), "PURPOSE_"))
		}
		params = append(params, headerParam(purposeHeader, "Why the call is made: "+strings.Join(names, ", ")+
			" (a bankbridge.common.v1.Purpose name, with or without PURPOSE_). Missing or unknown: 400 INVALID_ARGUMENT; not allowed for this call or client: 403."))
	}
	if m.Input().Fields().ByName(idempotencyField) != nil && !declared[idempotencyHeader] {
		params = append(params, headerParam(idempotencyHeader, idempotencyText))
	}
	if len(params) > 0 {
		op["parameters"] = params
	}
}

func headerParam(name, description string) map[string]any {
	return map[string]any{"name": name, "description": description, "in": "header", "required": true, "type": "string"}
}

// hideIdempotencyField leaves the idempotency_key request field out of op,
// whether generated as a query parameter or as a property of the body's
// schema: over REST the key is the Idempotency-Key header, which the
// document requires, and listing the field too would tell a generated
// client the key is optional, while a call without the header is 400. (The
// kit still takes the field, for gRPC callers; a key in both places must be
// the same.) A body schema of one operation is its own definition
// (protoc-gen-openapiv2 names it <Service><Method>Body), so no response
// loses the field.
func hideIdempotencyField(op map[string]any, m protoreflect.MethodDescriptor, defs map[string]any) {
	if m.Input().Fields().ByName(idempotencyField) == nil {
		return
	}
	params, _ := op["parameters"].([]any)
	if len(params) == 0 {
		return
	}
	kept := params[:0]
	for _, p := range params {
		q, _ := p.(map[string]any)
		if q["name"] == idempotencyField && q["in"] == "query" {
			continue
		}
		if q["in"] == "body" {
			schema, _ := q["schema"].(map[string]any)
			ref, _ := schema["$ref"].(string)
			if def, ok := defs[strings.TrimPrefix(ref, "#/definitions/")].(map[string]any); ok {
				schema = def
			}
			dropProperty(schema, idempotencyField)
		}
		kept = append(kept, p)
	}
	op["parameters"] = kept
}

// dropProperty removes name from a schema's properties and required list.
func dropProperty(schema map[string]any, name string) {
	if props, ok := schema["properties"].(map[string]any); ok {
		delete(props, name)
	}
	if req, ok := schema["required"].([]any); ok {
		kept := req[:0]
		for _, r := range req {
			if r != name {
				kept = append(kept, r)
			}
		}
		if len(kept) == 0 {
			delete(schema, "required")
		} else {
			schema["required"] = kept
		}
	}
}
