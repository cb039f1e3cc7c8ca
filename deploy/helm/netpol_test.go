package helm

import (
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"strconv"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	kyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// peerValues are the NetworkPolicy peers of a values file.
type peerValues struct {
	NetworkPolicy struct {
		GatewayFrom []networkingv1.NetworkPolicyPeer `json:"gatewayFrom"`
		MetricsFrom []networkingv1.NetworkPolicyPeer `json:"metricsFrom"`
		DNS         struct {
			To []networkingv1.NetworkPolicyPeer `json:"to"`
		} `json:"dns"`
		Egress map[string]struct {
			To []networkingv1.NetworkPolicyPeer `json:"to"`
		} `json:"egress"`
	} `json:"networkPolicy"`
}

// readPeers reads the peers of the chart's values with files on top.
func readPeers(t *testing.T, files []string) map[string][]networkingv1.NetworkPolicyPeer {
	t.Helper()
	peers := map[string][]networkingv1.NetworkPolicyPeer{}
	for _, f := range append([]string{"bankbridge/values.yaml"}, files...) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		js, err := kyaml.ToJSON(data)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		var v peerValues
		if err := json.Unmarshal(js, &v); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		np := v.NetworkPolicy
		set := func(name string, p []networkingv1.NetworkPolicyPeer) {
			if p != nil {
				peers[name] = p
			}
		}
		set("gatewayFrom", np.GatewayFrom)
		set("metricsFrom", np.MetricsFrom)
		set("dns", np.DNS.To)
		for name, e := range np.Egress {
			set(name, e.To)
		}
	}
	return peers
}

// TestNetworkPolicies checks the release denies by default and that each
// process takes connections only from the processes that call it (the
// gateway and the table's callers), and connects only to what it uses:
// DNS, Vault, the OTLP collector, and, as its needs say, the identity
// provider, PostgreSQL, NATS, Redis, its banks, the consent service, the
// services it calls, webhook endpoints.
func TestNetworkPolicies(t *testing.T) {
	t.Parallel()
	for _, vs := range valueSets {
		t.Run(vs.name, func(t *testing.T) {
			t.Parallel()
			r := render(t, vs.files)
			peers := readPeers(t, vs.files)
			production := len(vs.files) > 0

			deny, ok := r.policies[releaseName+"-default-deny"]
			switch {
			case !ok:
				t.Error("no default-deny NetworkPolicy")
			case len(deny.Spec.Ingress) > 0 || len(deny.Spec.Egress) > 0 ||
				!slices.Equal(deny.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}):
				t.Errorf("default deny allows something or is not for both directions: %+v", deny.Spec)
			default:
				for name, d := range r.deployments {
					if !selects(deny.Spec.PodSelector.MatchLabels, d.Spec.Template.Labels) {
						t.Errorf("default deny does not select %s's pods", name)
					}
				}
			}

			for _, p := range processes(vs.sandbox) {
				np, ok := r.policies[objName(p.name)]
				if !ok {
					t.Errorf("%s: no NetworkPolicy", p.name)
					continue
				}
				if !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) || !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) {
					t.Errorf("%s: policy types %v, want Ingress and Egress", p.name, np.Spec.PolicyTypes)
				}
				gotIn, gotOut := ingressOf(t, p.name, np, peers), egressOf(t, p.name, np, peers)
				wantIn, wantOut := expectedTraffic(p, vs.sandbox, production)
				if !sameSet(gotIn, wantIn) {
					t.Errorf("%s: ingress from %v, want %v", p.name, gotIn, wantIn)
				}
				if !sameSet(gotOut, wantOut) {
					t.Errorf("%s: egress to %v, want %v", p.name, gotOut, wantOut)
				}
			}
		})
	}
}

