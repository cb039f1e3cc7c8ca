package main

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// buildinfoPkg holds the Version and Commit every binary reports; -X sets
// them at link time.
const buildinfoPkg = "github.com/bankbridge/bankbridge/services/platform/buildinfo"

// ldflags are the linker flags that stamp version and commit into a binary.
func ldflags(version, commit string) string {
	return fmt.Sprintf("-X %s.Version=%s -X %s.Commit=%s", buildinfoPkg, version, buildinfoPkg, commit)
}

// compile builds every named main package of the services module in
// servicesDir into outDir, static and without local paths, for linux/arch.
// One go build for all of them, so the packages they share compile once.
func compile(ctx context.Context, servicesDir, outDir, arch, version, commit string, names []string) error {
	args := []string{"build", "-trimpath", "-ldflags", ldflags(version, commit), "-o", outDir + "/"}
	for _, n := range names {
		args = append(args, "./"+n)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = servicesDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch, "GOWORK=off")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go %s (in %s): %w", strings.Join(args, " "), servicesDir, err)
	}
	return nil
}

// spec is what one image is made of.
type spec struct {
	Name    string
	Version string
	Commit  string
	// Created is every file's and the config's timestamp: fixed, so the
	// same sources give the same image digest.
	Created time.Time
	Arch    string
	// Binary is the static executable, installed as /usr/local/bin/<Name>.
	Binary []byte
	// CACerts is the PEM bundle installed at /etc/ssl/certs/ca-certificates.crt.
	CACerts []byte
}

// entry is one file or directory of a layer.
type entry struct {
	path string
	mode int64
	uid  int
	gid  int
	body []byte
	dir  bool
}

// layer is a gzip'd OCI layer of entries, every timestamp at created.
func layer(entries []entry, created time.Time) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{
			Name: strings.TrimPrefix(e.path, "/"), Mode: e.mode, Uid: e.uid, Gid: e.gid,
			ModTime: created, Format: tar.FormatPAX, Typeflag: tar.TypeReg, Size: int64(len(e.body)),
		}
		if e.dir {
			h.Typeflag, h.Size, h.Name = tar.TypeDir, 0, h.Name+"/"
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil },
		tarball.WithMediaType(types.OCILayer), tarball.WithCompressedCaching)
}

// baseLayer is the part every image shares (and so stores once): the
// directories, the nonroot user and group, and the CA certificates.
func baseLayer(caCerts []byte, created time.Time) (v1.Layer, error) {
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:%s:/sbin/nologin\n", nonrootUID, nonrootGID, homeDir)
	group := fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", nonrootGID)
	return layer([]entry{
		{path: "/etc", mode: 0o755, dir: true},
		{path: "/etc/passwd", mode: 0o644, body: []byte(passwd)},
		{path: "/etc/group", mode: 0o644, body: []byte(group)},
		{path: "/etc/ssl", mode: 0o755, dir: true},
		{path: "/etc/ssl/certs", mode: 0o755, dir: true},
		{path: caPath, mode: 0o644, body: caCerts},
		{path: "/home", mode: 0o755, dir: true},
		{path: homeDir, mode: 0o700, uid: nonrootUID, gid: nonrootGID, dir: true},
		// Go's os.TempDir; sticky and world-writable as on any Unix.
		{path: "/tmp", mode: 0o1777, dir: true},
		{path: "/usr", mode: 0o755, dir: true},
		{path: "/usr/local", mode: 0o755, dir: true},
		{path: binDir, mode: 0o755, dir: true},
	}, created)
}

// image assembles s over an empty base: the shared layer, then the binary,
// run as nonroot from its home.
func image(s spec) (v1.Image, error) {
	base, err := baseLayer(s.CACerts, s.Created)
	if err != nil {
		return nil, fmt.Errorf("base layer: %w", err)
	}
	entrypoint := path.Join(binDir, s.Name)
	bin, err := layer([]entry{{path: entrypoint, mode: 0o755, body: s.Binary}}, s.Created)
	if err != nil {
		return nil, fmt.Errorf("binary layer: %w", err)
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	created := v1.Time{Time: s.Created}
	img, err = mutate.Append(img,
		mutate.Addendum{Layer: base, History: v1.History{Created: created, CreatedBy: "bankbridge images: nonroot user, CA certificates (from the build machine)"}},
		mutate.Addendum{Layer: bin, History: v1.History{Created: created, CreatedBy: "bankbridge images: " + entrypoint}},
	)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Created = "linux", s.Arch, created
	cf.Config.User = fmt.Sprintf("%d:%d", nonrootUID, nonrootGID)
	cf.Config.Entrypoint = []string{entrypoint}
	cf.Config.WorkingDir = homeDir
	cf.Config.Env = []string{"PATH=" + binDir, "SSL_CERT_FILE=" + caPath, "HOME=" + homeDir}
	cf.Config.Labels = map[string]string{
		labelVersion:  s.Version,
		labelRevision: s.Commit,
		labelSource:   Source,
		labelTitle:    s.Name,
		labelCreated:  s.Created.UTC().Format(time.RFC3339),
	}
	return mutate.ConfigFile(img, cf)
}
