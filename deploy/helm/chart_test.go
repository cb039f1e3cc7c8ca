package helm

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// TestRenderDecodesStrictly renders the chart with each value set and
// decodes every object into the pinned Kubernetes API types, refusing
// unknown fields, unknown kinds and duplicates.
func TestRenderDecodesStrictly(t *testing.T) {
	t.Parallel()
	for _, vs := range valueSets {
		t.Run(vs.name, func(t *testing.T) {
			t.Parallel()
			r := render(t, vs.files)
			if r.objectsTotal == 0 {
				t.Fatal("the chart rendered no object")
			}
		})
	}
}

// TestDecodeRefusesUnknownFields proves the decoder is strict: a field
// the API does not have (a typo an API server would drop) fails.
func TestDecodeRefusesUnknownFields(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, doc string
	}{
		{"unknown field", "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: x\nautomountServiceAcountToken: false\n"},
		{"field with the wrong case", "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  Name: x\n"},
		{"unknown version", "apiVersion: autoscaling/v2beta2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: x\n"},
		{"duplicate field", "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: x\n  name: y\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := decode([]byte(tt.doc)); err == nil {
				t.Errorf("decoded without error:\n%s", tt.doc)
			}
		})
	}
}

// TestEveryProcessHasItsObjects checks each process has its Deployment,
// Service, HPA (not the single-replica sandbox), PodDisruptionBudget,
// ServiceAccount and NetworkPolicy, that they select its pods, and that
// the sandbox is there only when enabled.
func TestEveryProcessHasItsObjects(t *testing.T) {
	t.Parallel()
	for _, vs := range valueSets {
		t.Run(vs.name, func(t *testing.T) {
			t.Parallel()
			r := render(t, vs.files)
			for _, p := range processes(vs.sandbox) {
				n := objName(p.name)
				d, ok := r.deployments[n]
				if !ok {
					t.Errorf("%s: no Deployment %s", p.name, n)
					continue
				}
				labels := d.Spec.Template.Labels
				if _, ok := r.accounts[n]; !ok {
					t.Errorf("%s: no ServiceAccount %s", p.name, n)
				}
				if got := d.Spec.Template.Spec.ServiceAccountName; got != n {
					t.Errorf("%s: serviceAccountName %q, want %q", p.name, got, n)
				}
				if s, ok := r.services[n]; !ok {
					t.Errorf("%s: no Service %s", p.name, n)
				} else if !selects(s.Spec.Selector, labels) {
					t.Errorf("%s: Service selector %v does not select the pods %v", p.name, s.Spec.Selector, labels)
				}
				if pdb, ok := r.pdbs[n]; !ok {
					t.Errorf("%s: no PodDisruptionBudget %s", p.name, n)
				} else if pdb.Spec.Selector == nil || !selects(pdb.Spec.Selector.MatchLabels, labels) {
					t.Errorf("%s: PodDisruptionBudget does not select the pods", p.name)
				}
				if np, ok := r.policies[n]; !ok {
					t.Errorf("%s: no NetworkPolicy %s", p.name, n)
				} else if !selects(np.Spec.PodSelector.MatchLabels, labels) {
					t.Errorf("%s: NetworkPolicy does not select the pods", p.name)
				}
				hpa, ok := r.hpas[n]
				switch {
				case p.kind == "bank":
					if ok {
						t.Errorf("%s: an HPA on the sandbox, whose state is per replica", p.name)
					}
				case !ok:
					t.Errorf("%s: no HorizontalPodAutoscaler %s", p.name, n)
				case hpa.Spec.ScaleTargetRef.Kind != "Deployment" || hpa.Spec.ScaleTargetRef.Name != n:
					t.Errorf("%s: HPA scales %s %s", p.name, hpa.Spec.ScaleTargetRef.Kind, hpa.Spec.ScaleTargetRef.Name)
				case d.Spec.Replicas != nil:
					t.Errorf("%s: Deployment sets replicas, which the HPA owns", p.name)
				}
			}
			if _, ok := r.deployments[objName("sandbox")]; ok != vs.sandbox {
				t.Errorf("sandbox Deployment rendered: %v, want %v", ok, vs.sandbox)
			}
		})
	}
}

