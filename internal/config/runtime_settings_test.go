package config

import (
	"testing"
	"time"

	"github.com/veltrix/veltrix/pkg/diag"
)

// The startup, shutdown and log settings: defaults, environment overrides
// and rejected values.
func TestRuntimeSettings(t *testing.T) {
	tests := []struct {
		name  string
		env   map[string]string
		check func(*Config) bool
		code  diag.Code // a rejected value's code, else ""
	}{
		{"defaults", nil, func(c *Config) bool {
			return c.Kafka.StartupTimeout == 60*time.Second && c.Processing.ShutdownTimeout == 30*time.Second &&
				c.Log.Format == LogText && c.Log.Level == "info"
		}, ""},
		{"startup timeout", map[string]string{"VELTRIX_KAFKA_STARTUP_TIMEOUT": "2s"},
			func(c *Config) bool { return c.Kafka.StartupTimeout == 2*time.Second }, ""},
		{"startup timeout 0: one attempt", map[string]string{"VELTRIX_KAFKA_STARTUP_TIMEOUT": "0s"},
			func(c *Config) bool { return c.Kafka.StartupTimeout == 0 }, ""},
		{"shutdown timeout", map[string]string{"VELTRIX_PROCESSING_SHUTDOWN_TIMEOUT": "5s"},
			func(c *Config) bool { return c.Processing.ShutdownTimeout == 5*time.Second }, ""},
		{"json log", map[string]string{"VELTRIX_LOG_FORMAT": "json"},
			func(c *Config) bool { return c.Log.Format == LogJSON }, ""},
		{"debug level", map[string]string{"VELTRIX_LOG_LEVEL": "debug"},
			func(c *Config) bool { return c.Log.Level == "debug" }, ""},
		{"error level", map[string]string{"VELTRIX_LOG_LEVEL": "error"},
			func(c *Config) bool { return c.Log.Level == "error" }, ""},
		{"unknown format", map[string]string{"VELTRIX_LOG_FORMAT": "xml"}, nil, "any"},
		{"unknown level", map[string]string{"VELTRIX_LOG_LEVEL": "trace"}, nil, "any"},
		{"negative startup timeout", map[string]string{"VELTRIX_KAFKA_STARTUP_TIMEOUT": "-1s"}, nil, "any"},
		{"zero shutdown timeout", map[string]string{"VELTRIX_PROCESSING_SHUTDOWN_TIMEOUT": "0s"}, nil, "any"},
		{"not a duration", map[string]string{"VELTRIX_PROCESSING_SHUTDOWN_TIMEOUT": "soon"}, nil, "any"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Load("testdata/full/veltrix.yaml", WithEnv(env(tt.env)))
			if tt.code != "" {
				if diag.AsList(err) == nil {
					t.Fatalf("Load with %v = %v, want a configuration problem", tt.env, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(cfg) {
				t.Errorf("%v not applied: kafka=%+v processing=%+v log=%+v", tt.env, cfg.Kafka, cfg.Processing, cfg.Log)
			}
		})
	}
}