// expectedTraffic is what p's policy should allow, as "peer@port" strings:
// a process of the release is "pod:<name>", a peer from values its key.
func expectedTraffic(p process, sandbox, production bool) (in, out []string) {
	at := func(peer string, port int) string { return peer + "@" + strconv.Itoa(port) }
	// Ingress: the gateway from the ingress controller; a process from
	// the ones that call it.
	if p.kind == "gateway" {
		in = append(in, at("gatewayFrom", p.port))
	}
	for _, q := range processes(sandbox) {
		if slices.Contains(q.calls, p.name) || (p.name == "consent" && q.consent) || (p.kind == "bank" && q.banks) {
			in = append(in, at("pod:"+q.name, p.port))
		}
	}
	if p.httpPort != 0 {
		in = append(in, at("pod:gateway", p.httpPort))
	}
	if production && p.adminPort != 0 {
		in = append(in, at("metricsFrom", p.adminPort))
	}
	// Egress.
	out = append(out, at("dns", 53), at("dns", 53)) // UDP and TCP
	if production {
		out = append(out, at("vault", 8200), at("otlp", 4317))
		if p.kind == "service" {
			out = append(out, at("identity", 443), at("redis", 6379))
		}
		if p.storage {
			out = append(out, at("postgres", 5432))
		}
		if p.bus {
			out = append(out, at("nats", 4222))
		}
		if p.banks {
			out = append(out, at("banks", 443))
		}
		if p.name == "webhooks" {
			out = append(out, at("webhooks", 443))
		}
	}
	callees := slices.Clone(p.calls)
	if p.consent {
		callees = append(callees, "consent")
	}
	if p.banks && sandbox {
		callees = append(callees, "sandbox")
	}
	for _, c := range callees {
		q := lookup(c)
		out = append(out, at("pod:"+c, q.port))
		if p.kind == "gateway" && q.httpPort != 0 {
			out = append(out, at("pod:"+c, q.httpPort))
		}
	}
	return in, out
}

// ingressOf lists np's ingress rules as "peer@port"; a rule open to every
// source fails the test.
func ingressOf(t *testing.T, process string, np *networkingv1.NetworkPolicy, peers map[string][]networkingv1.NetworkPolicyPeer) []string {
	t.Helper()
	var out []string
	for _, rule := range np.Spec.Ingress {
		if len(rule.From) == 0 || len(rule.Ports) == 0 {
			t.Errorf("%s: an ingress rule open to every source or port: %+v", process, rule)
			continue
		}
		for _, src := range classify(rule.From, peers) {
			out = append(out, withPorts(src, rule.Ports)...)
		}
	}
	return out
}

// egressOf lists np's egress rules as "peer@port"; a rule open to every
// destination fails the test.
func egressOf(t *testing.T, process string, np *networkingv1.NetworkPolicy, peers map[string][]networkingv1.NetworkPolicyPeer) []string {
	t.Helper()
	var out []string
	for _, rule := range np.Spec.Egress {
		if len(rule.To) == 0 || len(rule.Ports) == 0 {
			t.Errorf("%s: an egress rule open to every destination or port: %+v", process, rule)
			continue
		}
		for _, dst := range classify(rule.To, peers) {
			out = append(out, withPorts(dst, rule.Ports)...)
		}
	}
	return out
}

// classify names a rule's peers: "pod:<component>" for a pod of the
// release, the values key whose peers the rule's are, or "unknown".
func classify(rulePeers []networkingv1.NetworkPolicyPeer, peers map[string][]networkingv1.NetworkPolicyPeer) []string {
	for name, p := range peers {
		if reflect.DeepEqual(rulePeers, p) {
			return []string{name}
		}
	}
	var out []string
	for _, p := range rulePeers {
		if p.PodSelector != nil && p.NamespaceSelector == nil && p.IPBlock == nil &&
			p.PodSelector.MatchLabels["app.kubernetes.io/instance"] == releaseName {
			out = append(out, "pod:"+p.PodSelector.MatchLabels["app.kubernetes.io/component"])
			continue
		}
		out = append(out, "unknown")
	}
	return out
}

func withPorts(peer string, ports []networkingv1.NetworkPolicyPort) []string {
	var out []string
	for _, p := range ports {
		if p.Port == nil {
			out = append(out, peer+"@any")
			continue
		}
		out = append(out, peer+"@"+p.Port.String())
	}
	return out
}

// sameSet compares two lists as multisets.
func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
