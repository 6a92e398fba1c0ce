package config

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/veltrix/veltrix/pkg/diag"
)

// Option changes how Load reads the configuration.
type Option func(*options)

type options struct {
	lookupEnv func(string) (string, bool)
	glob      func(pattern string) ([]string, error)
	readFile  func(name string) ([]byte, error)
}

// WithEnv sets the function that looks up environment overrides (VELTRIX_*).
// The default is os.LookupEnv; tests pass a map lookup.
func WithEnv(lookup func(string) (string, bool)) Option {
	return func(o *options) { o.lookupEnv = lookup }
}

// withGlob replaces filepath.Glob for include patterns; the fuzz test uses
// it to keep includes inside its own directory.
func withGlob(glob func(pattern string) ([]string, error)) Option {
	return func(o *options) { o.glob = glob }
}

// Load reads the configuration file at path and every file its include:
// patterns match, applies defaults and VELTRIX_* environment overrides
// (environment over file over defaults) and checks the result.
//
// The error, when not nil, is a diag.List of every problem found, sorted by
// place. Load then still returns the Config as far as it could be built, so a
// caller can go on checking (compile steps, say) and report all problems at
// once; the Config is nil only when the main file cannot be read or is not
// valid YAML. A rule whose template is unknown keeps its Template name with a
// nil With.
func Load(path string, opts ...Option) (*Config, error) {
	o := options{lookupEnv: os.LookupEnv, glob: filepath.Glob, readFile: os.ReadFile}
	for _, opt := range opts {
		opt(&o)
	}
	l := &loader{opts: o, seen: map[string]bool{}}
	l.cwd, _ = os.Getwd()
	return l.load(path)
}

// loader holds the state of one Load call.
type loader struct {
	opts options
	cwd  string
	errs diag.List
	seen map[string]bool // absolute paths of the files read

	templateAt map[string]diag.Pos // first definition of each template
	ruleAt     map[string]diag.Pos // first definition of each rule
	pending    []pendingRule       // template rules, bound once every file is read
}

// Top-level keys of the main file, and of an included file.
var (
	mainKeys    = []string{"app", "kafka", "processing", "http", "include", "topics", "templates", "rules"}
	includeKeys = []string{"templates", "rules"}
)

func (l *loader) load(path string) (*Config, error) {
	file := l.display(path)
	root, ok := l.read(path, diag.Pos{File: file})
	if !ok {
		return nil, l.errs.Err()
	}
	cfg := &Config{File: path}
	l.templateAt, l.ruleAt = map[string]diag.Pos{}, map[string]diag.Pos{}

	var templates, rules *yaml.Node
	src := newSources()
	for _, kv := range l.pairs(root, "", file) {
		p := l.pos(file, kv.key, kv.name)
		switch kv.name {
		case "templates":
			templates = kv.val
		case "rules":
			rules = kv.val
		case "topics":
			l.topics(cfg, file, kv.val)
		default:
			if f := schema().root.field(kv.name); f != nil {
				l.walk(f, kv.val, file, kv.name, src)
			} else {
				l.unknownKey(p, kv.name, mainKeys, "")
			}
		}
	}
	l.resolve(cfg, src)
	cfg.origins = src.at
	l.content(cfg, file, templates, rules)
	l.includes(cfg, path, src)
	l.bindRules(cfg)
	return cfg, l.errs.Err()
}

// read reads and parses one file; it returns its top-level mapping (nil for
// an empty file) and false when the file cannot be used at all.
func (l *loader) read(path string, at diag.Pos) (*yaml.Node, bool) {
	if abs, err := filepath.Abs(path); err == nil {
		l.seen[abs] = true
	}
	data, err := l.opts.readFile(path)
	if err != nil {
		l.errs.Add(at.At(diag.FileUnreadable, "cannot read %s: %v", at.File, unwrapPathError(err)).
			WithHint("check the path and its permissions; include patterns are relative to the main file"))
		return nil, false
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		line, msg := yamlError(err)
		l.errs.Add(diag.Pos{File: at.File, Line: line}.At(diag.YAMLSyntax, "%s", msg).
			WithHint("check the indentation, quoting and brackets near this line"))
		return nil, false
	}
	if len(doc.Content) == 0 {
		return nil, true
	}
	root := resolve(doc.Content[0])
	if isNull(root) {
		return nil, true
	}
	if root.Kind != yaml.MappingNode {
		l.errs.Add(l.pos(at.File, root, "").At(diag.WrongType, "expected a mapping of top-level keys, found %s", describe(root)).
			With("mapping", describe(root)).WithHint("start the file with keys such as rules: or templates:"))
		return nil, false
	}
	return root, true
}

