package config

import (
	"gopkg.in/yaml.v3"

	"github.com/veltrix/veltrix/pkg/diag"
)

// TopicKey declares what an input topic's records are keyed by: the
// top-level topics: section, `topics: {orders: {key: event.order_id}}`.
// A step that groups by that expression (an aggregate's key, a join's key,
// ...) then needs no repartition on that topic. The topology compiles Key
// as CEL (VX3001, VX3002) and reports an entry for a topic no rule reads
// (VX3007).
type TopicKey struct {
	Topic  string
	Key    string   // a CEL expression over the event
	Pos    diag.Pos // of the topic's name
	KeyPos diag.Pos // of the key's value
	// KeyNode is the key's value, so that the expression is compiled with
	// its exact place (a quoted scalar starts one column later).
	KeyNode *yaml.Node
}

var topicKeys = []string{"key"}

// topics reads the topics: section of the main file.
func (l *loader) topics(cfg *Config, file string, n *yaml.Node) {
	n = resolve(n)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		l.wrongType(file, n, "topics", "mapping of topic names", "write topics: {orders: {key: event.order_id}}")
		return
	}
	for _, kv := range l.pairs(n, "topics", file) {
		path := join("topics", kv.name)
		if !l.topic(kv.key, file, path) {
			continue
		}
		val := resolve(kv.val)
		if isNull(val) || val.Kind != yaml.MappingNode {
			l.wrongType(file, val, path, "mapping with key:", "write "+kv.name+": {key: event.order_id}")
			continue
		}
		tk := &TopicKey{Topic: kv.name, Pos: l.pos(file, kv.key, path)}
		for _, f := range l.pairs(val, path, file) {
			fpath := join(path, f.name)
			if f.name != "key" {
				l.unknownKey(l.pos(file, f.key, fpath), f.name, topicKeys, "an entry of topics: has the key key: (what the records are keyed by)")
				continue
			}
			fv := resolve(f.val)
			if !isString(fv) || fv.Value == "" {
				l.wrongType(file, fv, fpath, "expression", "write the expression the record key equals, e.g. event.order_id")
				continue
			}
			tk.Key, tk.KeyNode, tk.KeyPos = fv.Value, fv, l.pos(file, fv, fpath)
		}
		if tk.KeyNode == nil {
			if len(l.pairs(val, path, file)) == 0 {
				l.errs.Add(l.pos(file, val, path).At(diag.MissingRequired, "topic %q declares no key", kv.name).
					With("key:", "nothing").WithHint("write %s: {key: event.order_id}, or remove the entry", kv.name))
			}
			continue
		}
		cfg.Topics = append(cfg.Topics, tk)
	}
}

// TopicKeyOf returns the declaration of topic, or nil.
func (c *Config) TopicKeyOf(topic string) *TopicKey {
	for _, t := range c.Topics {
		if t.Topic == topic {
			return t
		}
	}
	return nil
}
