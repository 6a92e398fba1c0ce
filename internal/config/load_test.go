package config

import (
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/veltrix/veltrix/pkg/diag"
)

// noEnv is an environment with no VELTRIX_* variables.
func noEnv(string) (string, bool) { return "", false }

// env returns a lookup over m.
func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func mustLoad(t *testing.T, path string, opts ...Option) *Config {
	t.Helper()
	cfg, err := Load(path, append([]Option{WithEnv(noEnv)}, opts...)...)
	if err != nil {
		t.Fatalf("Load(%s): %v", path, err)
	}
	return cfg
}

func rule(t *testing.T, cfg *Config, name string) *Rule {
	t.Helper()
	for _, r := range cfg.Rules {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("no rule %q", name)
	return nil
}

func values(with map[string]*Value) map[string]any {
	out := map[string]any{}
	for k, v := range with {
		out[k] = v.V
	}
	return out
}

func TestLoadFull(t *testing.T) {
	cfg := mustLoad(t, "testdata/full/veltrix.yaml")

	if cfg.App.ID != "orders-pipeline" || cfg.App.StateDir != "./data/state" {
		t.Errorf("app = %+v", cfg.App)
	}
	if !reflect.DeepEqual(cfg.Kafka.Brokers, []string{"localhost:9092"}) || cfg.Kafka.TLS.Enabled {
		t.Errorf("kafka = %+v", cfg.Kafka)
	}
	if cfg.Processing.Guarantee != ExactlyOnce || cfg.Processing.CommitInterval != 100*time.Millisecond {
		t.Errorf("processing = %+v", cfg.Processing)
	}
	if cfg.Processing.MaxPollRecords != 10000 { // not in the file: the default
		t.Errorf("max_poll_records = %d, want the default 10000", cfg.Processing.MaxPollRecords)
	}
	if cfg.HTTP.Listen != "127.0.0.1:8080" || !reflect.DeepEqual(cfg.Include, []string{"rules/*.yaml"}) {
		t.Errorf("http = %+v, include = %v", cfg.HTTP, cfg.Include)
	}

	tmpl := cfg.Template("high_value_order")
	if tmpl == nil || len(tmpl.Steps) != 3 || len(tmpl.Params) != 2 || cfg.Template("nope") != nil {
		t.Fatalf("templates = %+v", cfg.Templates)
	}
	if p := tmpl.Param("threshold"); p.Type != ParamNumber || p.Default == nil || p.Default.V != 1000.0 {
		t.Errorf("threshold = %+v", p)
	}
	if p := tmpl.Param("out"); p.Type != ParamTopic || p.Default != nil || p.Pos.Line != 20 {
		t.Errorf("out = %+v", p)
	}
	if tmpl.Pos.Line != 16 || tmpl.Pos.Path != "templates.high_value_order" || tmpl.Pos.File != filepath.FromSlash("testdata/full/veltrix.yaml") {
		t.Errorf("template pos = %+v", tmpl.Pos)
	}

	if len(cfg.Rules) != 3 {
		t.Fatalf("rules = %d, want 3", len(cfg.Rules))
	}
	big := rule(t, cfg, "big-orders")
	if got, want := values(big.With), map[string]any{"threshold": 5000.0, "out": "orders.high-value"}; !reflect.DeepEqual(got, want) {
		t.Errorf("big-orders with = %v, want %v", got, want)
	}
	if big.OnError != OnErrorDLQ || big.DLQ != "orders-pipeline.dlq" || big.Pos.Line != 27 || big.Pos.Path != "rules[0]" {
		t.Errorf("big-orders = %+v", big)
	}
	if big.With["threshold"].Pos.Line != 30 || big.With["threshold"].Pos.Path != "rules[0].with.threshold" {
		t.Errorf("threshold value pos = %+v", big.With["threshold"].Pos)
	}
	rev := rule(t, cfg, "revenue-per-customer")
	if len(rev.Steps) != 3 || rev.Template != "" || !reflect.DeepEqual(rev.From, []string{"orders"}) {
		t.Errorf("revenue-per-customer = %+v", rev)
	}

	inc := rule(t, cfg, "medium-orders")
	if inc.Pos.File != filepath.FromSlash("testdata/full/rules/payments.yaml") || inc.Pos.Line != 2 {
		t.Errorf("included rule pos = %+v", inc.Pos)
	}
	if !reflect.DeepEqual(inc.From, []string{"orders", "orders.replay"}) || len(inc.FromPos) != 2 || inc.FromPos[1].Path != "rules[0].from[1]" {
		t.Errorf("from = %v %+v", inc.From, inc.FromPos)
	}
	if got := values(inc.With); got["threshold"] != 1000.0 || got["out"] != "orders.medium" {
		t.Errorf("medium-orders with = %v (threshold should take its default)", got)
	}
	if inc.OnError != OnErrorSkip || inc.DLQ != "payments.failed" {
		t.Errorf("medium-orders policy = %s %s", inc.OnError, inc.DLQ)
	}
}

func TestLoadDefaults(t *testing.T) {
	path := filepath.Join(t.TempDir(), "empty.yaml")
	writeFile(t, path, "# nothing but defaults\n")
	cfg := mustLoad(t, path)
	if cfg.App.ID != "veltrix" || cfg.Processing.CommitInterval != 100*time.Millisecond ||
		!reflect.DeepEqual(cfg.Kafka.Brokers, []string{"localhost:9092"}) || cfg.HTTP.Listen != "127.0.0.1:8080" ||
		cfg.Processing.Guarantee != ExactlyOnce || cfg.Processing.MaxPollRecords != 10000 || len(cfg.Include) != 0 {
		t.Errorf("defaults not applied: %+v", cfg)
	}
	root := reflect.ValueOf(cfg).Elem()
	for _, s := range Settings() {
		got := root.FieldByIndex(s.index).Interface()
		if want := s.zero(); !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %#v, want its default %#v", s.Key, got, want)
		}
	}
	if len(cfg.Rules) != 0 || len(cfg.Templates) != 0 {
		t.Errorf("rules or templates from nowhere: %+v", cfg)
	}
}

