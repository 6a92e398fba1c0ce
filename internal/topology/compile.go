package topology

import (
	"github.com/veltrix/veltrix/internal/config"
	"github.com/veltrix/veltrix/pkg/diag"
)

// WithLoadOptions sets the options Compile passes to config.Load (the
// environment lookup, say).
func WithLoadOptions(opts ...config.Option) Option {
	return func(o *options) { o.load = append(o.load, opts...) }
}

// Compile is the one path from a configuration file to a topology: it loads
// path with config.Load and builds the result with Build, and returns every
// problem of both in one diag.List sorted by place, each reported once.
//
// The two halves split the work so that nothing is checked twice. The loader
// owns the file: settings, template declarations, each rule's template
// reference and its with: arguments (VX1xxx, VX2001 to VX2005, VX2007).
// Build owns the steps: it compiles step lists, binds `use:` steps (which
// the loader does not read), and skips what the loader already rejected (a
// rule whose template is unknown, a template whose parameters are
// malformed), so a problem is never raised by both.
//
// The Config comes back whenever the main file could be read, errors or
// not, for its Warnings; the Topology only when there is no problem.
func Compile(path string, opts ...Option) (*config.Config, *Topology, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	cfg, loadErr := config.Load(path, o.load...)
	return compiled(cfg, loadErr, opts)
}

// CompileFragment is Compile for a fragment checked against a running
// configuration (the console's validate box): it loads data with
// config.Fragment over base and builds the result, with the same split of
// the checks. The Config comes back when data is usable YAML.
func CompileFragment(base *config.Config, file string, data []byte, opts ...Option) (*config.Config, *Topology, error) {
	cfg, loadErr := config.Fragment(base, file, data)
	return compiled(cfg, loadErr, opts)
}

// compiled is the half of Compile after the loader: it builds cfg and returns
// the loader's and the builder's problems in one list.
func compiled(cfg *config.Config, loadErr error, opts []Option) (*config.Config, *Topology, error) {
	if cfg == nil {
		return nil, nil, loadErr
	}
	topo, buildErr := Build(cfg, opts...)
	if loadErr == nil && buildErr == nil {
		return cfg, topo, nil
	}
	var problems diag.List
	problems.Merge(loadErr)
	problems.Merge(buildErr)
	return cfg, nil, problems.Err()
}
