package config

import (
	"fmt"
	"math"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/viper"
	"gopkg.in/yaml.v3"

	"github.com/veltrix/veltrix/internal/group"
	"github.com/veltrix/veltrix/pkg/diag"
)

// EnvPrefix starts the name of every environment override.
const EnvPrefix = "VELTRIX_"

// Setting describes one settings key, as declared by the struct tags of
// Config: it drives validation, defaults, environment overrides and the
// reference in docs/configuration.md.
type Setting struct {
	Key     string   // dotted path, e.g. "kafka.tls.enabled"
	Env     string   // environment override, e.g. "VELTRIX_KAFKA_TLS_ENABLED"
	Type    string   // string, bool, int, float, duration or list
	Default string   // the default as written in the tag; "" for the zero value
	Enum    []string // allowed values, if restricted
	Fold    bool     // Enum is matched regardless of letter case
	Min     string   // smallest allowed value, if any
	Max     string   // largest allowed value, if any (float settings)
	Doc     string   // one-line description

	index []int // field index path from Config
	typ   reflect.Type
}

// Settings returns every settings key in schema order. The result is shared:
// do not modify it.
func Settings() []*Setting { return schema().all }

// Setting types.
const (
	typeString   = "string"
	typeBool     = "bool"
	typeInt      = "int"
	typeDuration = "duration"
	typeList     = "list"
	typeFloat    = "float"
)

// section is one mapping of the settings schema.
type section struct {
	names  []string
	fields map[string]*schemaField
}

// schemaField is a key of a section: a nested section or a setting.
type schemaField struct {
	sub *section
	set *Setting
}

func (s *section) field(name string) *schemaField { return s.fields[name] }

type settingsSchema struct {
	root *section
	all  []*Setting
}

var schema = sync.OnceValue(func() *settingsSchema {
	s := &settingsSchema{}
	s.root = s.build(reflect.TypeFor[Config](), "", nil)
	return s
})

var durationType = reflect.TypeFor[time.Duration]()

// build turns a struct type into a section, registering each leaf setting.
func (s *settingsSchema) build(t reflect.Type, prefix string, index []int) *section {
	sec := &section{fields: map[string]*schemaField{}}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		key := name
		if prefix != "" {
			key = prefix + "." + name
		}
		idx := append(slices.Clone(index), i)
		sec.names = append(sec.names, name)
		if f.Type.Kind() == reflect.Struct {
			sec.fields[name] = &schemaField{sub: s.build(f.Type, key, idx)}
			continue
		}
		set := &Setting{
			Key:     key,
			Env:     EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_")),
			Default: f.Tag.Get("default"),
			Min:     f.Tag.Get("min"),
			Max:     f.Tag.Get("max"),
			Doc:     f.Tag.Get("doc"),
			index:   idx,
			typ:     f.Type,
		}
		if e, ok := f.Tag.Lookup("enum"); ok {
			set.Enum = strings.Split(e, ",")
			set.Fold = f.Tag.Get("fold") == "true"
		}
		switch {
		case f.Type == durationType:
			set.Type = typeDuration
		case f.Type.Kind() == reflect.String:
			set.Type = typeString
		case f.Type.Kind() == reflect.Bool:
			set.Type = typeBool
		case f.Type.Kind() == reflect.Int:
			set.Type = typeInt
		case f.Type.Kind() == reflect.Float64:
			set.Type = typeFloat
		case f.Type == reflect.TypeFor[[]string]():
			set.Type = typeList
		default:
			panic(fmt.Sprintf("config: setting %s has unsupported type %s", key, f.Type))
		}
		if _, err := set.parse(set.Default); err != nil && set.Default != "" {
			panic(fmt.Sprintf("config: setting %s has a bad default: %v", key, err))
		}
		sec.fields[name] = &schemaField{set: set}
		s.all = append(s.all, set)
	}
	return sec
}