// selects reports whether selector matches labels (and is not empty).
func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// TestContainersArePolicyCompliant checks every container of every
// Deployment: not root, read-only root filesystem, no capability, no
// privilege escalation, the RuntimeDefault seccomp profile, requests and
// limits, and the probes on /healthz and /readyz.
func TestContainersArePolicyCompliant(t *testing.T) {
	t.Parallel()
	for _, vs := range valueSets {
		t.Run(vs.name, func(t *testing.T) {
			t.Parallel()
			r := render(t, vs.files)
			if len(r.deployments) == 0 {
				t.Fatal("no Deployment rendered")
			}
			for name, d := range r.deployments {
				for _, problem := range podProblems(d) {
					t.Errorf("%s: %s", name, problem)
				}
			}
		})
	}
}

// podProblems lists what breaks the policy in d's pods.
func podProblems(d *appsv1.Deployment) []string {
	spec := d.Spec.Template.Spec
	var problems []string
	add := func(c, format string, args ...any) {
		problems = append(problems, "container "+c+": "+fmt.Sprintf(format, args...))
	}
	if spec.HostNetwork || spec.HostPID || spec.HostIPC {
		problems = append(problems, "shares a host namespace")
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		problems = append(problems, "mounts a Kubernetes API token (automountServiceAccountToken not false)")
	}
	pod := spec.SecurityContext
	if pod == nil {
		pod = &corev1.PodSecurityContext{}
	}
	containers := append(slices.Clone(spec.InitContainers), spec.Containers...)
	if len(containers) == 0 {
		problems = append(problems, "no container")
	}
	for _, c := range containers {
		sc := c.SecurityContext
		if sc == nil {
			sc = &corev1.SecurityContext{}
		}
		if !orBool(sc.RunAsNonRoot, pod.RunAsNonRoot) {
			add(c.Name, "runAsNonRoot is not true")
		}
		if uid := orInt(sc.RunAsUser, pod.RunAsUser); uid == nil || *uid == 0 {
			add(c.Name, "runAsUser is unset or 0")
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			add(c.Name, "readOnlyRootFilesystem is not true")
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			add(c.Name, "allowPrivilegeEscalation is not false")
		}
		if sc.Privileged != nil && *sc.Privileged {
			add(c.Name, "privileged")
		}
		if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
			add(c.Name, "capabilities do not drop ALL and add none: %+v", sc.Capabilities)
		}
		seccomp := sc.SeccompProfile
		if seccomp == nil {
			seccomp = pod.SeccompProfile
		}
		if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
			add(c.Name, "seccomp profile is not RuntimeDefault")
		}
		for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			if _, ok := c.Resources.Requests[res]; !ok {
				add(c.Name, "no %s request", res)
			}
			if _, ok := c.Resources.Limits[res]; !ok {
				add(c.Name, "no %s limit", res)
			}
		}
	}
	for _, c := range spec.Containers {
		problems = append(problems, probeProblems(d.Labels["app.kubernetes.io/component"], c)...)
	}
	return problems
}

// probeProblems checks c's liveness and readiness probes: /healthz and
// /readyz over HTTPS on the process's admin port.
func probeProblems(process string, c corev1.Container) []string {
	p := lookup(process)
	port, live := "admin", "/healthz"
	var problems []string
	check := func(kind string, probe *corev1.Probe, path string) {
		switch {
		case probe == nil || probe.HTTPGet == nil:
			problems = append(problems, c.Name+": no HTTP "+kind+" probe")
		case probe.HTTPGet.Path != path || probe.HTTPGet.Scheme != corev1.URISchemeHTTPS:
			problems = append(problems, fmt.Sprintf("%s: %s probe on %s %s, want HTTPS %s", c.Name, kind, probe.HTTPGet.Scheme, probe.HTTPGet.Path, path))
		case containerPort(c, probe.HTTPGet.Port) != containerPort(c, intstr.FromString(port)) || containerPort(c, probe.HTTPGet.Port) == 0:
			problems = append(problems, fmt.Sprintf("%s: %s probe on port %s, want the %s port", c.Name, kind, probe.HTTPGet.Port.String(), port))
		}
	}
	check("liveness", c.LivenessProbe, live)
	check("readiness", c.ReadinessProbe, "/readyz")
	if containerPort(c, intstr.FromString("admin")) != int32(p.adminPort) {
		problems = append(problems, fmt.Sprintf("%s: admin port %d, want %d", c.Name, containerPort(c, intstr.FromString("admin")), p.adminPort))
	}
	return problems
}

