// Package config loads veltrix.yaml: the settings (app, kafka, processing,
// http, include) with defaults and environment overrides, and the templates
// and rules of the main file and of every included file.
//
// Load checks everything it can without compiling expressions or parsing
// steps (the topology package does that) and reports every problem at once,
// as a diag.List sorted by place. Each problem carries a stable code, the
// file, line, column and dotted path (rules[1].with.threshold), what was
// expected and found, and a hint.
//
// The settings schema is the struct tags in types.go (yaml, default, enum,
// min, doc): one reflective walker checks the YAML against them, fills
// defaults and applies VELTRIX_* environment overrides, and the same tags
// generate docs/configuration.md (a test keeps the two in step).
package config
