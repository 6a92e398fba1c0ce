package config

import (
	"fmt"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/veltrix/veltrix/pkg/diag"
)

// resolve follows aliases to the node they name.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 8; i++ {
		n = n.Alias
	}
	return n
}

// isNull reports whether n is absent or an explicit null (key: with no value).
func isNull(n *yaml.Node) bool {
	n = resolve(n)
	return n == nil || n.Kind == 0 || n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// isString reports whether n is a plain or quoted string scalar.
func isString(n *yaml.Node) bool {
	return n != nil && n.Kind == yaml.ScalarNode && n.Tag == "!!str"
}

// describe names what n is, for the "found" part of an error: a quoted
// string, a number, a bool, null, a list or a mapping.
func describe(n *yaml.Node) string {
	n = resolve(n)
	switch {
	case isNull(n):
		return "null"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Tag == "!!str":
		return "string " + quote(n.Value)
	case n.Tag == "!!int", n.Tag == "!!float":
		return "number " + n.Value
	case n.Tag == "!!bool":
		return "bool " + n.Value
	}
	return quote(n.Value)
}

// quote quotes s for a message, shortening long values.
func quote(s string) string {
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return strconv.Quote(s)
}

// keyValue is one entry of a mapping.
type keyValue struct {
	name     string
	key, val *yaml.Node
}

// pairs returns the entries of mapping n, reporting non-string keys and
// duplicate keys (the later one is dropped).
func (l *loader) pairs(n *yaml.Node, path, file string) []keyValue {
	n = resolve(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	out := make([]keyValue, 0, len(n.Content)/2)
	first := make(map[string]int, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), n.Content[i+1]
		if k == nil || k.Kind != yaml.ScalarNode || isNull(k) {
			l.errs.Add(l.pos(file, n.Content[i], path).At(diag.WrongType, "expected a key name, found %s", describe(k)).
				With("string", describe(k)).WithHint("keys are plain names such as id or brokers"))
			continue
		}
		if line, dup := first[k.Value]; dup {
			l.errs.Add(l.pos(file, k, join(path, k.Value)).At(diag.DuplicateName, "key %q appears twice in this mapping; first at line %d", k.Value, line).
				WithHint("remove or merge one of the two entries"))
			continue
		}
		first[k.Value] = k.Line
		out = append(out, keyValue{name: k.Value, key: k, val: v})
	}
	return out
}

// pos returns the place of node n in file, with the given path.
func (l *loader) pos(file string, n *yaml.Node, path string) diag.Pos {
	p := diag.Pos{File: file, Path: path}
	if n != nil {
		p.Line, p.Column = n.Line, n.Column
	}
	return p
}

// join appends key to a dotted path.
func join(path, key string) string {
	if path == "" {
		return key
	}
	if strings.ContainsAny(key, ".[] ") || key == "" {
		key = strconv.Quote(key)
	}
	return path + "." + key
}

// index appends [i] to a path.
func index(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }
