// Package tools pins Helm, which `make helm` builds into bin/helm from this
// module's tool directive: a module of its own, so that no product module
// carries Helm's (and Kubernetes') dependencies.
package tools
