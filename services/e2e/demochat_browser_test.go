package e2e

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/bankbridge/bankbridge/adapters/sandbox"
	"github.com/bankbridge/bankbridge/services/devstack/stack"
)

// TestDemoChatBrowser runs tests/demochat (story.mjs) against the stack's
// demo chat: Debian's Chromium, headless, driven by playwright-core, plays
// the whole story of the demo as a person would through the page (pick
// alice, link with the two-factor code typed in the chat, balance,
// transactions, a partner's receipt, a parcel moving live, a fraud alert
// answered, the bank's agent taking over and handing back, the access log
// with its chain intact, revocation and the refusal after it), saves a
// screenshot after every step and runs axe-core on the page. It fails when
// the page shows the wrong thing, asks for anything outside its origin,
// breaks its Content-Security-Policy, throws, or has a serious or critical
// accessibility violation.
//
// It needs node and npm (else it skips, unless BANKBRIDGE_REQUIRE_NODE=1)
// and Chromium at /usr/bin/chromium, or BANKBRIDGE_CHROMIUM (else it skips,
// unless BANKBRIDGE_REQUIRE_BROWSER=1). npm ci installs the pinned packages
// (package-lock.json), from npm's cache when it holds them. The screenshots
// go to tests/demochat/screenshots, or BANKBRIDGE_SCREENSHOTS_DIR.
func TestDemoChatBrowser(t *testing.T) {
	node, nodeErr := exec.LookPath("node")
	npm, npmErr := exec.LookPath("npm")
	if nodeErr != nil || npmErr != nil {
		if os.Getenv("BANKBRIDGE_REQUIRE_NODE") == "1" {
			t.Fatalf("BANKBRIDGE_REQUIRE_NODE=1 but node or npm is missing: %v %v", nodeErr, npmErr)
		}
		t.Skip("node and npm are not installed; BANKBRIDGE_REQUIRE_NODE=1 makes this a failure")
	}
	browser := os.Getenv("BANKBRIDGE_CHROMIUM")
	if browser == "" {
		browser = "/usr/bin/chromium"
	}
	if _, err := os.Stat(browser); err != nil {
		if os.Getenv("BANKBRIDGE_REQUIRE_BROWSER") == "1" {
			t.Fatalf("BANKBRIDGE_REQUIRE_BROWSER=1 but Chromium is missing (apt-get install chromium): %v", err)
		}
		t.Skipf("Chromium is not installed at %s (apt-get install chromium); BANKBRIDGE_REQUIRE_BROWSER=1 makes this a failure", browser)
	}
	addr := shared.stack.Addr("demochat")
	if addr == "" {
		t.Fatal("the stack runs no demochat process")
	}
	wd, _ := os.Getwd()
	root, err := stack.FindRoot(wd)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "tests", "demochat")
	shots := os.Getenv("BANKBRIDGE_SCREENSHOTS_DIR")
	if shots == "" {
		shots = filepath.Join(dir, "screenshots")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	install := exec.CommandContext(ctx, npm, "ci", "--prefer-offline", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error")
	install.Dir = dir
	// playwright-core downloads no browser; this makes sure nothing tries.
	install.Env = append(os.Environ(), "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1")
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("npm ci in %s: %v\n%s", dir, err, out)
	}
	run := exec.CommandContext(ctx, node, "story.mjs")
	run.Dir = dir
	run.Env = append(os.Environ(),
		"BANKBRIDGE_DEMOCHAT_URL=http://"+addr+"/",
		// alice: the sandbox customer with card payments, which the
		// partner's receipt matches.
		"BANKBRIDGE_DEMOCHAT_USER=alice",
		"BANKBRIDGE_SCA_CODE="+sandbox.Code,
		"BANKBRIDGE_SCREENSHOTS_DIR="+shots,
		"BANKBRIDGE_CHROMIUM="+browser,
	)
	start := time.Now()
	out, err := run.CombinedOutput()
	t.Logf("node story.mjs (%s):\n%s", time.Since(start).Round(100*time.Millisecond), out)
	if ctx.Err() != nil {
		t.Fatalf("the story did not finish in time: %v", ctx.Err())
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		t.Fatalf("the story failed (exit %d); screenshots in %s", exit.ExitCode(), shots)
	}
	if err != nil {
		t.Fatalf("node story.mjs: %v", err)
	}
	pngs, _ := filepath.Glob(filepath.Join(shots, "[0-9][0-9]-*.png"))
	if len(pngs) < 15 {
		t.Fatalf("the story saved %d screenshots in %s, want one per step", len(pngs), shots)
	}
}
