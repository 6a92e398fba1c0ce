package config

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/veltrix/veltrix/pkg/diag"
)

// Origin returns where the value of the setting key came from: a file
// position (File, Line, Column) for a value written in a configuration
// file, File "env VELTRIX_..." for an environment override, or ok false
// when the setting has its default (or was set by SetOrigin's caller).
func (c *Config) Origin(key string) (at diag.Pos, ok bool) {
	at, ok = c.origins[key]
	return at, ok
}

// SetOrigin records that the setting key was given its value by something
// other than the files and the environment (e.g. "veltrix dev" pointing the
// example at its embedded broker); what describes it, and Origin then
// returns it as the File of a position without a line.
func (c *Config) SetOrigin(key, what string) {
	if c.origins == nil {
		c.origins = map[string]diag.Pos{}
	}
	c.origins[key] = diag.Pos{File: what, Path: key}
}

// Value returns the effective value of setting s in c (a string, bool, int,
// time.Duration or []string).
func (c *Config) Value(s *Setting) any {
	return reflect.ValueOf(c).Elem().FieldByIndex(s.index).Interface()
}

// Secret reports whether the setting holds a secret that must never be
// shown: a password or a token (the names of files holding them are not
// secret).
func (s *Setting) Secret() bool {
	last := s.Key[strings.LastIndexByte(s.Key, '.')+1:]
	return last == "password" || last == "auth_token" || strings.HasSuffix(last, "_secret")
}

// Fragment checks a pasted document of templates and rules against base, a
// loaded configuration, without reading or changing anything on disk. data
// is what an included file holds (templates: and rules:), or one rule on
// its own (a mapping with name:); file names it in positions ("pasted").
// A template or rule of the fragment replaces base's of the same name, so
// an edited copy of a running rule is checked as it would run.
//
// It returns the configuration with the fragment applied (base is not
// changed; the two share their unchanged rules and templates, which
// callers must treat as read-only) and, like Load, a diag.List of the
// problems the loader finds; build the result with topology.Build to check
// steps and expressions too. The Config is nil when data is not usable YAML.
func Fragment(base *Config, file string, data []byte) (*Config, error) {
	l := &loader{
		opts: options{
			lookupEnv: func(string) (string, bool) { return "", false },
			glob:      filepath.Glob,
			readFile:  func(string) ([]byte, error) { return data, nil },
		},
		seen:       map[string]bool{},
		templateAt: map[string]diag.Pos{},
		ruleAt:     map[string]diag.Pos{},
	}
	l.cwd, _ = os.Getwd()
	root, ok := l.read(file, diag.Pos{File: file})
	if !ok {
		return nil, l.errs.Err()
	}
	frag := &Config{App: base.App}
	if root != nil && hasKey(root, "name") {
		rules := &yaml.Node{Kind: yaml.SequenceNode, Content: []*yaml.Node{root}, Line: root.Line, Column: root.Column}
		l.content(frag, file, nil, rules)
	} else {
		l.included(frag, root, file, "paste templates: and rules: as in an included file, or one rule (a mapping with name:)")
	}
	out := *base
	out.Templates = replaceByName(base.Templates, frag.Templates, func(t *Template) string { return t.Name })
	out.Rules = replaceByName(base.Rules, frag.Rules, func(r *Rule) string { return r.Name })
	l.bindRules(&out)
	return &out, l.errs.Err()
}

// replaceByName returns base with each element of repl replacing the one
// of the same name, in place, and the others of repl appended.
func replaceByName[T any](base, repl []T, name func(T) string) []T {
	out := slices.Clone(base)
	for _, r := range repl {
		i := slices.IndexFunc(out, func(b T) bool { return name(b) == name(r) })
		if i >= 0 {
			out[i] = r
		} else {
			out = append(out, r)
		}
	}
	return out
}
