package deploy

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"gopkg.in/yaml.v3"

	"github.com/veltrix/veltrix/internal/metrics"
)

// capture is a Registerer that keeps what is registered on it, so that
// every metric can be described, including vectors with no series yet.
type capture struct {
	*prometheus.Registry
	collectors []prometheus.Collector
}

func (c *capture) Register(col prometheus.Collector) error {
	c.collectors = append(c.collectors, col)
	return c.Registry.Register(col)
}

func (c *capture) MustRegister(cols ...prometheus.Collector) {
	for _, col := range cols {
		if err := c.Register(col); err != nil {
			panic(err)
		}
	}
}

var descRE = regexp.MustCompile(`^Desc\{fqName: "([^"]+)", .*variableLabels: \{([^}]*)\}\}$`)

// served returns every metric an instance serves on /metrics, with its
// labels: Veltrix's (internal/metrics), the Kafka client's (kprom, registered
// when a client is created) and the runtime's, as internal/instance registers
// them; plus the series Prometheus adds to every target (up). A
// histogram's _bucket, _sum and _count series are there too.
func served(t *testing.T) map[string][]string {
	t.Helper()
	reg := &capture{Registry: prometheus.NewRegistry()}
	reg.MustRegister(metrics.Runtime()...)
	m := metrics.New(reg)
	cl, err := kgo.NewClient(kgo.SeedBrokers("127.0.0.1:1"), kgo.WithHooks(m.KafkaHooks()))
	if err != nil {
		t.Fatal(err)
	}
	cl.Close()
	out := map[string][]string{"up": nil}
	for _, c := range reg.collectors {
		ch := make(chan *prometheus.Desc, 512)
		go func() { c.Describe(ch); close(ch) }()
		for d := range ch {
			s := descRE.FindStringSubmatch(d.String())
			if s == nil {
				t.Fatalf("cannot read the metric of %s", d)
			}
			var labels []string
			if s[2] != "" {
				labels = strings.Split(s[2], ",")
			}
			out[s[1]] = labels
			for _, suffix := range []string{"_sum", "_count"} {
				out[s[1]+suffix] = labels
			}
			out[s[1]+"_bucket"] = append(slices.Clip(labels), "le")
		}
	}
	if len(out) < 50 {
		t.Fatalf("only %d metrics found", len(out))
	}
	return out
}

var (
	stringLit  = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	matchers   = regexp.MustCompile(`\{[^{}]*\}`)
	grouping   = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)`)
	rangeSel   = regexp.MustCompile(`\[[^\]]*\]`)
	offsetMod  = regexp.MustCompile(`\boffset\s+-?[0-9a-z]+`)
	variable   = regexp.MustCompile(`\$\{?\w+\}?`)
	number     = regexp.MustCompile(`\b[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?\b`)
	identifier = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*(\s*\()?`)
	keywords   = []string{"and", "or", "unless", "bool", "by", "without", "on", "ignoring", "group_left", "group_right", "offset"}
)

// used returns the metric names a PromQL expression reads and the labels
// it groups by: what is left once strings, label matchers, grouping
// clauses, ranges, offsets, dashboard variables, numbers, keywords and
// function names are taken out.
func used(expr string) (names, groupBy []string) {
	e := stringLit.ReplaceAllString(expr, `""`)
	e = variable.ReplaceAllString(e, " ")
	for _, g := range grouping.FindAllStringSubmatch(e, -1) {
		for l := range strings.SplitSeq(g[2], ",") {
			if l = strings.TrimSpace(l); l != "" {
				groupBy = append(groupBy, l)
			}
		}
	}
	for _, re := range []*regexp.Regexp{matchers, grouping, rangeSel, offsetMod, number} {
		e = re.ReplaceAllString(e, " ")
	}
	for _, id := range identifier.FindAllString(e, -1) {
		if strings.HasSuffix(id, "(") || slices.Contains(keywords, id) {
			continue
		}
		names = append(names, id)
	}
	return names, groupBy
}

func TestUsedReadsPromQL(t *testing.T) {
	names, by := used(`histogram_quantile(0.99, sum by (le, rule) (rate(veltrix_processing_latency_seconds_bucket{instance=~"$instance",rule!="a b"}[$__rate_interval]))) > 1e-3
	  and on (rule) veltrix_state_store_keys offset 1d > bool 2 * up`)
	if want := []string{"veltrix_processing_latency_seconds_bucket", "veltrix_state_store_keys", "up"}; !slices.Equal(names, want) {
		t.Errorf("names %q, want %q", names, want)
	}
	if want := []string{"le", "rule", "rule"}; !slices.Equal(by, want) {
		t.Errorf("group by %q, want %q", by, want)
	}
}

// query is one PromQL expression of the dashboard or the rules, and where.
type query struct{ where, expr string }

