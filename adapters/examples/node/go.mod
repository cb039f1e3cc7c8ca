// A fence, not a Go module: this directory is a Node.js project, and
// node_modules/ may one day hold a package that ships .go files. This file
// keeps the adapters module's ./... (go vet, go test, go build) out of
// here; it is in no go.work and nothing imports it.
module github.com/bankbridge/bankbridge/adapters/examples/node

go 1.26.0