func TestEnvOverrides(t *testing.T) {
	tests := []struct {
		name  string
		env   map[string]string
		check func(*Config) bool
	}{
		{"list as comma-separated", map[string]string{"VELTRIX_KAFKA_BROKERS": "a:9092, b:9092"},
			func(c *Config) bool { return reflect.DeepEqual(c.Kafka.Brokers, []string{"a:9092", "b:9092"}) }},
		{"duration over file value", map[string]string{"VELTRIX_PROCESSING_COMMIT_INTERVAL": "50ms"},
			func(c *Config) bool { return c.Processing.CommitInterval == 50*time.Millisecond }},
		{"nested bool", map[string]string{"VELTRIX_KAFKA_TLS_ENABLED": "true"},
			func(c *Config) bool { return c.Kafka.TLS.Enabled }},
		{"key with no file value", map[string]string{"VELTRIX_PROCESSING_MAX_POLL_RECORDS": "500"},
			func(c *Config) bool { return c.Processing.MaxPollRecords == 500 }},
		{"app id feeds the default dlq", map[string]string{"VELTRIX_APP_ID": "shop"},
			func(c *Config) bool { return c.App.ID == "shop" && c.Rules[0].DLQ == "shop.dlq" }},
		{"empty value", map[string]string{"VELTRIX_HTTP_LISTEN": ""},
			func(c *Config) bool { return c.HTTP.Listen == "" }},
		{"no override keeps the file", nil,
			func(c *Config) bool {
				return c.Processing.CommitInterval == 100*time.Millisecond && !c.Kafka.TLS.Enabled
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Load("testdata/full/veltrix.yaml", WithEnv(env(tt.env)))
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(cfg) {
				t.Errorf("override %v not applied: %+v", tt.env, cfg)
			}
		})
	}
}

func TestEnvOverrideDefaultLookup(t *testing.T) {
	t.Setenv("VELTRIX_KAFKA_TLS_ENABLED", "true")
	t.Setenv("VELTRIX_KAFKA_BROKERS", "x:1,y:2")
	cfg, err := Load("testdata/full/veltrix.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Kafka.TLS.Enabled || !reflect.DeepEqual(cfg.Kafka.Brokers, []string{"x:1", "y:2"}) {
		t.Errorf("os environment not applied: %+v", cfg.Kafka)
	}
}

