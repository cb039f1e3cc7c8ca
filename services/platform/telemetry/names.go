package telemetry

import (
	"regexp"
	"strings"
	"sync"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// A span's name leaves a process like an attribute's value: only when it is
// known to be safe. The gRPC instrumentation names a span after the method
// the caller asked for, and attributes rpc.service and rpc.method after it
// too, whatever the caller wrote, registered or not ("/x.Y/<an IBAN>" is
// answered UNIMPLEMENTED, but its span exists). So a gRPC name leaves only
// when it names a method of a service linked into this binary, found in
// the protobuf registry; an HTTP span name only when it is "HTTP <method>"
// or "HTTP <method> <route template>", a route made of words, wildcards and
// {variables}, never of ids or numbers. Anything else is Redacted.

// The attribute keys of the gRPC semantic conventions that name a method:
// rpc.method is "pkg.Service/Method" in the current conventions, the bare
// method name (with rpc.service) in the old ones.
const (
	rpcServiceKey = "rpc.service"
	rpcMethodKey  = "rpc.method"
)

// safeEventNames are the span events instrumentation records: otelgrpc's
// per-message events and RecordError's exception.
var safeEventNames = map[string]bool{"message": true, "exception": true}

// knownMethod reports whether full ("pkg.Service/Method", with or without
// a leading slash) names a method of a registered service.
func knownMethod(full string) bool {
	service, method, ok := strings.Cut(strings.TrimPrefix(full, "/"), "/")
	if !ok {
		return false
	}
	sd, ok := registeredService(service)
	return ok && sd.Methods().ByName(protoreflect.Name(method)) != nil
}

func registeredService(name string) (protoreflect.ServiceDescriptor, bool) {
	if !protoreflect.FullName(name).IsValid() {
		return nil, false
	}
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(name))
	if err != nil {
		return nil, false
	}
	sd, ok := d.(protoreflect.ServiceDescriptor)
	return sd, ok
}

// methodNames are the bare names of every registered service's methods,
// for rpc.method in the old conventions, where the attribute alone does
// not say its service. Read once: files register as packages initialise.
var methodNames = sync.OnceValue(func() map[string]bool {
	names := map[string]bool{}
	protoregistry.GlobalFiles.RangeFiles(func(f protoreflect.FileDescriptor) bool {
		for i := range f.Services().Len() {
			ms := f.Services().Get(i).Methods()
			for j := range ms.Len() {
				names[string(ms.Get(j).Name())] = true
			}
		}
		return true
	})
	return names
})

// knownRPCValue reports whether the value of rpc.service or rpc.method
// names something this binary serves or calls.
func knownRPCValue(key, value string) bool {
	if key == rpcServiceKey {
		_, ok := registeredService(value)
		return ok
	}
	if strings.Contains(value, "/") {
		return knownMethod(value)
	}
	return methodNames()[value]
}

// httpMethods are the methods an HTTP span name may carry; otelhttp and
// our formatters name spans with the request's method, which a caller
// may make up.
var httpMethods = map[string]bool{
	"GET": true, "HEAD": true, "POST": true, "PUT": true, "PATCH": true,
	"DELETE": true, "OPTIONS": true, "CONNECT": true, "TRACE": true,
}

// routeTemplate is a route as ServeMux patterns and grpc-gateway print
// them: /v1/{name=users/*/accounts/*}/balance, /v1/carriers/{carrier}/x,
// /v1/users/*/shipments:watch. No digits but an API version segment, and
// no word longer than a collection name: an id, a number or a token does
// not fit.
var (
	routeTemplate  = regexp.MustCompile(`^/[A-Za-z/*{}=._:-]{0,200}$`)
	versionSegment = regexp.MustCompile(`/v[0-9]{1,2}(/|$)`)
	longWord       = regexp.MustCompile(`[A-Za-z]{33,}`)
)

// safeSpanName reports whether a span may keep its name.
func safeSpanName(name string) bool {
	if knownMethod(name) {
		return true
	}
	rest, ok := strings.CutPrefix(name, "HTTP ")
	if !ok {
		return name == "HTTP"
	}
	method, route, hasRoute := strings.Cut(rest, " ")
	if !httpMethods[method] {
		return false
	}
	if !hasRoute {
		return true
	}
	route = versionSegment.ReplaceAllString(route, "/$1")
	return routeTemplate.MatchString(route) && !longWord.MatchString(route)
}