// parse parses text as a value of the setting's type.
func (s *Setting) parse(text string) (any, error) {
	switch s.Type {
	case typeBool:
		return strconv.ParseBool(text)
	case typeInt:
		return strconv.Atoi(text)
	case typeFloat:
		f, err := strconv.ParseFloat(text, 64)
		if err == nil && (math.IsNaN(f) || math.IsInf(f, 0)) {
			err = fmt.Errorf("%s is not a finite number", text)
		}
		return f, err
	case typeDuration:
		return time.ParseDuration(text)
	case typeList:
		out := []string{}
		for part := range strings.SplitSeq(text, ",") {
			if part = strings.TrimSpace(part); part != "" {
				out = append(out, part)
			}
		}
		return out, nil
	}
	return text, nil
}

// zero returns the default value of the setting.
func (s *Setting) zero() any {
	v, err := s.parse(s.Default)
	if err != nil { // only an empty default of a bool, int or duration
		return reflect.Zero(s.typ).Interface()
	}
	return v
}

// check reports why v is not allowed by the setting's enum or min, or "".
func (s *Setting) check(v any) (expected, reason string) {
	if s.Enum != nil {
		if str, _ := v.(string); !slices.Contains(s.Enum, s.canonical(str)) {
			return "one of " + enumList(s.Enum), "is not one of " + enumList(s.Enum)
		}
	}
	if s.Min != "" {
		m, _ := s.parse(s.Min)
		switch v := v.(type) {
		case int:
			if v < m.(int) {
				return ">= " + s.Min, "is below the minimum " + s.Min
			}
		case time.Duration:
			if v < m.(time.Duration) {
				return ">= " + s.Min, "is below the minimum " + s.Min
			}
		case float64:
			if v < m.(float64) {
				return ">= " + s.Min, "is below the minimum " + s.Min
			}
		}
	}
	if s.Max != "" {
		m, _ := s.parse(s.Max)
		if v, ok := v.(float64); ok && v > m.(float64) {
			return "<= " + s.Max, "is above the maximum " + s.Max
		}
	}
	return "", ""
}

// canonical returns the enum member str names when the setting matches its
// enum regardless of letter case ("scram-sha-256" is "SCRAM-SHA-256"), else
// str itself.
func (s *Setting) canonical(str string) string {
	if s.Fold {
		for _, e := range s.Enum {
			if strings.EqualFold(e, str) {
				return e
			}
		}
	}
	return str
}

// canonicalValue is canonical for a string value; other values are returned
// as they are.
func (s *Setting) canonicalValue(v any) any {
	if str, ok := v.(string); ok {
		return s.canonical(str)
	}
	return v
}

// hint says how to write a value of the setting's type.
func (s *Setting) hint() string {
	switch s.Type {
	case typeBool:
		return "write true or false"
	case typeInt:
		return "write a whole number, e.g. 10"
	case typeFloat:
		return "write a number, e.g. 0.01"
	case typeDuration:
		return "write a Go duration with a unit, e.g. 100ms, 5s or 1m"
	case typeList:
		return "write a list such as [a, b] or a comma-separated string \"a,b\""
	}
	return "write a plain string"
}

// enumList formats allowed values, naming the empty one.
func enumList(enum []string) string {
	parts := make([]string, len(enum))
	for i, e := range enum {
		parts[i] = e
		if e == "" {
			parts[i] = `"" (empty)`
		}
	}
	return strings.Join(parts, ", ")
}

// sources remembers where each setting's value came from.
type sources struct {
	file  map[string]any        // parsed file values by key
	at    map[string]diag.Pos   // place of each value (file or env)
	items map[string][]diag.Pos // places of list items
}

func newSources() *sources {
	return &sources{file: map[string]any{}, at: map[string]diag.Pos{}, items: map[string][]diag.Pos{}}
}

// item returns the place of item i of a list setting.
func (s *sources) item(key string, i int) diag.Pos {
	if it := s.items[key]; i < len(it) {
		return it[i]
	}
	return s.at[key]
}