func TestEnvInvalid(t *testing.T) {
	tests := []struct {
		env, value, path string
	}{
		{"VELTRIX_PROCESSING_COMMIT_INTERVAL", "fast", "processing.commit_interval"},
		{"VELTRIX_KAFKA_TLS_ENABLED", "maybe", "kafka.tls.enabled"},
		{"VELTRIX_PROCESSING_GUARANTEE", "twice", "processing.guarantee"},
		{"VELTRIX_PROCESSING_MAX_POLL_RECORDS", "0", "processing.max_poll_records"},
	}
	for _, tt := range tests {
		t.Run(tt.env, func(t *testing.T) {
			_, err := Load("testdata/full/veltrix.yaml", WithEnv(env(map[string]string{tt.env: tt.value})))
			list := diag.AsList(err)
			if len(list) != 1 {
				t.Fatalf("got %v, want one VX1105", err)
			}
			e := list[0]
			if e.Code != diag.EnvInvalid || e.File != "env "+tt.env || e.Path != tt.path || e.Hint == "" || !strings.Contains(e.Message, tt.value) {
				t.Errorf("got %+v", e)
			}
		})
	}
}

func TestInclude(t *testing.T) {
	cfg := mustLoad(t, "testdata/include/veltrix.yaml")
	tmpl := cfg.Template("forward")
	if tmpl == nil || tmpl.Pos.File != filepath.FromSlash("testdata/include/templates/library.yaml") || tmpl.Pos.Line != 2 {
		t.Fatalf("template = %+v", tmpl)
	}
	if len(cfg.Rules) != 2 {
		t.Fatalf("rules = %d, want 2", len(cfg.Rules))
	}
	orders, payments := rule(t, cfg, "forward-orders"), rule(t, cfg, "forward-payments")
	if orders.Pos.File != filepath.FromSlash("testdata/include/rules/orders.yaml") || orders.Pos.Line != 2 {
		t.Errorf("forward-orders pos = %+v", orders.Pos)
	}
	if payments.Pos.File != filepath.FromSlash("testdata/include/rules/payments.yaml") || payments.OnError != OnErrorFail {
		t.Errorf("forward-payments = %+v", payments)
	}
	want := map[string]any{
		"type": "order.created", "out": "orders.created", "limit": int64(20), "mode": "safe",
		"window": 5 * time.Minute, "tags": []any{"a", 1.0, map[string]any{"x": true}},
	}
	if got := values(orders.With); !reflect.DeepEqual(got, want) {
		t.Errorf("forward-orders with:\n got %#v\nwant %#v", got, want)
	}
	if got := values(payments.With); got["mode"] != "fast" || got["window"] != time.Minute || got["limit"] != int64(10) {
		t.Errorf("forward-payments with = %v", got)
	}
	if p := orders.With["type"].Pos; p.File != orders.Pos.File || p.Line != 6 || p.Path != "rules[0].with.type" {
		t.Errorf("value pos = %+v", p)
	}
	if d := orders.With["mode"].Pos; d.File != tmpl.Pos.File || d.Line != 8 {
		t.Errorf("default value pos = %+v, want the template's default", d)
	}
}

