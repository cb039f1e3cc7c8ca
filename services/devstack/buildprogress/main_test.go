package main

import (
	"crypto/rand"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// fakeModule writes a module of three packages (main imports a, a imports
// b) with a fresh constant in each, so Go's build cache holds none of them
// and the build compiles all three, as the first `make vault` compiles all
// of Vault's. body is b's function body.
func fakeModule(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	salt := rand.Text()
	files := map[string]string{
		"go.mod":  "module example.com/fake\n\ngo 1.26\n",
		"main.go": "package main\n\nimport \"example.com/fake/a\"\n\nconst salt = \"" + salt + "\"\n\nfunc main() { println(a.A(), salt) }\n",
		"a/a.go":  "package a\n\nimport \"example.com/fake/b\"\n\nconst salt = \"" + salt + "\"\n\nfunc A() int { return b.B() + len(salt) }\n",
		"b/b.go":  "package b\n\nconst salt = \"" + salt + "\"\n\nfunc B() int { " + body + " }\n",
	}
	for name, text := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestProgress builds a fresh module and checks what a person waiting for
// `make vault` reads: how many packages are to compile, one line per
// compiled package (-every 0) counting up to all of them with the time
// expected and the next step, a line saying it links, and a last line
// saying it is done; and that the binary was written.
func TestProgress(t *testing.T) {
	t.Parallel()
	dir := fakeModule(t, "return len(salt)")
	out := filepath.Join(t.TempDir(), "fake")
	var log strings.Builder
	err := run(t.Context(), []string{"-C", dir, "-o", out, "-label", "fake", "-what", "building the fake server",
		"-next", "start the dev stack", "-expect", "10m", "-every", "0", "."}, &log)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, log.String())
	}
	text := log.String()

	// The cache may also lack some of the standard library's packages
	// (a cold CI machine): they count too, so the total is at least ours,
	// a and b (main is the link, not counted).
	m := regexp.MustCompile(`(?m)^\[fake\] building the fake server: ([0-9,]+) of its ([0-9,]+) packages to compile .*; expect ~\S+ on two idle cores$`).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no line saying how many packages are to compile:\n%s", text)
	}
	total := atoi(t, m[1])
	if total < 2 || total >= atoi(t, m[2]) {
		t.Fatalf("%d of %s packages to compile, want at least the module's a and b, and fewer than all:\n%s", total, m[2], text)
	}
	progress := regexp.MustCompile(`(?m)^\[fake\] building the fake server: ([0-9,]+)/`+m[1]+` packages \(\d+%\), (linking, )?\S+ elapsed of ~\S+ expected; next: start the dev stack$`).FindAllStringSubmatch(text, -1)
	if len(progress) != total+1 {
		t.Fatalf("%d progress lines, want one per compiled package (%d) and one as main compiles:\n%s", len(progress), total, text)
	}
	for i, p := range progress {
		if atoi(t, p[1]) != min(i+1, total) {
			t.Fatalf("progress line %d counts %s packages, want %d:\n%s", i+1, p[1], min(i+1, total), text)
		}
	}
	if last := progress[len(progress)-1][0]; !strings.Contains(last, "(100%), linking,") {
		t.Errorf("the last progress line %q does not say all are compiled and it is linking", last)
	}
	if !regexp.MustCompile(`(?m)^\[fake\] building the fake server: done, ` + m[1] + ` packages compiled in \S+; next: start the dev stack$`).MatchString(text) {
		t.Errorf("no last line saying it is done and what is next:\n%s", text)
	}
	if _, err := os.Stat(out); err != nil {
		t.Errorf("the binary was not written: %v", err)
	}
}

// TestProgressCached builds a module whose packages Go's build cache
// already holds, as a second `make vault` after a change to go.mod that
// left the packages alone: nothing to compile, only the link, said so.
func TestProgressCached(t *testing.T) {
	t.Parallel()
	dir := fakeModule(t, "return len(salt)")
	args := []string{"-C", dir, "-o", filepath.Join(t.TempDir(), "fake"), "-label", "fake",
		"-what", "building the fake server", "-expect", "10m", "-link", "1m", "-every", "0", "."}
	var first, second strings.Builder
	if err := run(t.Context(), args, &first); err != nil {
		t.Fatalf("first build: %v\n%s", err, first.String())
	}
	if err := run(t.Context(), args, &second); err != nil {
		t.Fatalf("second build: %v\n%s", err, second.String())
	}
	text := second.String()
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^\[fake\] building the fake server: nothing to compile, all [0-9,]+ packages are in Go's build cache; linking; expect ~1m0s on two idle cores$`),
		regexp.MustCompile(`(?m)^\[fake\] building the fake server: done, 0 packages compiled in \S+$`),
	} {
		if !want.MatchString(text) {
			t.Errorf("the cached build's output does not match %s:\n%s", want, text)
		}
	}
}

// TestProgressFailure checks that a build that fails says so: the
// compiler's error reaches the output, the progress ends on a failure line,
// and run returns go's exit status (make stops on it).
func TestProgressFailure(t *testing.T) {
	t.Parallel()
	dir := fakeModule(t, "return notDeclared")
	var log strings.Builder
	err := run(t.Context(), []string{"-C", dir, "-o", filepath.Join(t.TempDir(), "fake"), "-label", "fake",
		"-what", "building the fake server", "-every", "0", "."}, &log)
	ee, ok := errors.AsType[*exec.ExitError](err)
	if !ok || ee.ExitCode() == 0 {
		t.Fatalf("run returned %v, want go build's non-zero exit status\n%s", err, log.String())
	}
	text := log.String()
	for _, want := range []string{"undefined: notDeclared", "# example.com/fake/b", "[fake] building the fake server: failed after "} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(strings.ReplaceAll(s, ",", ""))
	if err != nil {
		t.Fatal(err)
	}
	return n
}
