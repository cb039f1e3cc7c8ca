package tools

import (
	"bufio"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

// exposedMetrics reads metrics.txt: one metric name a line, as a real
// /metrics scrape of the services shows it (comments start with #).
func exposedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	f, err := os.Open("metrics.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	names := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" && !strings.HasPrefix(line, "#") {
			names[line] = true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return names
}

// promql is Prometheus's own parser, with its default functions.
var promql = parser.NewParser(parser.Options{})

// grafanaVars are the dashboards' template variables and Grafana's own,
// replaced by values PromQL takes before an expression is parsed.
var grafanaVars = regexp.MustCompile(`\$\{?(__rate_interval|__interval|__range)\}?|\$\{?[a-z_]+(:[a-z]+)?\}?`)

func substitute(expr string) string {
	return grafanaVars.ReplaceAllStringFunc(expr, func(v string) string {
		if strings.Contains(v, "__") {
			return "5m"
		}
		return "x"
	})
}

// checkExpr fails t when expr does not parse or reads a metric that is not
// exposed.
func checkExpr(t *testing.T, where, expr string, exposed map[string]bool) {
	t.Helper()
	e, err := promql.ParseExpr(substitute(expr))
	if err != nil {
		t.Errorf("%s: %v\n%s", where, err, expr)
		return
	}
	n := 0
	parser.Inspect(e, func(node parser.Node, _ []parser.Node) error {
		vs, ok := node.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		n++
		if !exposed[vs.Name] {
			t.Errorf("%s: metric %q is not exposed by bankbridge (metrics.txt)", where, vs.Name)
		}
		return nil
	})
	if n == 0 {
		t.Errorf("%s: reads no metric: %s", where, expr)
	}
}

// TestAlertRulesReadExposedMetrics: every alert of alerts.yaml is valid
// (Prometheus's own rule-file checks), and reads only metrics that exist.
func TestAlertRulesReadExposedMetrics(t *testing.T) {
	exposed := exposedMetrics(t)
	groups, errs := rulefmt.ParseFile(filepath.Join("..", "alerts.yaml"), false, model.UTF8Validation, promql, slog.New(slog.DiscardHandler))
	for _, err := range errs {
		t.Error(err)
	}
	if groups == nil {
		t.Fatal("no rule groups")
	}
	var alerts []string
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			alerts = append(alerts, r.Alert)
			checkExpr(t, "alert "+r.Alert, r.Expr, exposed)
			if !strings.HasPrefix(r.Annotations["runbook_url"], "docs/runbook.md#"+strings.ToLower(r.Alert)) {
				t.Errorf("alert %s: runbook_url %q, want docs/runbook.md#%s", r.Alert, r.Annotations["runbook_url"], strings.ToLower(r.Alert))
			}
		}
	}
	// Every alert has its section in the runbook.
	runbook, err := os.ReadFile(filepath.Join("..", "..", "..", "docs", "runbook.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range alerts {
		if !strings.Contains(string(runbook), "\n### "+a+"\n") {
			t.Errorf("docs/runbook.md has no section \"### %s\"", a)
		}
	}
}

// dashboard is the part of a Grafana dashboard the test reads.
type dashboard struct {
	Title      string  `json:"title"`
	UID        string  `json:"uid"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	Title      string `json:"title"`
	Type       string `json:"type"`
	Datasource struct {
		UID string `json:"uid"`
	} `json:"datasource"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a row's
}

// TestDashboardsReadExposedMetrics: every dashboard is Grafana JSON whose
// data source is the ${datasource} variable (so it imports into any
// Grafana), and every panel's query parses and reads metrics that exist.
func TestDashboardsReadExposedMetrics(t *testing.T) {
	exposed := exposedMetrics(t)
	files, err := filepath.Glob(filepath.Join("..", "..", "grafana", "dashboards", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards: %v", err)
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d dashboard
		if err := json.Unmarshal(raw, &d); err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if d.Title == "" || d.UID == "" {
			t.Errorf("%s: title %q, uid %q: both are required", f, d.Title, d.UID)
		}
		if !slices.ContainsFunc(d.Templating.List, func(v struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		}) bool {
			return v.Name == "datasource" && v.Type == "datasource" && v.Query == "prometheus"
		}) {
			t.Errorf("%s: no datasource variable of type prometheus", f)
		}
		var panels []panel
		for _, p := range d.Panels {
			panels = append(panels, p)
			panels = append(panels, p.Panels...)
		}
		queries := 0
		for _, p := range panels {
			if p.Type == "row" {
				continue
			}
			if p.Datasource.UID != "${datasource}" {
				t.Errorf("%s: panel %q: data source %q, want ${datasource}", f, p.Title, p.Datasource.UID)
			}
			if len(p.Targets) == 0 {
				t.Errorf("%s: panel %q has no query", f, p.Title)
			}
			for _, q := range p.Targets {
				queries++
				checkExpr(t, filepath.Base(f)+": "+p.Title, q.Expr, exposed)
			}
		}
		if queries == 0 {
			t.Errorf("%s: no queries", f)
		}
	}
}