// want is one expected problem.
type want struct {
	code diag.Code
	line int
	path string
	hint string // a substring of the hint, if checked
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		file string
		want []want
	}{
		{"errors/unknown_key.yaml", []want{
			{diag.UnknownKey, 4, "processing.comit_interval", `did you mean "commit_interval"?`},
			{diag.UnknownKey, 7, "kafka.tsl", `did you mean "tls"?`},
			{diag.UnknownKey, 8, "rulez", `did you mean "rules"?`},
		}},
		{"errors/wrong_type.yaml", []want{
			{diag.WrongType, 2, "processing.commit_interval", "Go duration"},
			{diag.WrongType, 3, "processing.max_poll_records", "whole number"},
			{diag.WrongType, 5, "kafka.brokers", "list"},
			{diag.WrongType, 7, "kafka.tls.enabled", "true or false"},
			{diag.WrongType, 8, "http", "listen"},
		}},
		{"errors/invalid_value.yaml", []want{
			{diag.InvalidValue, 2, "processing.guarantee", `did you mean "exactly_once"?`},
			{diag.InvalidValue, 3, "processing.commit_interval", ">= 1ms"},
			{diag.InvalidValue, 6, "kafka.sasl.mechanism", `did you mean "PLAIN"?`},
			{diag.InvalidValue, 10, "rules[0].on_error", "dlq"},
		}},
		{"errors/timeouts.yaml", []want{
			{diag.InvalidValue, 3, "processing.transaction_timeout", "transaction_timeout: 10s"},
		}},
		{"errors/missing_required.yaml", []want{
			{diag.MissingRequired, 2, "rules[0]", "name:"},
			{diag.MissingRequired, 2, "rules[0]", "from:"},
			{diag.MissingRequired, 4, "rules[1]", "from:"},
			{diag.MissingRequired, 6, "rules[2]", "steps:"},
		}},
		{"errors/duplicate.yaml", []want{
			{diag.DuplicateName, 5, "rules[1].name", "unique"},
		}},
		{"errors/bad_topic.yaml", []want{
			{diag.InvalidTopic, 3, "rules[0].from[1]", ""},
			{diag.InvalidTopic, 3, "rules[0].from[2]", ""},
			{diag.InvalidTopic, 4, "rules[0].dlq", ""},
		}},
		{"errors/template_params.yaml", []want{
			{diag.UnknownTemplate, 12, "rules[0].template", `did you mean "high_value_order"?`},
			{diag.MissingParam, 16, "rules[1].with", "out: orders.high-value"},
			{diag.ParamType, 20, "rules[2].with.threshold", "write a number, e.g. 5000"},
			{diag.UnknownParam, 24, "rules[3].with.treshold", `did you mean "threshold"?`},
			{diag.ParamConstraint, 29, "rules[4].with.threshold", "at least 0"},
			{diag.ParamConstraint, 31, "rules[4].with.mode", `did you mean "fast"?`},
		}},
		{"errors/param_schema.yaml", []want{
			{diag.InvalidParamSchema, 4, "templates.t.params.a.type", `did you mean "int"?`},
			{diag.InvalidParamSchema, 5, "templates.t.params.b.default", "number"},
			{diag.InvalidParamSchema, 6, "templates.t.params.c.min", "remove min:"},
			{diag.InvalidParamSchema, 7, "templates.t.params.d.pattern", "RE2"},
		}},
		{"errors/syntax.yaml", []want{
			{diag.YAMLSyntax, 3, "", "indentation"},
		}},
		{"errors/several.yaml", []want{
			{diag.UnknownKey, 3, "app.stat_dir", `did you mean "state_dir"?`},
			{diag.WrongType, 5, "processing.commit_interval", "Go duration"},
			{diag.ParamType, 15, "rules[0].with.n", "whole number"},
			{diag.DuplicateName, 16, "rules[1].name", ""},
			{diag.InvalidTopic, 17, "rules[1].from", ""},
			{diag.UnknownTemplate, 18, "rules[1].template", ""},
		}},
		{"missing.yaml", []want{
			{diag.FileUnreadable, 0, "", "path"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join("testdata", tt.file)
			_, err := Load(path, WithEnv(noEnv))
			checkErrors(t, err, path, tt.want)
		})
	}
}

// checkErrors asserts that err is a diag.List of exactly the wanted problems
// (in order), all in file.
func checkErrors(t *testing.T, err error, file string, wants []want) {
	t.Helper()
	var list diag.List
	if !errors.As(err, &list) {
		t.Fatalf("error %v (%T) is not a diag.List", err, err)
	}
	if len(list) != len(wants) {
		t.Fatalf("got %d problems, want %d:\n%v", len(list), len(wants), err)
	}
	for i, w := range wants {
		e := list[i]
		if e.Code != w.code || e.Line != w.line || e.Path != w.path || (file != "" && e.File != file) || !strings.Contains(e.Hint, w.hint) {
			t.Errorf("problem %d = %s:%d %s %s (hint %q), want %s:%d %s %s (hint containing %q)",
				i, e.File, e.Line, e.Code, e.Path, e.Hint, file, w.line, w.code, w.path, w.hint)
		}
		if e.Message == "" {
			t.Errorf("problem %d has no message", i)
		}
	}
}

func TestIncludeErrors(t *testing.T) {
	_, err := Load("testdata/badinclude/veltrix.yaml", WithEnv(noEnv))
	list := diag.AsList(err)
	extra, main := filepath.FromSlash("testdata/badinclude/extra/settings.yaml"), filepath.FromSlash("testdata/badinclude/veltrix.yaml")
	checkErrors(t, list[:2], extra, []want{
		{diag.UnknownKey, 1, "kafka", "settings belong in " + main},
		{diag.UnknownKey, 3, "templatse", `did you mean "templates"?`},
	})
	checkErrors(t, list[2:], main, []want{
		{diag.IncludeInvalid, 2, "include[0]", "relative to the directory"},
		{diag.IncludeInvalid, 3, "include[1]", "glob"},
	})
}

