package bootstrap

import (
	"context"
	"errors"
	"flag"
	"strings"
	"testing"

	"github.com/bankbridge/bankbridge/services/platform/buildinfo"
)

// TestMainVersion checks what a person running `balance --version` sees:
// the build's line on stdout and exit 0, without the binary starting;
// anywhere among the flags, but not after "--"; and that Main's other exit
// codes are unchanged.
func TestMainVersion(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	tests := []struct {
		name       string
		args       []string
		runErr     error
		wantCode   int
		wantRun    bool
		wantStdout string
		wantStderr string
	}{
		{name: "--version", args: []string{"--version"}, wantStdout: buildinfo.Read().Line("balance") + "\n"},
		{name: "-version among flags", args: []string{"--log-level=DEBUG", "-version"}, wantStdout: buildinfo.Read().Line("balance") + "\n"},
		{name: "--version=true", args: []string{"--version=true"}, wantStdout: buildinfo.Read().Line("balance") + "\n"},
		{name: "after --, an argument", args: []string{"--", "--version"}, wantRun: true},
		{name: "no flags", args: nil, wantRun: true},
		{name: "-h", args: []string{"-h"}, runErr: flag.ErrHelp, wantCode: 2, wantRun: true},
		{name: "a failure", args: nil, runErr: boom, wantCode: 1, wantRun: true, wantStderr: "balance: boom\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr strings.Builder
			ran := false
			code := mainCode(t.Context(), "balance", tt.args, &stdout, &stderr, func(context.Context, []string) error {
				ran = true
				return tt.runErr
			})
			if code != tt.wantCode || ran != tt.wantRun || stdout.String() != tt.wantStdout || stderr.String() != tt.wantStderr {
				t.Errorf("exit %d, ran %v, stdout %q, stderr %q; want exit %d, ran %v, stdout %q, stderr %q",
					code, ran, stdout.String(), stderr.String(), tt.wantCode, tt.wantRun, tt.wantStdout, tt.wantStderr)
			}
		})
	}
	if line := buildinfo.Read().Line("balance"); !strings.HasPrefix(line, "bankbridge-balance ") || !strings.Contains(line, "(commit ") {
		t.Errorf("the version line %q does not name the binary and its commit", line)
	}
}
