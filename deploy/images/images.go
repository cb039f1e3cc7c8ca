// Command images builds one OCI image per bankbridge binary without a
// container daemon: it compiles each main package of the services module
// static (CGO_ENABLED=0, -trimpath), lays the binary, the build machine's CA
// certificates and a non-root user over an empty base with
// go-containerregistry, and writes a tarball that `docker load` takes,
// tagged bankbridge/<name>:<version>, and a CycloneDX SBOM of the binary's
// Go modules beside it. `make images` runs it; `make test-images` checks
// what it wrote.
package main

import (
	"regexp"
	"strings"
)

// Source is the repository every image names as its source
// (org.opencontainers.image.source) and its SBOM as the component's
// origin. Kept here only.
const Source = "https://github.com/bankbridge/bankbridge"

// Repository is the image repository prefix: bankbridge/<name>.
const Repository = "bankbridge"

// The paths and user every image has. 65532 is the uid distroless and ko
// use for "nonroot", so volumes prepared for those images fit ours.
const (
	nonrootUID = 65532
	nonrootGID = 65532
	// binDir holds the binary, root-owned so the process cannot replace it.
	binDir = "/usr/local/bin"
	// homeDir is the working directory, owned by nonroot: a binary's
	// default --data-dir ("data") is created there.
	homeDir = "/home/nonroot"
	// caPath is where Go's crypto/x509 looks first on Linux.
	caPath = "/etc/ssl/certs/ca-certificates.crt"
)

// The OCI annotation keys of the labels every image carries
// (github.com/opencontainers/image-spec, annotations.md).
const (
	labelVersion  = "org.opencontainers.image.version"
	labelRevision = "org.opencontainers.image.revision"
	labelSource   = "org.opencontainers.image.source"
	labelTitle    = "org.opencontainers.image.title"
	labelCreated  = "org.opencontainers.image.created"
)

// Names are the production binaries, each a main package of the services
// module (services/<name>) and one image. The dev stack and the benchmark
// drivers are not shipped.
func Names() []string {
	return []string{"balance", "consent", "receipts", "shipping", "support", "gateway", "webhooks", "sandbox"}
}

// ImageRef is the tag an image is written under: bankbridge/<name>:<tag of
// version>.
func ImageRef(name, version string) string {
	return Repository + "/" + name + ":" + Tag(version)
}

var notTagChar = regexp.MustCompile(`[^A-Za-z0-9_.-]`)

// Tag turns a version into a valid image tag: characters a tag cannot hold
// (such as the "+" of semver build metadata) become "-", and it is cut to
// the 128 characters a tag may have.
func Tag(version string) string {
	t := notTagChar.ReplaceAllString(version, "-")
	t = strings.TrimLeft(t, ".-")
	if t == "" {
		t = "dev"
	}
	if len(t) > 128 {
		t = t[:128]
	}
	return t
}
