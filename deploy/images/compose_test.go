package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// composeFile is the compose file users run the suite with.
var composeFile = filepath.Join("..", "compose", "compose.yaml")

// composeBuilt are the images under bankbridge/ that the compose file
// builds itself rather than take from `make images`.
var composeBuilt = []string{"otelcol"}

// loadCompose parses the compose file as `docker compose` does
// (interpolation, anchors and merges, validation against the compose
// schema, paths resolved), with env as the environment.
func loadCompose(t *testing.T, env map[string]string) *types.Project {
	t.Helper()
	abs, err := filepath.Abs(composeFile)
	if err != nil {
		t.Fatal(err)
	}
	p, err := loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  filepath.Dir(abs),
		ConfigFiles: []types.ConfigFile{{Filename: abs}},
		Environment: env,
	}, func(o *loader.Options) { o.SetProjectName("bankbridge", true) })
	if err != nil {
		t.Fatalf("compose file %s: %v", composeFile, err)
	}
	return p
}

// TestComposeFile checks the compose file's shape: every production
// binary has a service running the image `make images` tags (and built
// from the Dockerfile when asked to build), every bankbridge image named is
// one of those, and PostgreSQL, NATS with JetStream, Vault 1.21.0 and the
// collector with deploy/otelcol's configuration are there.
func TestComposeFile(t *testing.T) {
	t.Parallel()
	const version = "v9.8.7-test"
	p := loadCompose(t, map[string]string{"BANKBRIDGE_IMAGE_TAG": version})
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range Names() {
		s, err := p.GetService(name)
		if err != nil {
			t.Errorf("no service for the %s image: %v", name, err)
			continue
		}
		if want := ImageRef(name, version); s.Image != want {
			t.Errorf("service %s runs image %q, want %q (the tag make images writes)", name, s.Image, want)
		}
		switch {
		case s.Build == nil:
			t.Errorf("service %s: no build section (docker compose up --build)", name)
		case filepath.Clean(s.Build.Context) != root || s.Build.Dockerfile != "deploy/docker/Dockerfile":
			t.Errorf("service %s builds %s in %s, want deploy/docker/Dockerfile in the repository root", name, s.Build.Dockerfile, s.Build.Context)
		case s.Build.Args["SERVICE"] == nil || *s.Build.Args["SERVICE"] != name:
			t.Errorf("service %s builds with SERVICE=%v, want %s", name, s.Build.Args["SERVICE"], name)
		}
	}
	for _, s := range p.Services {
		repo, _, _ := strings.Cut(s.Image, ":")
		image, ours := strings.CutPrefix(repo, Repository+"/")
		if ours && !slices.Contains(Names(), image) && !slices.Contains(composeBuilt, image) {
			t.Errorf("service %s runs %s, which make images does not build", s.Name, s.Image)
		}
	}

	// The rest of the suite: each check returns what is wrong, "" if
	// nothing.
	infra := map[string]func(types.ServiceConfig) string{
		"postgres": func(s types.ServiceConfig) string { return pinned(s.Image) },
		"nats": func(s types.ServiceConfig) string {
			if !slices.Contains(s.Command, "-js") {
				return "JetStream is off (no -js)"
			}
			return pinned(s.Image)
		},
		"vault": func(s types.ServiceConfig) string {
			if s.Image != "hashicorp/vault:1.21.0" {
				return "image " + s.Image + ", want hashicorp/vault:1.21.0"
			}
			return ""
		},
		"otelcol": func(s types.ServiceConfig) string {
			want := filepath.Join(root, "deploy", "otelcol", "config.yaml")
			for _, v := range s.Volumes {
				if v.Source == want {
					if _, err := os.Stat(want); err != nil {
						return err.Error()
					}
					return ""
				}
			}
			return "does not mount " + want
		},
	}
	for name, check := range infra {
		s, err := p.GetService(name)
		if err != nil {
			t.Errorf("no %s service: %v", name, err)
			continue
		}
		if problem := check(s); problem != "" {
			t.Errorf("service %s: %s", name, problem)
		}
	}
}

// pinned reports an image named without a version tag.
func pinned(image string) string {
	if _, tag, ok := strings.Cut(image, ":"); !ok || tag == "latest" {
		return "image " + image + " is not pinned to a version"
	}
	return ""
}

