package instance

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"

	"github.com/veltrix/veltrix/internal/config"
	"github.com/veltrix/veltrix/internal/engine"
	"github.com/veltrix/veltrix/internal/topology"
	"github.com/veltrix/veltrix/pkg/diag"
)

// Loader reads the configuration again and builds its topology, as at
// start (veltrix run: the same files and environment).
type Loader func() (*config.Config, *topology.Topology, error)

// WithLoader sets how Reload reads the configuration; without it Reload
// fails.
func WithLoader(l Loader) Option { return func(o *options) { o.loader = l } }

// version is the running configuration's version.
type version struct {
	mu      sync.Mutex
	current string
}

// Version is the running configuration's version: a hash of its rules as
// built (topology.Description) and settings, changed by each applied
// reload.
func (in *Instance) Version() string {
	in.version.mu.Lock()
	defer in.version.mu.Unlock()
	return in.version.current
}

// versionOf hashes a configuration's settings and built rules.
func versionOf(cfg *config.Config, topo *topology.Topology) string {
	h := sha256.New()
	enc := json.NewEncoder(h)
	_ = enc.Encode(settingsOf(cfg))
	_ = enc.Encode(topo.Description())
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// settings are the parts of a configuration outside its rules: a reload
// that changes one of them is refused (they are read once, at start).
type settings struct {
	App        config.App
	Kafka      config.Kafka
	Processing config.Processing
	HTTP       config.HTTP
	Log        config.Log
	Tracing    config.Tracing
}

func settingsOf(cfg *config.Config) settings {
	return settings{cfg.App, cfg.Kafka, cfg.Processing, cfg.HTTP, cfg.Log, cfg.Tracing}
}

// changedSettings lists the sections of settings that differ ("kafka",
// "processing", ...), by their YAML names.
func changedSettings(a, b *config.Config) []string {
	va, vb := reflect.ValueOf(settingsOf(a)), reflect.ValueOf(settingsOf(b))
	var out []string
	for i := range va.NumField() {
		if !reflect.DeepEqual(va.Field(i).Interface(), vb.Field(i).Interface()) {
			out = append(out, strings.ToLower(va.Type().Field(i).Name))
		}
	}
	return out
}

// Reload reads the configuration again and, when only rules changed
// (parameters, expressions, filters, outputs, stateless rules) within the
// running topology's shape, makes the engine process records with them from
// its next transaction on, keeping every store. Otherwise nothing changes
// and the error says why: the configuration's problems (as validate lists
// them), VX6001 for a changed setting or VX6002 for a changed shape. It
// returns the running configuration's version.
func (in *Instance) Reload(ctx context.Context) (string, error) {
	in.reloadMu.Lock() // one at a time
	defer in.reloadMu.Unlock()
	v, result, err := in.reload(ctx)
	in.metrics.ConfigReloads.WithLabelValues(result).Inc()
	if err != nil {
		in.log.Warn("configuration not reloaded; the running one stays", "result", result, "err", err)
	} else {
		in.log.Info("configuration reloaded", "version", v)
	}
	return v, err
}

func (in *Instance) reload(ctx context.Context) (string, string, error) {
	current := in.Version()
	if in.loader == nil {
		return current, "failed", errors.New("reload: this instance has no configuration to read again")
	}
	cfg, topo, err := in.loader()
	if err != nil {
		return current, "invalid", err
	}
	if changed := changedSettings(in.cfg, cfg); len(changed) > 0 {
		return current, "refused", diag.List{{Code: diag.ReloadSettingChanged,
			File: cfg.File, Path: strings.Join(changed, ", "),
			Message: fmt.Sprintf("settings changed (%s): they are read at start", strings.Join(changed, ", ")),
			Hint:    "restart the instance to apply them (a rolling restart keeps the service up); a reload applies rule changes only"}}.Err()
	}
	if err := in.Engine.Reload(ctx, topo); err != nil {
		var shape *engine.ShapeChangedError
		if errors.As(err, &shape) {
			return current, "refused", diag.List{{Code: diag.ReloadShapeChanged, File: cfg.File, Path: "rules",
				Message: "the topology's shape changed: " + strings.Join(shape.Differences, "; "),
				Hint:    "sources, stores (and the steps that keep them) and repartitions need a restart; the running rules stay until then"}}.Err()
		}
		return current, "failed", err
	}
	next := versionOf(cfg, topo)
	in.version.mu.Lock()
	in.version.current = next
	in.version.mu.Unlock()
	return next, "applied", nil
}
