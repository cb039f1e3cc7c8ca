package main

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// dockerfile is the Dockerfile for those who build with Docker.
var dockerfile = filepath.Join("..", "docker", "Dockerfile")

// dockerfileProblems reports where the Dockerfile text df strays from what
// `make images` builds: the binaries it accepts, the final stage's base,
// user and entrypoint, the version stamping, and the source label. It
// reads the text; no Docker engine runs it here.
func dockerfileProblems(df string) []string {
	var problems []string
	cases := regexp.MustCompile(`(?m)^\s*([a-z|]+)\) ;; \\$`).FindStringSubmatch(df)
	if cases == nil {
		problems = append(problems, "no SERVICE check (case NAME|NAME) ;;)")
	} else if got := strings.Split(cases[1], "|"); !slices.Equal(got, Names()) {
		problems = append(problems, "SERVICE may be "+strings.Join(got, ",")+", want "+strings.Join(Names(), ","))
	}
	stages := regexp.MustCompile(`(?m)^FROM\s+(\S+)`).FindAllStringSubmatch(df, -1)
	if len(stages) < 2 || stages[len(stages)-1][1] != "scratch" {
		problems = append(problems, "the final stage is not FROM scratch")
	}
	final := df
	if i := strings.LastIndex(df, "\nFROM "); i >= 0 {
		final = df[i:]
	}
	for _, want := range []string{
		"\nUSER 65532:65532\n",
		`ENTRYPOINT ["/usr/local/bin/service"]`,
		`org.opencontainers.image.source="` + Source + `"`,
		`org.opencontainers.image.version="${VERSION}"`,
		`org.opencontainers.image.revision="${COMMIT}"`,
		"/etc/ssl/certs/ca-certificates.crt",
	} {
		if !strings.Contains(final, want) {
			problems = append(problems, "the final stage lacks "+strings.TrimSpace(want))
		}
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", ldflags("${VERSION}", "${COMMIT}")} {
		if !strings.Contains(df, want) {
			problems = append(problems, "the build lacks "+want)
		}
	}
	return problems
}

// TestDockerfile checks that the Dockerfile builds what `make images`
// does, and that the check can fail.
func TestDockerfile(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	for _, p := range dockerfileProblems(df) {
		t.Errorf("%s: %s", dockerfile, p)
	}
	faults := map[string]string{
		"root":            strings.Replace(df, "USER 65532:65532", "USER root", 1),
		"a shell base":    strings.Replace(df, "FROM scratch", "FROM alpine:3", 1),
		"another source":  strings.Replace(df, Source, "https://example.com/fork", 1),
		"a binary less":   strings.Replace(df, "|sandbox) ;;", ") ;;", 1),
		"cgo":             strings.Replace(df, "CGO_ENABLED=0", "CGO_ENABLED=1", 1),
		"no version flag": strings.Replace(df, "buildinfo.Version", "buildinfo.Versoin", 1),
	}
	for name, broken := range faults {
		if broken == df {
			t.Errorf("fault %q changed nothing: the Dockerfile no longer has what it replaces", name)
		} else if len(dockerfileProblems(broken)) == 0 {
			t.Errorf("a Dockerfile with %s passes the check", name)
		}
	}
}
