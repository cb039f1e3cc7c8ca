package helm

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	kyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// The release every test renders: name and namespace, as an operator
// following docs/deploy.md would.
const (
	releaseName = "bankbridge"
	namespace   = "bankbridge"
)

// process is one process of the chart, as services/devstack/stack/table.go
// runs it: what the tests expect the chart to deploy.
type process struct {
	name                      string
	kind                      string // service, gateway or bank
	port, adminPort, httpPort int
	banks, consent, storage   bool
	bus                       bool
	calls                     []string
}

// table mirrors services/devstack/stack/table.go (ports, needs, calls); the
// gateway calls every service.
var table = []process{
	{name: "consent", kind: "service", port: 9101, adminPort: 9201, banks: true, storage: true, bus: true},
	{name: "balance", kind: "service", port: 9102, adminPort: 9202, banks: true, consent: true},
	{name: "receipts", kind: "service", port: 9103, adminPort: 9203, banks: true, consent: true, storage: true, bus: true},
	{name: "shipping", kind: "service", port: 9105, adminPort: 9205, httpPort: 9305, consent: true, storage: true, bus: true},
	{name: "support", kind: "service", port: 9104, adminPort: 9204, banks: true, consent: true, storage: true, bus: true, calls: []string{"balance"}},
	{name: "webhooks", kind: "service", port: 9106, adminPort: 9206, storage: true, bus: true},
	{name: "gateway", kind: "gateway", port: 8080, adminPort: 9200, calls: []string{"consent", "balance", "receipts", "shipping", "support", "webhooks"}},
	{name: "sandbox", kind: "bank", port: 9400, adminPort: 9401},
}

// processes is the table less the sandbox unless it is enabled.
func processes(sandbox bool) []process {
	var out []process
	for _, p := range table {
		if p.name != "sandbox" || sandbox {
			out = append(out, p)
		}
	}
	return out
}

func lookup(name string) process {
	for _, p := range table {
		if p.name == name {
			return p
		}
	}
	panic("no process " + name)
}

// objName is the name of a process's objects in the release.
func objName(process string) string { return releaseName + "-" + process }

// valueSets are the values the chart is rendered with: its defaults, an
// operator's production values, and staging on top (the sandbox).
var valueSets = []struct {
	name    string
	files   []string
	sandbox bool
}{
	{name: "defaults"},
	{name: "production", files: []string{"examples/production.yaml"}},
	{name: "staging", files: []string{"examples/production.yaml", "examples/staging.yaml"}, sandbox: true},
}

// rendered is a rendered chart, every object decoded into its API type.
type rendered struct {
	deployments  map[string]*appsv1.Deployment
	services     map[string]*corev1.Service
	accounts     map[string]*corev1.ServiceAccount
	hpas         map[string]*autoscalingv2.HorizontalPodAutoscaler
	pdbs         map[string]*policyv1.PodDisruptionBudget
	policies     map[string]*networkingv1.NetworkPolicy
	configMaps   map[string]*corev1.ConfigMap
	objectsTotal int
}

// repoRoot is the directory holding go.work.
func repoRoot(t testing.TB) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir
		}
		if filepath.Dir(dir) == dir {
			t.Fatalf("no go.work above %s", wd)
		}
	}
}

// tool finds a pinned binary: $env, or bin/<name> at the repository's root.
// A missing one fails the test, saying how to build it.
func tool(t testing.TB, env, name, target string) string {
	t.Helper()
	if bin := os.Getenv(env); bin != "" {
		return bin
	}
	bin := filepath.Join(repoRoot(t), "bin", name)
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("no %s at %s: build it with `make %s` (or set %s)", name, bin, target, env)
	}
	return bin
}

// helmTemplate runs the pinned helm template on the chart with the values
// files (relative to this directory) and extra arguments, and returns its
// output.
func helmTemplate(t testing.TB, files []string, extra ...string) ([]byte, error) {
	t.Helper()
	args := []string{"template", releaseName, "./bankbridge", "--namespace", namespace}
	for _, f := range files {
		args = append(args, "--values", f)
	}
	cmd := exec.Command(tool(t, "BANKBRIDGE_HELM_BIN", "helm", "helm"), append(args, extra...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, errors.New(err.Error() + ": " + stderr.String())
	}
	return out, nil
}

// render renders the chart and decodes every object strictly, failing the
// test on any error.
func render(t testing.TB, files []string, extra ...string) *rendered {
	t.Helper()
	out, err := helmTemplate(t, files, extra...)
	if err != nil {
		t.Fatalf("helm template: %v", err)
	}
	r, err := decode(out)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// decoder decodes YAML into the API types of the pinned k8s.io/api,
// strictly: an unknown or duplicated field, or an unknown kind or version,
// is an error.
func decoder() *kjson.Serializer {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, autoscalingv2.AddToScheme,
		policyv1.AddToScheme, networkingv1.AddToScheme,
	} {
		if err := add(scheme); err != nil {
			panic(err)
		}
	}
	return kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme, scheme,
		kjson.SerializerOptions{Yaml: true, Strict: true})
}

// decode splits helm's output into documents and decodes each.
func decode(out []byte) (*rendered, error) {
	r := &rendered{
		deployments: map[string]*appsv1.Deployment{},
		services:    map[string]*corev1.Service{},
		accounts:    map[string]*corev1.ServiceAccount{},
		hpas:        map[string]*autoscalingv2.HorizontalPodAutoscaler{},
		pdbs:        map[string]*policyv1.PodDisruptionBudget{},
		policies:    map[string]*networkingv1.NetworkPolicy{},
		configMaps:  map[string]*corev1.ConfigMap{},
	}
	dec := decoder()
	reader := kyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(out)))
	var errs []error
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if empty(doc) {
			continue
		}
		obj, gvk, err := dec.Decode(doc, nil, nil)
		if err != nil {
			errs = append(errs, errors.New(err.Error()+" in:\n"+head(doc)))
			continue
		}
		r.objectsTotal++
		var dup bool
		switch o := obj.(type) {
		case *appsv1.Deployment:
			dup = put(r.deployments, o.Name, o)
		case *corev1.Service:
			dup = put(r.services, o.Name, o)
		case *corev1.ServiceAccount:
			dup = put(r.accounts, o.Name, o)
		case *autoscalingv2.HorizontalPodAutoscaler:
			dup = put(r.hpas, o.Name, o)
		case *policyv1.PodDisruptionBudget:
			dup = put(r.pdbs, o.Name, o)
		case *networkingv1.NetworkPolicy:
			dup = put(r.policies, o.Name, o)
		case *corev1.ConfigMap:
			dup = put(r.configMaps, o.Name, o)
		default:
			errs = append(errs, errors.New("unexpected kind "+gvk.String()))
		}
		if dup {
			errs = append(errs, errors.New("two objects of kind "+gvk.Kind+" with one name in:\n"+head(doc)))
		}
	}
	return r, errors.Join(errs...)
}

func put[T any](m map[string]T, name string, v T) (dup bool) {
	_, dup = m[name]
	m[name] = v
	return dup
}

// empty reports whether a document holds only comments and blank lines.
func empty(doc []byte) bool {
	for line := range strings.SplitSeq(string(doc), "\n") {
		if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "#") && l != "---" {
			return false
		}
	}
	return true
}

// head is the start of a document, to name it in a failure.
func head(doc []byte) string {
	if len(doc) > 400 {
		return string(doc[:400]) + "..."
	}
	return string(doc)
}
