package main

import (
	"archive/tar"
	"bytes"
	"crypto/x509"
	"fmt"
	"io"
	"path"
	"runtime/debug"
	"strconv"
	"strings"

	cdx "github.com/CycloneDX/cyclonedx-go"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// file is one regular file of an image's flattened filesystem.
type file struct {
	mode int64
	body []byte
}

// files flattens img (whiteouts applied) into its regular files by path,
// "/"-rooted, and its symbolic links as files with no body.
func files(img v1.Image) (map[string]file, error) {
	rc := mutate.Extract(img)
	defer rc.Close()
	fs := map[string]file{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return fs, nil
		}
		if err != nil {
			return nil, err
		}
		p := path.Clean("/" + h.Name)
		switch h.Typeflag {
		case tar.TypeReg:
			b, err := io.ReadAll(tr)
			if err != nil {
				return nil, err
			}
			fs[p] = file{mode: h.Mode, body: b}
		case tar.TypeSymlink, tar.TypeLink:
			fs[p] = file{mode: h.Mode}
		}
	}
}

// shells are the names of programs that would let someone who gets into a
// container run commands: none may be anywhere in an image.
var shells = map[string]bool{"sh": true, "bash": true, "ash": true, "dash": true, "zsh": true, "busybox": true}

// checkImage reports what makes img, the image of the binary name, unfit
// to ship: it runs as root, has no entrypoint or one that is not an
// executable file in the image, holds a shell, lacks CA certificates, or
// lacks the version, revision, source and title labels. Empty means fit.
func checkImage(img v1.Image, name string) []string {
	cf, err := img.ConfigFile()
	if err != nil {
		return []string{"config: " + err.Error()}
	}
	fs, err := files(img)
	if err != nil {
		return []string{"filesystem: " + err.Error()}
	}
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	if cf.OS != "linux" {
		add("os is %q, want linux", cf.OS)
	}
	if p := checkUser(cf.Config.User, fs["/etc/passwd"].body); p != "" {
		add("user: %s", p)
	}

	switch ep := cf.Config.Entrypoint; {
	case len(ep) == 0:
		add("entrypoint: none set")
	default:
		f, ok := fs[ep[0]]
		switch {
		case !ok:
			add("entrypoint: %s is not a file in the image", ep[0])
		case f.mode&0o111 == 0:
			add("entrypoint: %s is not executable (mode %o)", ep[0], f.mode)
		}
	}

	for p := range fs {
		if shells[path.Base(p)] {
			add("shell: %s is in the image", p)
		}
	}

	if ca, ok := fs[caPath]; !ok {
		add("CA certificates: no %s", caPath)
	} else if !x509.NewCertPool().AppendCertsFromPEM(ca.body) {
		add("CA certificates: %s holds no PEM certificate", caPath)
	}

	labels := cf.Config.Labels
	if labels[labelVersion] == "" {
		add("label %s: not set", labelVersion)
	}
	if labels[labelRevision] == "" {
		add("label %s: not set", labelRevision)
	}
	if labels[labelSource] != Source {
		add("label %s: %q, want %q", labelSource, labels[labelSource], Source)
	}
	if labels[labelTitle] != name {
		add("label %s: %q, want %q", labelTitle, labels[labelTitle], name)
	}
	return problems
}

// checkUser reports why user (a config's "user[:group]") would run as
// root, with passwd the image's /etc/passwd to resolve a name; "" when it
// would not.
func checkUser(user string, passwd []byte) string {
	u, _, _ := strings.Cut(user, ":")
	if u == "" {
		return "none set: the container runs as root"
	}
	if uid, err := strconv.Atoi(u); err == nil {
		if uid == 0 {
			return fmt.Sprintf("%q is uid 0, root", user)
		}
		return ""
	}
	for line := range strings.Lines(string(passwd)) {
		fields := strings.Split(strings.TrimSpace(line), ":")
		if len(fields) > 2 && fields[0] == u {
			if fields[2] == "0" {
				return fmt.Sprintf("%q is uid 0 in /etc/passwd, root", user)
			}
			return ""
		}
	}
	return fmt.Sprintf("%q is not in the image's /etc/passwd", user)
}

// checkSBOM reports how the CycloneDX JSON in doc fails to describe the
// binary name whose build info is info: not parseable, another component,
// or a module the binary links (or its Go standard library) missing or at
// another version. Empty means it describes it.
func checkSBOM(doc []byte, name string, info *debug.BuildInfo) []string {
	var bom cdx.BOM
	if err := cdx.NewBOMDecoder(bytes.NewReader(doc), cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
		return []string{"SBOM: " + err.Error()}
	}
	var problems []string
	if bom.Metadata == nil || bom.Metadata.Component == nil || bom.Metadata.Component.Name != name {
		problems = append(problems, fmt.Sprintf("SBOM: its component is not %q", name))
	}
	listed := map[string]string{}
	if bom.Components != nil {
		for _, c := range *bom.Components {
			listed[c.Name] = c.Version
		}
	}
	want := map[string]string{"stdlib": info.GoVersion, info.Main.Path: info.Main.Version}
	for _, d := range info.Deps {
		if d.Replace != nil && d.Replace.Version != "" {
			want[d.Replace.Path] = d.Replace.Version
		} else {
			want[d.Path] = d.Version
		}
	}
	for mod, version := range want {
		got, ok := listed[mod]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("SBOM: module %s, linked into the binary, is not listed", mod))
		case got != version:
			problems = append(problems, fmt.Sprintf("SBOM: module %s is listed at %q, the binary has %q", mod, got, version))
		}
	}
	return problems
}