// walk checks the YAML value n of schema field f at path and records the
// parsed leaf values in src.
func (l *loader) walk(f *schemaField, n *yaml.Node, file, path string, src *sources) {
	n = resolve(n)
	if isNull(n) {
		return
	}
	if f.sub != nil {
		if n.Kind != yaml.MappingNode {
			l.errs.Add(l.pos(file, n, path).At(diag.WrongType, "expected a mapping, found %s", describe(n)).
				With("mapping", describe(n)).WithHint("known keys here: %s", strings.Join(f.sub.names, ", ")))
			return
		}
		for _, kv := range l.pairs(n, path, file) {
			sub := f.sub.field(kv.name)
			if sub == nil {
				l.unknownKey(l.pos(file, kv.key, join(path, kv.name)), kv.name, f.sub.names, "")
				continue
			}
			l.walk(sub, kv.val, file, join(path, kv.name), src)
		}
		return
	}
	s, p := f.set, l.pos(file, n, path)
	v, ok := l.leaf(s, n, file, path, src)
	if !ok {
		l.errs.Add(p.At(diag.WrongType, "expected %s, found %s", s.Type, describe(n)).
			With(s.Type, describe(n)).WithHint("%s", s.hint()))
		return
	}
	if exp, reason := s.check(v); reason != "" {
		e := p.At(diag.InvalidValue, "%s %s", describe(n), reason).With(exp, describe(n))
		if c := diag.Closest(n.Value, s.Enum); c != "" {
			e = e.WithHint("did you mean %q?", c)
		} else {
			e = e.WithHint("%s must be %s", s.Key, exp)
		}
		l.errs.Add(e)
		return
	}
	src.file[s.Key], src.at[s.Key] = s.canonicalValue(v), p
}

// leaf parses a scalar (or, for lists, a sequence) node as a value of s.
func (l *loader) leaf(s *Setting, n *yaml.Node, file, path string, src *sources) (any, bool) {
	if s.Type == typeList && n.Kind == yaml.SequenceNode {
		out := make([]string, 0, len(n.Content))
		var at []diag.Pos
		for i, item := range n.Content {
			item = resolve(item)
			if item.Kind != yaml.ScalarNode || isNull(item) {
				l.errs.Add(l.pos(file, item, index(path, i)).At(diag.WrongType, "expected a string, found %s", describe(item)).
					With("string", describe(item)).WithHint("each item is a plain string"))
				continue
			}
			out = append(out, item.Value)
			at = append(at, l.pos(file, item, index(path, i)))
		}
		src.items[s.Key] = at
		return out, true
	}
	if n.Kind != yaml.ScalarNode {
		return nil, false
	}
	switch s.Type {
	case typeBool:
		if n.Tag != "!!bool" {
			return nil, false
		}
	case typeInt:
		if n.Tag != "!!int" {
			return nil, false
		}
		var i int
		if err := n.Decode(&i); err != nil {
			return nil, false
		}
		return i, true
	case typeFloat:
		if n.Tag != "!!float" && n.Tag != "!!int" {
			return nil, false
		}
	case typeDuration:
		if n.Tag != "!!str" && n.Tag != "!!int" {
			return nil, false
		}
	}
	v, err := s.parse(n.Value)
	if err != nil {
		return nil, false
	}
	if s.Type == typeList { // a comma-separated string: one place for every item
		src.items[s.Key] = slices.Repeat([]diag.Pos{l.pos(file, n, path)}, len(v.([]string)))
	}
	return v, true
}