func unwrapPathError(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): `)

// yamlError splits a yaml.v3 error into its line and message.
func yamlError(err error) (int, string) {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n, "invalid YAML: " + msg[len(m[0]):]
	}
	return 0, "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")
}

// includes loads the templates and rules of every file the include patterns
// match, in pattern order and, within a pattern, in name order.
func (l *loader) includes(cfg *Config, mainPath string, src *sources) {
	dir := filepath.Dir(mainPath)
	for i, pattern := range cfg.Include {
		at := src.item("include", i)
		full := pattern
		if !filepath.IsAbs(full) {
			full = filepath.Join(dir, pattern)
		}
		matches, err := l.opts.glob(full)
		if err != nil {
			l.errs.Add(at.At(diag.IncludeInvalid, "include pattern %q is malformed: %v", pattern, err).
				WithHint("use shell glob syntax: * ? [a-z]; ** is not supported"))
			continue
		}
		if len(matches) == 0 {
			l.errs.Add(at.At(diag.IncludeInvalid, "include pattern %q matches no file (looked in %s)", pattern, l.display(filepath.Dir(full))).
				WithHint("patterns are relative to the directory of %s", l.display(mainPath)))
			continue
		}
		for _, m := range matches {
			if abs, err := filepath.Abs(m); err == nil && l.seen[abs] {
				continue
			}
			file := l.display(m)
			root, ok := l.read(m, diag.Pos{File: file})
			if !ok {
				continue
			}
			l.included(cfg, root, file, fmt.Sprintf("an included file holds only templates: and rules:; settings belong in %s", l.display(mainPath)))
		}
	}
}

// included reads a file that holds only templates: and rules: (an included
// file, a pasted fragment); another key is VX1101 with the hint.
func (l *loader) included(cfg *Config, root *yaml.Node, file, hint string) {
	var templates, rules *yaml.Node
	for _, kv := range l.pairs(root, "", file) {
		switch kv.name {
		case "templates":
			templates = kv.val
		case "rules":
			rules = kv.val
		default:
			l.unknownKey(l.pos(file, kv.key, kv.name), kv.name, includeKeys, hint)
		}
	}
	l.content(cfg, file, templates, rules)
}

// content reads the templates and rules of one file.
func (l *loader) content(cfg *Config, file string, templates, rules *yaml.Node) {
	if templates != nil {
		l.templates(cfg, file, templates)
	}
	if rules != nil {
		l.rules(cfg, file, rules)
	}
}

// display returns path as the user would see it: relative to the current
// directory when it is below it.
func (l *loader) display(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil || l.cwd == "" {
		return filepath.Clean(path)
	}
	rel, err := filepath.Rel(l.cwd, abs)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return filepath.Clean(path)
	}
	return rel
}

// unknownKey reports key as unknown, with a "did you mean" hint when a known
// key is close, else the fallback hint.
func (l *loader) unknownKey(p diag.Pos, key string, known []string, fallback string) {
	e := p.At(diag.UnknownKey, "unknown key %q", key).With("one of "+strings.Join(known, ", "), key)
	if c := diag.Closest(key, known); c != "" {
		e = e.WithHint("did you mean %q?", c)
	} else if fallback != "" {
		e = e.WithHint("%s", fallback)
	} else {
		e = e.WithHint("known keys here: %s", strings.Join(known, ", "))
	}
	l.errs.Add(e)
}
