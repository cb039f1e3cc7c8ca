package bootstrap

import (
	"runtime/debug"
)

// Version, when set at link time, is the build version every binary
// reports (telemetry's service.version, the start-up log line):
//
//	go build -ldflags "-X github.com/bankbridge/bankbridge/services/platform/bootstrap.Version=v1.4.0" ./balance
//
// Left empty, the version comes from the build info. It is the one
// package-level variable of the kit, because -X can only set one.
var Version string

// BuildVersion is Version when set, otherwise the main module's version
// from the build info (a tag, or a pseudo-version with the commit), or the
// VCS revision ("+dirty" when the tree had changes), or "(devel)".
func BuildVersion() string {
	if Version != "" {
		return Version
	}
	info, _ := debug.ReadBuildInfo()
	return versionOf(info)
}

func versionOf(info *debug.BuildInfo) string {
	if info == nil {
		return "(unknown)"
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var revision, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	switch {
	case revision == "":
		return "(devel)"
	case modified == "true":
		return revision + "+dirty"
	default:
		return revision
	}
}