func TestWrongTypeDetails(t *testing.T) {
	_, err := Load("testdata/errors/template_params.yaml", WithEnv(noEnv))
	for _, e := range diag.AsList(err) {
		if e.Code == diag.ParamType {
			wantMsg := `template "high_value_order" expects number, got string "5k"`
			if e.Message != wantMsg || e.Expected != "number" || e.Found != `string "5k"` || e.Column != 23 {
				t.Errorf("got %+v, want message %q", e, wantMsg)
			}
			return
		}
	}
	t.Fatal("no VX2003 reported")
}

func TestBind(t *testing.T) {
	cfg := mustLoad(t, "testdata/include/veltrix.yaml")
	tmpl := cfg.Template("forward")
	at := diag.Pos{File: "t.yaml", Line: 7, Column: 5, Path: "templates.x.steps[0].with"}
	tests := []struct {
		name  string
		with  string
		codes []diag.Code
		check map[string]any
	}{
		{"all given", `{type: a.b, out: o, limit: 100, mode: fast, window: 2s, tags: []}`, nil,
			map[string]any{"type": "a.b", "out": "o", "limit": int64(100), "mode": "fast", "window": 2 * time.Second, "tags": []any{}}},
		{"no with", ``, []diag.Code{diag.MissingParam, diag.MissingParam}, nil},
		{"not a mapping", `[1]`, []diag.Code{diag.WrongType, diag.MissingParam, diag.MissingParam}, nil},
		{"pattern", `{type: ABC, out: o}`, []diag.Code{diag.ParamConstraint}, nil},
		{"max", `{type: a.b, out: o, limit: 101}`, []diag.Code{diag.ParamConstraint}, nil},
		{"int from float", `{type: a.b, out: o, limit: 1.5}`, []diag.Code{diag.ParamType}, nil},
		{"duration without unit", `{type: a.b, out: o, window: 30}`, []diag.Code{diag.ParamType}, nil},
		{"bad topic", `{type: a.b, out: "a b"}`, []diag.Code{diag.InvalidTopic}, nil},
		{"string from number", `{type: 5, out: o}`, []diag.Code{diag.ParamType}, nil},
		{"list from scalar", `{type: a.b, out: o, tags: x}`, []diag.Code{diag.ParamType}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var node *yaml.Node
			if tt.with != "" {
				var doc yaml.Node
				if err := yaml.Unmarshal([]byte(tt.with), &doc); err != nil {
					t.Fatal(err)
				}
				node = doc.Content[0]
			}
			got, errs := tmpl.Bind(node, at)
			if !reflect.DeepEqual(errs.Codes(), tt.codes) && (len(errs) > 0 || len(tt.codes) > 0) {
				t.Fatalf("codes = %v, want %v\n%v", errs.Codes(), tt.codes, errs)
			}
			for _, e := range errs {
				if e.File != "t.yaml" || !strings.HasPrefix(e.Path, at.Path) {
					t.Errorf("problem not placed under with: %+v", e)
				}
			}
			if tt.check != nil && !reflect.DeepEqual(values(got), tt.check) {
				t.Errorf("values = %#v, want %#v", values(got), tt.check)
			}
		})
	}
}

func TestValidTopicName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"orders", true}, {"orders.high-value", true}, {"a_b-C.9", true}, {strings.Repeat("x", 249), true},
		{"", false}, {".", false}, {"..", false}, {strings.Repeat("x", 250), false},
		{"a b", false}, {"a/b", false}, {"ordérs", false}, {"${params.out}", false},
	}
	for _, tt := range tests {
		if err := ValidTopicName(tt.name); (err == nil) != tt.ok {
			t.Errorf("ValidTopicName(%q) = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}

func BenchmarkLoad(b *testing.B) {
	for b.Loop() {
		if _, err := Load("testdata/full/veltrix.yaml", WithEnv(noEnv)); err != nil {
			b.Fatal(err)
		}
	}
}

func TestAliasBomb(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bomb.yaml")
	var b strings.Builder
	b.WriteString("a0: &a0 [x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < 10; i++ {
		fmt.Fprintf(&b, "a%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d]\n", i, i, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1)
	}
	b.WriteString("templates:\n  t:\n    params:\n      l: {type: list, default: *a9}\n    steps: [{to: x}]\n")
	writeFile(t, path, b.String())
	_, err := Load(path, WithEnv(noEnv))
	codes := diag.AsList(err).Codes()
	if !slices.Contains(codes, diag.InvalidParamSchema) {
		t.Errorf("codes = %v, want the huge list default rejected with VX2007", codes)
	}
}
