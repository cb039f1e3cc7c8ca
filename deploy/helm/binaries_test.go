package helm

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestBinariesTakeTheChartsSettings builds the real binaries
// (services/<name>, as make images does) and checks the chart's settings
// against them, rendered with the production values (and staging, for
// the sandbox): every BANKBRIDGE_* variable a pod gets is one of its
// binary's flags (an unknown one would be ignored silently), and the
// binary, started with that environment, accepts its configuration and
// starts (it then stops at its Vault login, which needs a cluster).
func TestBinariesTakeTheChartsSettings(t *testing.T) {
	t.Parallel()
	r := render(t, []string{"examples/production.yaml", "examples/staging.yaml"})
	bins := t.TempDir()
	var pkgs []string
	for _, p := range processes(true) {
		pkgs = append(pkgs, "./"+p.name)
	}
	build := exec.Command("go", append([]string{"build", "-o", bins + "/"}, pkgs...)...)
	build.Dir = filepath.Join(repoRoot(t), "services")
	build.Env = append(os.Environ(), "GOWORK=off")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build %v: %v\n%s", pkgs, err, out)
	}
	files := t.TempDir()
	banks := filepath.Join(files, "banks.yaml")
	cm := r.configMaps[releaseName+"-banks"]
	if cm == nil {
		t.Fatal("no banks ConfigMap")
	}
	for name, content := range cm.Data {
		if err := os.WriteFile(filepath.Join(files, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	apiKey := filepath.Join(files, "api-key")
	if err := os.WriteFile(apiKey, []byte("test-only-api-key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	flagLine := regexp.MustCompile(`(?m)^\s+-([a-z0-9-]+)`)

	for _, p := range processes(true) {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			bin := filepath.Join(bins, p.name)
			help, _ := exec.Command(bin, "-h").CombinedOutput() // -h exits non-zero
			flags := map[string]bool{}
			for _, m := range flagLine.FindAllStringSubmatch(string(help), -1) {
				flags[m[1]] = true
			}
			if len(flags) == 0 {
				t.Fatalf("%s -h lists no flag:\n%s", p.name, help)
			}
			d := r.deployments[objName(p.name)]
			if d == nil {
				t.Fatalf("no Deployment %s", objName(p.name))
			}
			var env []string
			for k, v := range envOf(d) {
				if name, ok := strings.CutPrefix(k, "BANKBRIDGE_"); ok {
					flag := strings.ReplaceAll(strings.ToLower(name), "_", "-")
					if !flags[flag] {
						t.Errorf("%s=%s: %s has no flag --%s", k, v, p.name, flag)
					}
				}
				// What the pod reads from its Secret and volumes, here
				// from test files and values.
				switch {
				case strings.HasPrefix(v, "secret:") && strings.HasSuffix(v, "database-url"):
					v = "postgres://bankbridge@127.0.0.1:1/" + p.name + "?sslmode=disable"
				case strings.HasPrefix(v, "secret:"):
					v = strings.Repeat("k", 32)
				case k == "BANKBRIDGE_BANKS":
					v = banks
				case k == "BANKBRIDGE_API_KEY_FILE":
					v = apiKey
				case k == "BANKBRIDGE_VAULT_CACERT":
					continue // the ConfigMap's CA is the operator's
				case strings.HasSuffix(k, "_ADDR") && strings.HasPrefix(v, ":"):
					v = "127.0.0.1:0" // this machine's ports are shared
				}
				env = append(env, k+"="+v)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin)
			cmd.Env = append(cleanEnv(), env...)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			_ = cmd.Run() // it stops at its Vault login, or is stopped
			if !strings.Contains(out.String(), `"msg":"starting"`) {
				t.Fatalf("%s refused the chart's configuration:\n%s", p.name, out.String())
			}
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			t.Logf("%s started, then: %s", p.name, lines[len(lines)-1])
		})
	}
}

// cleanEnv is the test's environment without BANKBRIDGE_* and OTEL_*
// variables, which would add settings the chart does not give.
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "BANKBRIDGE_") && !strings.HasPrefix(kv, "OTEL_") {
			out = append(out, kv)
		}
	}
	return out
}
