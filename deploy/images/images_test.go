package main

import (
	"bytes"
	"debug/buildinfo"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// distDir is where `make images` wrote the tarballs: dist/images at the
// repository root, or BANKBRIDGE_IMAGES_DIR.
func distDir() string {
	if d := os.Getenv("BANKBRIDGE_IMAGES_DIR"); d != "" {
		return d
	}
	return filepath.Join("..", "..", "dist", "images")
}

// TestImages opens every image `make images` wrote, as `docker load`
// would, and checks what an operator relies on: the tag, a non-root user,
// an entrypoint that is the service's binary, no shell, CA certificates,
// the labels, the version and commit the binary itself reports, and an
// SBOM naming the binary's Go modules. A missing image fails: run `make images` first (`make
// test-images` does).
func TestImages(t *testing.T) {
	dir := distDir()
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			tarPath := filepath.Join(dir, name+".tar")
			if _, err := os.Stat(tarPath); err != nil {
				t.Fatalf("image %s missing (run make images): %v", name, err)
			}
			manifest, err := tarball.LoadManifest(func() (f io.ReadCloser, err error) { return os.Open(tarPath) })
			if err != nil {
				t.Fatalf("%s: not a docker/OCI image tarball: %v", tarPath, err)
			}
			img, err := tarball.ImageFromPath(tarPath, nil)
			if err != nil {
				t.Fatalf("open %s: %v", tarPath, err)
			}
			cf, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			wantRef := ImageRef(name, cf.Config.Labels[labelVersion])
			if len(manifest) != 1 || !slices.Equal(manifest[0].RepoTags, []string{wantRef}) {
				t.Errorf("tarball's tags: %+v, want one image tagged %s", manifest, wantRef)
			}
			for _, p := range checkImage(img, name) {
				t.Error(p)
			}

			fs, err := files(img)
			if err != nil {
				t.Fatal(err)
			}
			bin, ok := fs[firstOf(cf.Config.Entrypoint)]
			if !ok {
				t.Fatalf("no entrypoint binary to read")
			}
			info, err := buildinfo.Read(bytes.NewReader(bin.body))
			if err != nil {
				t.Fatalf("entrypoint is not a Go binary with build info: %v", err)
			}
			if want := "github.com/bankbridge/bankbridge/services/" + name; info.Path != want {
				t.Errorf("entrypoint is the binary of %s, want %s", info.Path, want)
			}
			for _, s := range info.Settings {
				if s.Key == "CGO_ENABLED" && s.Value != "0" {
					t.Errorf("binary built with CGO_ENABLED=%s: it needs a libc the image has not", s.Value)
				}
			}

			// What an operator sees: the binary reports the version and
			// commit the labels name.
			out, err := exec.Command(extractBinary(t, fs, name), "--version").CombinedOutput()
			version, commit := cf.Config.Labels[labelVersion], cf.Config.Labels[labelRevision]
			if err != nil || !strings.Contains(string(out), " "+version+" ") || !strings.Contains(string(out), commit) {
				t.Errorf("%s --version printed %q (%v), want version %s and commit %s, as the labels say", name, out, err, version, commit)
			}

			doc, err := os.ReadFile(filepath.Join(dir, name+".cdx.json"))
			if err != nil {
				t.Fatalf("SBOM missing: %v", err)
			}
			for _, p := range checkSBOM(doc, name, info) {
				t.Error(p)
			}
		})
	}
}

func firstOf(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}