// containerPort resolves a probe's port (a number or a name) on c; 0 when
// c has no such port.
func containerPort(c corev1.Container, port intstr.IntOrString) int32 {
	for _, cp := range c.Ports {
		if (port.Type == intstr.String && cp.Name == port.StrVal) || (port.Type == intstr.Int && cp.ContainerPort == port.IntVal) {
			return cp.ContainerPort
		}
	}
	return 0
}

func orBool(a, b *bool) bool {
	if a != nil {
		return *a
	}
	return b != nil && *b
}

func orInt(a, b *int64) *int64 {
	if a != nil {
		return a
	}
	return b
}

// TestFlags checks the settings each process gets through its BANKBRIDGE_*
// variables: its listeners on its table ports, the addresses of what it
// calls (each one a port of a rendered Service), its Vault login and PKI
// role, its certificate's names, and the endpoints set in values.
func TestFlags(t *testing.T) {
	t.Parallel()
	for _, vs := range valueSets {
		t.Run(vs.name, func(t *testing.T) {
			t.Parallel()
			r := render(t, vs.files)
			production := len(vs.files) > 0
			for _, p := range processes(vs.sandbox) {
				d, ok := r.deployments[objName(p.name)]
				if !ok {
					t.Errorf("%s: no Deployment", p.name)
					continue
				}
				env := envOf(d)
				want := map[string]string{
					"BANKBRIDGE_VAULT_AUTH":     "kubernetes",
					"BANKBRIDGE_VAULT_K8S_ROLE": p.name,
					"BANKBRIDGE_TLS_PKI_ROLE":   p.name,
				}
				var absent []string
				if p.kind == "gateway" {
					want["BANKBRIDGE_ADDR"] = ":" + strconv.Itoa(p.port)
					want["BANKBRIDGE_ADMIN_ADDR"] = ":" + strconv.Itoa(p.adminPort)
					for _, callee := range p.calls {
						want["BANKBRIDGE_"+strings.ToUpper(callee)+"_ADDR"] = objName(callee) + ":" + strconv.Itoa(lookup(callee).port)
					}
					want["BANKBRIDGE_SHIPPING_HTTP_ADDR"] = objName("shipping") + ":9305"
				} else {
					want["BANKBRIDGE_GRPC_ADDR"] = ":" + strconv.Itoa(p.port)
					want["BANKBRIDGE_ADMIN_ADDR"] = ":" + strconv.Itoa(p.adminPort)
				}
				if p.consent {
					want["BANKBRIDGE_CONSENT_ADDR"] = objName("consent") + ":9101"
					want["BANKBRIDGE_CLIENT_ID"] = p.name
					want["BANKBRIDGE_CLIENT_SECRET"] = "secret:" + p.name + "-client-secret"
				} else {
					absent = append(absent, "BANKBRIDGE_CLIENT_SECRET")
					if p.kind != "gateway" { // the gateway routes to consent
						absent = append(absent, "BANKBRIDGE_CONSENT_ADDR")
					}
				}
				if p.storage {
					want["BANKBRIDGE_DATABASE_URL"] = "secret:" + p.name + "-database-url"
				} else {
					absent = append(absent, "BANKBRIDGE_DATABASE_URL")
				}
				if p.banks {
					want["BANKBRIDGE_BANKS"] = "/etc/bankbridge/banks/banks.yaml"
				} else {
					absent = append(absent, "BANKBRIDGE_BANKS")
				}
				if p.kind == "service" {
					want["BANKBRIDGE_SUBJECT_KEY"] = "secret:subject-key"
					want["BANKBRIDGE_PAGE_TOKEN_KEY"] = "secret:page-token-key"
					want["BANKBRIDGE_INTERNAL_CLIENTS"] = "balance,receipts,shipping,support"
				}
				if p.name == "support" {
					want["BANKBRIDGE_BALANCE_ADDR"] = objName("balance") + ":9102"
				}
				if p.httpPort != 0 {
					want["BANKBRIDGE_HTTP_ADDR"] = ":" + strconv.Itoa(p.httpPort)
				}
				if production {
					want["BANKBRIDGE_VAULT_ADDR"] = "https://vault.vault.svc:8200"
					want["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://otel-collector.observability.svc:4317"
					if p.bus {
						want["BANKBRIDGE_NATS_URL"] = "nats://nats.nats.svc:4222"
					}
					if p.kind == "service" {
						want["BANKBRIDGE_ISSUER"] = "https://id.example.com/"
						want["BANKBRIDGE_JWKS_URL"] = "https://id.example.com/.well-known/jwks.json"
					}
					if p.consent {
						want["BANKBRIDGE_TOKEN_URL"] = "https://id.example.com/oauth/token"
					}
				}
				if !p.bus {
					absent = append(absent, "BANKBRIDGE_NATS_URL")
				}
				for k, v := range want {
					if got, ok := env[k]; !ok {
						t.Errorf("%s: no %s (want %q)", p.name, k, v)
					} else if got != v {
						t.Errorf("%s: %s=%q, want %q", p.name, k, got, v)
					}
				}
				for _, k := range absent {
					if v, ok := env[k]; ok {
						t.Errorf("%s: %s=%q set, though %s does not need it", p.name, k, v, p.name)
					}
				}
				// Every address it dials is a port of a rendered Service.
				for k, v := range env {
					if !strings.HasSuffix(k, "_ADDR") || k == "BANKBRIDGE_VAULT_ADDR" || strings.HasPrefix(v, ":") {
						continue
					}
					if !servesAddr(r, v) {
						t.Errorf("%s: %s=%s is no port of a rendered Service", p.name, k, v)
					}
				}
				// Its certificate names its Service, which callers dial.
				hosts := strings.Split(env["BANKBRIDGE_TLS_HOSTS"], ",")
				for _, h := range []string{objName(p.name), objName(p.name) + "." + namespace + ".svc"} {
					if !slices.Contains(hosts, h) {
						t.Errorf("%s: BANKBRIDGE_TLS_HOSTS %v lacks %s", p.name, hosts, h)
					}
				}
				if img := d.Spec.Template.Spec.Containers[0].Image; !strings.HasSuffix(img, "/"+p.name+":v1.0.0") {
					t.Errorf("%s: image %s, want <registry>/%s:<appVersion>", p.name, img, p.name)
				}
			}
		})
	}
}

// envOf is the first container's environment; a value from a Secret reads
// "secret:<key>".
func envOf(d *appsv1.Deployment) map[string]string {
	env := map[string]string{}
	for _, e := range d.Spec.Template.Spec.Containers[0].Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			env[e.Name] = "secret:" + e.ValueFrom.SecretKeyRef.Key
		case e.ValueFrom != nil:
			env[e.Name] = "from:?"
		default:
			env[e.Name] = e.Value
		}
	}
	return env
}

