package main

import (
	"bytes"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// testSpec is an image of a stand-in binary: checkImage looks at the
// image, not at what the binary does.
func testSpec(t *testing.T) spec {
	t.Helper()
	ca, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt")
	if err != nil {
		t.Fatalf("the build machine's CA certificates, which images copy: %v", err)
	}
	return spec{Name: "balance", Version: "v1.2.3", Commit: "abc", Created: time.Unix(1700000000, 0),
		Arch: "amd64", Binary: []byte("\x7fELF stand-in"), CACerts: ca}
}

// withConfig is img with its config changed by edit.
func withConfig(t *testing.T, img v1.Image, edit func(*v1.Config)) v1.Image {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	edit(&cf.Config)
	out, err := mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// withFile is img with one more layer holding p.
func withFile(t *testing.T, img v1.Image, p string) v1.Image {
	t.Helper()
	l, err := layer([]entry{{path: p, mode: 0o755, body: []byte("#!")}}, time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	out, err := mutate.AppendLayers(img, l)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestCheckImageFindsFaults proves each of TestImages' checks can fail: an
// image built as `make images` builds one passes, and each fault an
// image could have is reported.
func TestCheckImageFindsFaults(t *testing.T) {
	t.Parallel()
	good, err := image(testSpec(t))
	if err != nil {
		t.Fatal(err)
	}
	noCA := testSpec(t)
	noCA.CACerts = nil
	imgNoCA, err := image(noCA)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		img  v1.Image
		want string // a problem reported; "" for none
	}{
		{"as built", good, ""},
		{"user root by uid", withConfig(t, good, func(c *v1.Config) { c.User = "0:0" }), `user: "0:0" is uid 0`},
		{"user root by name", withConfig(t, good, func(c *v1.Config) { c.User = "root" }), `user: "root" is uid 0 in /etc/passwd`},
		{"no user", withConfig(t, good, func(c *v1.Config) { c.User = "" }), "user: none set"},
		{"unknown user name", withConfig(t, good, func(c *v1.Config) { c.User = "app" }), `user: "app" is not in the image's /etc/passwd`},
		{"no entrypoint", withConfig(t, good, func(c *v1.Config) { c.Entrypoint = nil }), "entrypoint: none set"},
		{"entrypoint not in the image", withConfig(t, good, func(c *v1.Config) { c.Entrypoint = []string{"/usr/local/bin/other"} }), "entrypoint: /usr/local/bin/other is not a file"},
		{"entrypoint not executable", withConfig(t, good, func(c *v1.Config) { c.Entrypoint = []string{"/etc/passwd"} }), "entrypoint: /etc/passwd is not executable"},
		{"a shell", withFile(t, good, "/bin/sh"), "shell: /bin/sh"},
		{"bash elsewhere", withFile(t, good, "/usr/bin/bash"), "shell: /usr/bin/bash"},
		{"busybox", withFile(t, good, "/bin/busybox"), "shell: /bin/busybox"},
		{"no CA certificates", imgNoCA, "CA certificates: /etc/ssl/certs/ca-certificates.crt holds no PEM"},
		{"no version label", withConfig(t, good, func(c *v1.Config) { delete(c.Labels, labelVersion) }), "label org.opencontainers.image.version: not set"},
		{"no revision label", withConfig(t, good, func(c *v1.Config) { delete(c.Labels, labelRevision) }), "label org.opencontainers.image.revision: not set"},
		{"no source label", withConfig(t, good, func(c *v1.Config) { delete(c.Labels, labelSource) }), "label org.opencontainers.image.source"},
		{"another binary's title", withConfig(t, good, func(c *v1.Config) { c.Labels[labelTitle] = "receipts" }), "label org.opencontainers.image.title"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			problems := checkImage(tt.img, "balance")
			if tt.want == "" {
				if len(problems) > 0 {
					t.Fatalf("checkImage reported %q on a good image", problems)
				}
				return
			}
			for _, p := range problems {
				if strings.Contains(p, tt.want) {
					return
				}
			}
			t.Errorf("checkImage reported %q, want a problem containing %q", problems, tt.want)
		})
	}
}

// TestCheckSBOMFindsFaults proves the SBOM check can fail: the SBOM of
// this test binary's build info passes against it, and fails against a
// binary that links one more module, or another version of one.
func TestCheckSBOMFindsFaults(t *testing.T) {
	t.Parallel()
	info, ok := debug.ReadBuildInfo()
	if !ok || len(info.Deps) == 0 {
		t.Fatal("no build info in the test binary")
	}
	var doc bytes.Buffer
	if err := writeSBOM(&doc, sbom("balance", "v1.2.3", time.Unix(0, 0), info)); err != nil {
		t.Fatal(err)
	}
	if p := checkSBOM(doc.Bytes(), "balance", info); len(p) > 0 {
		t.Fatalf("checkSBOM reported %q on the SBOM of the same build info", p)
	}

	extra := *info
	extra.Deps = append(slices.Clone(info.Deps), &debug.Module{Path: "example.com/unlisted", Version: "v1.0.0"})
	otherVersion := *info
	otherVersion.Deps = slices.Clone(info.Deps)
	bumped := *otherVersion.Deps[0]
	bumped.Version += "-other"
	otherVersion.Deps[0] = &bumped
	tests := []struct {
		name   string
		doc    []byte
		binary string
		info   *debug.BuildInfo
		want   string
	}{
		{"a module not listed", doc.Bytes(), "balance", &extra, "module example.com/unlisted, linked into the binary, is not listed"},
		{"another version", doc.Bytes(), "balance", &otherVersion, "module " + bumped.Path + " is listed at"},
		{"another binary", doc.Bytes(), "receipts", info, `its component is not "receipts"`},
		{"not JSON", []byte("{"), "balance", info, "SBOM:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			problems := checkSBOM(tt.doc, tt.binary, tt.info)
			for _, p := range problems {
				if strings.Contains(p, tt.want) {
					return
				}
			}
			t.Errorf("checkSBOM reported %q, want a problem containing %q", problems, tt.want)
		})
	}
}
