// Package buildinfo says which build of bankbridge a binary is: its
// release version and source commit, reported by every binary's --version
// flag, its start-up log line, its telemetry (service.version) and the
// bankbridge_build_info metric.
//
// A release sets both at link time (the Makefile and the image builds do):
//
//	go build -ldflags "-X github.com/bankbridge/bankbridge/services/platform/buildinfo.Version=v1.0.0 \
//	  -X github.com/bankbridge/bankbridge/services/platform/buildinfo.Commit=a9b92367d311" ./balance
//
// A plain `go build` or `go run` leaves them empty, and Read falls back to
// what Go stamps into every binary: the main module's version and the VCS
// revision.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Version is the release version, such as v1.0.0, set at link time (-X).
// It and Commit are the only package-level variables the kit has, because
// -X sets nothing else.
var Version string

// Commit is the source commit, set at link time (-X) beside Version.
var Commit string

// Info is what a binary says about its build.
type Info struct {
	// Version is the release version (Version), or the main module's
	// version from the build info: a tag, or a pseudo-version such as
	// v0.0.0-20261128024700-a9b92367d311+dirty when built from a checkout;
	// "(devel)" when Go knew none.
	Version string
	// Commit is the source commit (Commit), or the build info's
	// vcs.revision shortened to 12 characters, with "-dirty" when the tree
	// had uncommitted changes; "unknown" when neither is known.
	Commit string
	// Go is the Go release that built the binary, such as go1.26.8.
	Go string
}

// Read returns this binary's Info.
func Read() Info {
	bi, _ := debug.ReadBuildInfo()
	return from(Version, Commit, bi)
}

// from is Read with the link-time values and the build info given.
func from(version, commit string, bi *debug.BuildInfo) Info {
	info := Info{Version: version, Commit: commit, Go: runtime.Version()}
	if bi == nil {
		bi = &debug.BuildInfo{}
	} else if bi.GoVersion != "" {
		info.Go = bi.GoVersion
	}
	if info.Version == "" {
		info.Version = bi.Main.Version
		if info.Version == "" {
			info.Version = "(devel)"
		}
	}
	if info.Commit == "" {
		var revision, modified string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				revision = s.Value
			case "vcs.modified":
				modified = s.Value
			}
		}
		switch {
		case revision == "":
			info.Commit = "unknown"
		case modified == "true":
			info.Commit = short(revision) + "-dirty"
		default:
			info.Commit = short(revision)
		}
	}
	return info
}

// short is a git revision cut to 12 characters, as git rev-parse
// --short=12 prints it.
func short(revision string) string {
	if len(revision) > 12 {
		return revision[:12]
	}
	return revision
}

// Line is what `<binary> --version` prints for the binary named name
// (balance, gateway, ...):
//
//	bankbridge-balance v1.0.0 (commit a9b92367d311, go1.26.8)
func (i Info) Line(name string) string {
	return fmt.Sprintf("bankbridge-%s %s (commit %s, %s)", name, i.Version, i.Commit, i.Go)
}
