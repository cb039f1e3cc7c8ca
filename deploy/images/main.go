package main

import (
	"context"
	"debug/buildinfo"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "images:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("images", flag.ContinueOnError)
	services := fs.String("services", "services", "directory of the services module")
	out := fs.String("out", "dist/images", "directory the tarballs and SBOMs are written to")
	version := fs.String("version", "v1.0.0-dev", "version stamped into the binaries and labels; the tag is this, made tag-safe")
	commit := fs.String("commit", "unknown", "commit stamped into the binaries and labels")
	created := fs.String("created", "0", "timestamp of every file and of the images, Unix seconds (SOURCE_DATE_EPOCH): fixed, so a build is reproducible")
	caFile := fs.String("ca-file", "/etc/ssl/certs/ca-certificates.crt", "PEM bundle of CA certificates copied into every image (the build machine's)")
	arch := fs.String("arch", runtime.GOARCH, "GOARCH of the images")
	if err := fs.Parse(args); err != nil {
		return err
	}
	secs, err := strconv.ParseInt(*created, 10, 64)
	if err != nil {
		return fmt.Errorf("--created %q: want Unix seconds: %w", *created, err)
	}
	when := time.Unix(secs, 0).UTC()
	caCerts, err := os.ReadFile(*caFile)
	if err != nil {
		return fmt.Errorf("CA certificates: %w", err)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	binDir, err := os.MkdirTemp("", "bankbridge-images-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(binDir)

	start := time.Now()
	if err := compile(ctx, *services, binDir, *arch, *version, *commit, Names()); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "images: compiled %d binaries in %s\n", len(Names()), time.Since(start).Round(100*time.Millisecond))
	for _, n := range Names() {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := write(filepath.Join(binDir, n), *out, spec{
			Name: n, Version: *version, Commit: *commit, Created: when, Arch: *arch, CACerts: caCerts,
		}); err != nil {
			return fmt.Errorf("%s: %w", n, err)
		}
	}
	fmt.Fprintf(os.Stderr, "images: %d images in %s, in %s\n", len(Names()), *out, time.Since(start).Round(100*time.Millisecond))
	return nil
}

// write builds s's image from the binary at bin and writes
// <out>/<name>.tar and its SBOM, <out>/<name>.cdx.json, each through a
// temporary file so a failed run leaves no half-written file behind.
func write(bin, out string, s spec) error {
	var err error
	if s.Binary, err = os.ReadFile(bin); err != nil {
		return err
	}
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		return fmt.Errorf("build info: %w", err)
	}
	img, err := image(s)
	if err != nil {
		return err
	}
	ref := ImageRef(s.Name, s.Version)
	tag, err := name.NewTag(ref)
	if err != nil {
		return err
	}
	tarPath := filepath.Join(out, s.Name+".tar")
	if err := atomically(tarPath, func(tmp string) error { return tarball.WriteToFile(tmp, tag, img) }); err != nil {
		return err
	}
	sbomPath := filepath.Join(out, s.Name+".cdx.json")
	if err := atomically(sbomPath, func(tmp string) error {
		f, err := os.Create(tmp)
		if err != nil {
			return err
		}
		if err := writeSBOM(f, sbom(s.Name, s.Version, s.Created, info)); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}); err != nil {
		return err
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	fmt.Printf("%s\t%s\t%s\t%s\n", ref, digest, tarPath, sbomPath)
	return nil
}

// atomically has fill write a temporary file beside path, then renames it
// to path.
func atomically(path string, fill func(tmp string) error) error {
	tmp := path + ".tmp"
	if err := fill(tmp); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}