// dashboardQueries returns every expression of the dashboard's panels and
// the metrics its label_values variables read.
func dashboardQueries(t *testing.T) []query {
	t.Helper()
	b, err := os.ReadFile("grafana/veltrix.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		UID    string `json:"uid"`
		Panels []struct {
			Title      string `json:"title"`
			Type       string `json:"type"`
			Datasource *struct {
				UID string `json:"uid"`
			} `json:"datasource"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name       string `json:"name"`
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("grafana/veltrix.json: %v", err)
	}
	if d.UID == "" {
		t.Error("the dashboard has no uid (links to it would change on every load)")
	}
	var qs []query
	titles := map[string]bool{}
	for _, p := range d.Panels {
		if p.Type == "row" {
			continue
		}
		if titles[p.Title] {
			t.Errorf("two panels are titled %q", p.Title)
		}
		titles[p.Title] = true
		if p.Datasource == nil || p.Datasource.UID != "prometheus" {
			t.Errorf("panel %q does not use the provisioned data source (uid prometheus)", p.Title)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			qs = append(qs, query{"dashboard panel " + p.Title, tg.Expr})
		}
	}
	lv := regexp.MustCompile(`^label_values\((\w+),\s*(\w+)\)$`)
	for _, v := range d.Templating.List {
		m := lv.FindStringSubmatch(v.Definition)
		if m == nil {
			t.Errorf("dashboard variable %s: %q is not label_values(metric, label)", v.Name, v.Definition)
			continue
		}
		qs = append(qs, query{"dashboard variable " + v.Name, "sum by (" + m[2] + ") (" + m[1] + ")"})
	}
	// What the issue and the README promise the dashboard shows.
	for _, want := range []string{"Records consumed /s", "Failed events /s by code", "Consumer lag by topic",
		"Commit duration", "Restore remaining", "Memory"} {
		if !titles[want] {
			t.Errorf("the dashboard has no panel %q", want)
		}
	}
	return qs
}

type alertRule struct {
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

func alertRules(t *testing.T) []alertRule {
	t.Helper()
	b, err := os.ReadFile("alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Rules []alertRule `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatalf("alerts.yml: %v", err)
	}
	var out []alertRule
	for _, g := range f.Groups {
		out = append(out, g.Rules...)
	}
	if len(out) == 0 {
		t.Fatal("alerts.yml has no rules")
	}
	return out
}

// Every metric the dashboard and the alert rules read is one an instance
// serves, and every label they group by is one of its labels (or le,
// instance, job: the histogram's and Prometheus's own).
func TestDashboardAndAlertsUseServedMetrics(t *testing.T) {
	have := served(t)
	qs := dashboardQueries(t)
	for _, r := range alertRules(t) {
		qs = append(qs, query{"alert " + r.Alert, r.Expr})
	}
	for _, q := range qs {
		names, by := used(q.expr)
		if len(names) == 0 {
			t.Errorf("%s: no metric found in %q", q.where, q.expr)
		}
		var labels []string
		for _, n := range names {
			l, ok := have[n]
			if !ok {
				t.Errorf("%s: metric %s is not served by an instance (internal/metrics)", q.where, n)
			}
			labels = append(labels, l...)
		}
		for _, l := range by {
			if !slices.Contains(labels, l) && l != "le" && l != "instance" && l != "job" {
				t.Errorf("%s: groups by %s, which none of %v has", q.where, l, names)
			}
		}
	}
}

// Each alert has a severity, a summary and a runbook entry in
// docs/operations.md, and each entry there is an alert's.
func TestAlertsHaveRunbookEntries(t *testing.T) {
	b, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	heading := regexp.MustCompile(`(?m)^### (Veltrix\w+)$`)
	var entries []string
	for _, m := range heading.FindAllStringSubmatch(doc, -1) {
		entries = append(entries, m[1])
	}
	var alerts []string
	for _, r := range alertRules(t) {
		alerts = append(alerts, r.Alert)
		if !slices.Contains([]string{"critical", "warning", "info"}, r.Labels["severity"]) {
			t.Errorf("alert %s: severity %q, want critical, warning or info", r.Alert, r.Labels["severity"])
		}
		if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
			t.Errorf("alert %s lacks a summary or description", r.Alert)
		}
		if want := "docs/operations.md#" + strings.ToLower(r.Alert); r.Annotations["runbook"] != want {
			t.Errorf("alert %s: runbook %q, want %q", r.Alert, r.Annotations["runbook"], want)
		}
		if !slices.Contains(entries, r.Alert) {
			t.Errorf("docs/operations.md has no entry \"### %s\"", r.Alert)
			continue
		}
		_, entry, _ := strings.Cut(doc, "### "+r.Alert+"\n")
		entry, _, _ = strings.Cut(entry, "\n### ")
		for _, part := range []string{"**Means**", "**Check**", "**Do**"} {
			if !strings.Contains(entry, part) {
				t.Errorf("docs/operations.md: the entry of %s has no %s part", r.Alert, part)
			}
		}
	}
	for _, e := range entries {
		if !slices.Contains(alerts, e) {
			t.Errorf("docs/operations.md has an entry for %s, which alerts.yml does not define", e)
		}
	}
}

// promtool (Debian's prometheus package; make tools installs it) checks
// the rules and runs their unit tests, alerts_test.yml. Without it the
// test fails on CI and says so elsewhere: the rules were not checked.
func TestAlertRulesPassPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if errors.Is(err, exec.ErrNotFound) {
		if os.Getenv("CI") != "" {
			t.Fatal("promtool is not installed: the alert rules cannot be checked (apt-get install prometheus; make tools does it as root)")
		}
		t.Skip("promtool is not installed, so deploy/alerts.yml was NOT checked: install Debian's prometheus package (make tools does it as root)")
	}
	for _, args := range [][]string{{"check", "rules", "alerts.yml"}, {"test", "rules", "alerts_test.yml"}} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}
