// Package helm holds the tests of the bankbridge Helm chart (bankbridge/):
// they render it with the pinned Helm (bin/helm, make helm), decode every
// object strictly into the Kubernetes API types of a pinned k8s.io/api, and
// check what an operator relies on: each process's objects, its flags, its
// security context, probes and limits, its network policy, and its Vault
// role and policies against a real Vault. A module of its own, so that no
// product module carries the Kubernetes API.
package helm
