package buildinfo

import (
	"runtime/debug"
	"testing"
)

func TestFrom(t *testing.T) {
	t.Parallel()
	vcs := func(rev, modified string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: modified}}
	}
	const rev = "a9b92367d311f00dfeedbeef0123456789abcdef"
	tests := []struct {
		name            string
		version, commit string // set at link time
		bi              *debug.BuildInfo
		want            string // Line("balance")
	}{
		{"set at link time", "v1.0.0", "a9b92367d311",
			&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.0.0-20261128024700-ffffffffffff"}, Settings: vcs("ffffffffffff", "true")},
			"bankbridge-balance v1.0.0 (commit a9b92367d311, go1.26.8)"},
		{"a tagged module", "", "",
			&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.4.0"}, Settings: vcs(rev, "false")},
			"bankbridge-balance v1.4.0 (commit a9b92367d311, go1.26.8)"},
		{"a checkout with changes", "", "",
			&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.0.0-20261128024700-a9b92367d311+dirty"}, Settings: vcs(rev, "true")},
			"bankbridge-balance v0.0.0-20261128024700-a9b92367d311+dirty (commit a9b92367d311-dirty, go1.26.8)"},
		{"only the version set", "v1.0.1", "",
			&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: vcs(rev, "false")},
			"bankbridge-balance v1.0.1 (commit a9b92367d311, go1.26.8)"},
		{"nothing known", "", "",
			&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}},
			"bankbridge-balance (devel) (commit unknown, go1.26.8)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := from(tt.version, tt.commit, tt.bi).Line("balance"); got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestFromNoBuildInfo(t *testing.T) {
	t.Parallel()
	got := from("", "", nil)
	if got.Version != "(devel)" || got.Commit != "unknown" || got.Go == "" {
		t.Errorf("got %+v, want (devel), unknown and the running Go", got)
	}
}
