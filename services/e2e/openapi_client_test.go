package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/bankbridge/bankbridge/adapters/sandbox"
	"github.com/bankbridge/bankbridge/services/devstack/stack"
)

// TestGeneratedOpenAPIClient runs tests/openapi (run.mjs) against the
// stack: it validates the document the gateway serves with a real
// validator, generates a client from it with a real generator from npm,
// and with that client alone links the sandbox bank (create, then :verify
// with the sandbox's code), lists accounts, reads a balance and pages
// transactions. Node.js and npm must be installed; without them the test
// skips, unless BANKBRIDGE_REQUIRE_NODE=1 (CI), which makes it fail. npm ci
// installs the pinned packages (package-lock.json) from the registry.
func TestGeneratedOpenAPIClient(t *testing.T) {
	node, nodeErr := exec.LookPath("node")
	npm, npmErr := exec.LookPath("npm")
	if nodeErr != nil || npmErr != nil {
		if os.Getenv("BANKBRIDGE_REQUIRE_NODE") == "1" {
			t.Fatalf("BANKBRIDGE_REQUIRE_NODE=1 but node or npm is missing: %v %v", nodeErr, npmErr)
		}
		t.Skip("node and npm are not installed; BANKBRIDGE_REQUIRE_NODE=1 makes this a failure")
	}
	wd, _ := os.Getwd()
	root, err := stack.FindRoot(wd)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "tests", "openapi")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	install := exec.CommandContext(ctx, npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error")
	install.Dir = dir
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("npm ci in %s: %v\n%s", dir, err, out)
	}
	// A user of its own, logging in to the sandbox as alice: a user holds
	// one VALID link per bank, and other tests link alice.
	const user = "openapi-client"
	run := exec.CommandContext(ctx, node, "run.mjs")
	run.Dir = dir
	run.Env = append(os.Environ(),
		"BANKBRIDGE_GATEWAY_URL="+shared.stack.GatewayURL,
		"NODE_EXTRA_CA_CERTS="+shared.stack.CAFile,
		"BANKBRIDGE_TOKEN="+devToken(t, user),
		"BANKBRIDGE_USER="+user,
		"BANKBRIDGE_BANK_LOGIN=alice",
		"BANKBRIDGE_SCA_CODE="+sandbox.Code,
	)
	out, err := run.CombinedOutput()
	t.Logf("node run.mjs:\n%s", out)
	if err != nil {
		t.Fatalf("the generated client's run failed: %v", err)
	}
}