// servesAddr reports whether host:port is a port of a rendered Service,
// whose target is a port of its pods.
func servesAddr(r *rendered, addr string) bool {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	s, ok := r.services[host]
	if !ok {
		return false
	}
	n, _ := strconv.Atoi(port)
	for _, sp := range s.Spec.Ports {
		if sp.Port == int32(n) {
			for _, d := range r.deployments {
				if selects(s.Spec.Selector, d.Spec.Template.Labels) {
					return containerPort(d.Spec.Template.Spec.Containers[0], sp.TargetPort) == int32(n)
				}
			}
		}
	}
	return false
}

// TestValuesSchemaRefusesTypos checks values.schema.json: a misspelt key,
// which Helm would otherwise ignore (leaving a default in force), fails
// the render and names the key.
func TestValuesSchemaRefusesTypos(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, values, want string
	}{
		{"top level", "natss:\n  url: nats://nats:4222\n", "natss"},
		{"a service", "services:\n  balanse:\n    replicas: 3\n", "balanse"},
		{"an egress dependency", "networkPolicy:\n  egress:\n    postgress:\n      to: []\n      ports: [{port: 5432}]\n", "postgress"},
		{"a process setting", "defaults:\n  resource:\n    limits: {cpu: '1'}\n", "resource"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := filepath.Join(t.TempDir(), "values.yaml")
			if err := os.WriteFile(f, []byte(tt.values), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := helmTemplate(t, []string{f})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("helm template with %q: error %v, want one naming %s", tt.values, err, tt.want)
			}
		})
	}
}