// helpFlag is a flag's line in a Go binary's -h output.
var helpFlag = regexp.MustCompile(`(?m)^\s+-([A-Za-z0-9][A-Za-z0-9._-]*)`)

// knownFlags runs the binary of the image name, as `make images` wrote it,
// with -h and returns the flags it lists.
func knownFlags(t *testing.T, name string) map[string]bool {
	t.Helper()
	img, err := tarball.ImageFromPath(filepath.Join(distDir(), name+".tar"), nil)
	if err != nil {
		t.Fatalf("image %s (run make images): %v", name, err)
	}
	fs, err := files(img)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(extractBinary(t, fs, name), "-h")
	cmd.Env = []string{}           // no BANKBRIDGE_* of this machine
	out, _ := cmd.CombinedOutput() // -h exits 2
	known := map[string]bool{}
	for _, m := range helpFlag.FindAllStringSubmatch(string(out), -1) {
		known[m[1]] = true
	}
	if len(known) < 5 {
		t.Fatalf("%s -h listed %d flags:\n%s", name, len(known), out)
	}
	return known
}

// extractBinary writes the binary of the image name, whose files are fs,
// to a temporary file and returns its path.
func extractBinary(t *testing.T, fs map[string]file, name string) string {
	t.Helper()
	f, ok := fs[filepath.Join(binDir, name)]
	if !ok {
		t.Fatalf("image %s has no %s", name, filepath.Join(binDir, name))
	}
	bin := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(bin, f.body, 0o755); err != nil {
		t.Fatal(err)
	}
	return bin
}

// unknownSettings reports each flag in args and each BANKBRIDGE_*
// variable in env that is not one of known (a binary's flags): a binary
// refuses an unknown flag at start, and ignores an unknown variable,
// which is worse.
func unknownSettings(args []string, env map[string]*string, known map[string]bool) []string {
	var bad []string
	for _, a := range args {
		flag, ok := strings.CutPrefix(a, "--")
		if !ok {
			bad = append(bad, "argument "+a+" is not a --flag")
			continue
		}
		flag, _, _ = strings.Cut(flag, "=")
		if !known[flag] {
			bad = append(bad, "flag --"+flag)
		}
	}
	for k := range env {
		rest, ok := strings.CutPrefix(k, "BANKBRIDGE_")
		if !ok {
			continue
		}
		if flag := strings.ReplaceAll(strings.ToLower(rest), "_", "-"); !known[flag] {
			bad = append(bad, "variable "+k+" (--"+flag+")")
		}
	}
	slices.Sort(bad)
	return bad
}

// TestComposeSettings checks every flag and BANKBRIDGE_* variable the
// compose file gives a bankbridge binary against the flags that binary,
// from its image, lists: a misspelt or removed flag fails here rather
// than at `docker compose up`.
func TestComposeSettings(t *testing.T) {
	t.Parallel()
	p := loadCompose(t, nil)
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			s, err := p.GetService(name)
			if err != nil {
				t.Fatal(err)
			}
			if len(s.Command) == 0 {
				t.Errorf("service %s passes no flags", name)
			}
			for _, b := range unknownSettings(s.Command, s.Environment, knownFlags(t, name)) {
				t.Errorf("service %s: %s is not a flag of %s", name, b, name)
			}
		})
	}
}

// TestUnknownSettings proves the settings check can fail.
func TestUnknownSettings(t *testing.T) {
	t.Parallel()
	known := map[string]bool{"grpc-addr": true, "vault-addr": true}
	v := "x"
	got := unknownSettings(
		[]string{"--grpc-addr=127.0.0.1:1", "--grpc-adr=127.0.0.1:1", "-vault-addr=x"},
		map[string]*string{"BANKBRIDGE_VAULT_ADDR": &v, "BANKBRIDGE_VAULT_ADR": &v, "OTEL_TRACES_EXPORTER": &v},
		known)
	want := []string{"argument -vault-addr=x is not a --flag", "flag --grpc-adr", "variable BANKBRIDGE_VAULT_ADR (--vault-adr)"}
	if !slices.Equal(got, want) {
		t.Errorf("unknownSettings = %q, want %q", got, want)
	}
}