// resolve layers defaults, file values and environment overrides in a
// private viper instance and copies the result into cfg.
//
// Environment variables are looked up here, through the WithEnv function,
// rather than with viper's AutomaticEnv: every key is enumerated from the
// schema (so none is missed, see viper#761) and a value that does not parse
// is reported with its variable name. Parsed overrides go into viper's
// override layer, which wins over the file, which wins over the defaults.
func (l *loader) resolve(cfg *Config, src *sources) {
	v := viper.New()
	nested := map[string]any{}
	for _, s := range Settings() {
		v.SetDefault(s.Key, s.zero())
		if fv, ok := src.file[s.Key]; ok {
			setNested(nested, s.Key, fv)
		}
	}
	if err := v.MergeConfigMap(nested); err != nil {
		l.errs.Add(diag.Pos{File: l.display(cfg.File)}.At(diag.Internal, "merging settings: %v", err))
	}
	for _, s := range Settings() {
		raw, ok := l.opts.lookupEnv(s.Env)
		if !ok {
			continue
		}
		p := diag.Pos{File: "env " + s.Env, Path: s.Key}
		val, err := s.parse(raw)
		if err != nil {
			l.errs.Add(p.At(diag.EnvInvalid, "%s=%s is not a valid %s", s.Env, quote(raw), s.Type).
				With(s.Type, quote(raw)).WithHint("%s", s.hint()))
			continue
		}
		if exp, reason := s.check(val); reason != "" {
			l.errs.Add(p.At(diag.EnvInvalid, "%s=%s %s", s.Env, quote(raw), reason).With(exp, quote(raw)).
				WithHint("%s must be %s", s.Env, exp))
			continue
		}
		v.Set(s.Key, s.canonicalValue(val))
		src.at[s.Key] = p
		delete(src.items, s.Key)
	}
	root := reflect.ValueOf(cfg).Elem()
	for _, s := range Settings() {
		val := reflect.ValueOf(v.Get(s.Key))
		field := root.FieldByIndex(s.index)
		if !val.IsValid() || !val.Type().ConvertibleTo(field.Type()) {
			l.errs.Add(diag.Pos{Path: s.Key}.At(diag.Internal, "setting %s resolved to %T", s.Key, v.Get(s.Key)))
			continue
		}
		field.Set(val.Convert(field.Type()))
	}
	if p := cfg.Processing; p.Guarantee == ExactlyOnce && p.TransactionTimeout <= p.CommitInterval {
		l.errs.Add(src.atOr("processing.transaction_timeout").At(diag.InvalidValue,
			"processing.transaction_timeout %s must exceed processing.commit_interval %s", p.TransactionTimeout, p.CommitInterval).
			WithHint("a transaction stays open for a commit interval; give it several, e.g. transaction_timeout: 10s"))
	}
	l.checkHTTP(cfg, src)
	l.checkKafkaSecurity(cfg, src)
	if err := ValidTopicName(cfg.App.ID); err != nil {
		l.errs.Add(src.atOr("app.id").At(diag.InvalidTopic, "app.id %s cannot prefix topic names: %v", quote(cfg.App.ID), err).
			WithHint("app.id names the internal and DLQ topics; use letters, digits, '.', '_' and '-'"))
	}
}

// checkHTTP checks http.advertise and reads http.auth_token_file. A token
// never appears in an error.
func (l *loader) checkHTTP(cfg *Config, src *sources) {
	h := &cfg.HTTP
	if h.Advertise != "" {
		if err := group.CheckAddr(h.Advertise); err != nil {
			l.errs.Add(src.atOr("http.advertise").At(diag.InvalidValue, "http.advertise: %v", err).
				With("host:port", quote(h.Advertise)).
				WithHint("write a host name or IP address and a port, e.g. veltrix-0.veltrix:8080, with no scheme or path"))
		}
	}
	if h.AuthTokenFile == "" {
		return
	}
	if h.AuthToken != "" {
		l.errs.Add(src.atOr("http.auth_token_file").At(diag.InvalidValue, "http.auth_token and http.auth_token_file are both set").
			WithHint("keep one of them"))
		return
	}
	b, err := os.ReadFile(h.AuthTokenFile) // relative to the working directory, like kafka.tls.ca_file
	if err != nil {
		l.errs.Add(src.atOr("http.auth_token_file").At(diag.FileUnreadable, "http.auth_token_file: %v", err).
			WithHint("the file holds the token guarding /v1; check the path and its permissions"))
		return
	}
	h.AuthToken = strings.TrimSpace(string(b))
	if h.AuthToken == "" {
		l.errs.Add(src.atOr("http.auth_token_file").At(diag.InvalidValue, "http.auth_token_file %s is empty", quote(h.AuthTokenFile)).
			WithHint("write the token into the file, or unset http.auth_token_file"))
	}
}

// atOr returns the place of key's value, or a place naming only the key
// when the value is the default.
func (s *sources) atOr(key string) diag.Pos {
	if p, ok := s.at[key]; ok {
		return p
	}
	return diag.Pos{Path: key}
}

// setNested stores v under the dotted key in m.
func setNested(m map[string]any, key string, v any) {
	parts := strings.Split(key, ".")
	for _, p := range parts[:len(parts)-1] {
		sub, ok := m[p].(map[string]any)
		if !ok {
			sub = map[string]any{}
			m[p] = sub
		}
		m = sub
	}
	m[parts[len(parts)-1]] = v
}
