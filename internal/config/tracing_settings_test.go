package config

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/veltrix/veltrix/pkg/diag"
)

// tracing.sample_ratio: a float between 0 and 1, from the file or the
// environment; anything else is a coded problem at its place.
func TestTracingSampleRatio(t *testing.T) {
	tests := []struct {
		name string
		file string // the tracing mapping's body, "" for none
		env  map[string]string
		want float64
		code diag.Code // a rejected value's code, else ""
	}{
		{name: "default off", want: 0},
		{name: "file", file: "sample_ratio: 0.25", want: 0.25},
		{name: "file whole number", file: "sample_ratio: 1", want: 1},
		{name: "env", env: map[string]string{"VELTRIX_TRACING_SAMPLE_RATIO": "0.01"}, want: 0.01},
		{name: "env wins over file", file: "sample_ratio: 0.5", env: map[string]string{"VELTRIX_TRACING_SAMPLE_RATIO": "1e-3"}, want: 0.001},
		{name: "above 1", file: "sample_ratio: 1.5", code: diag.InvalidValue},
		{name: "negative", file: "sample_ratio: -0.1", code: diag.InvalidValue},
		{name: "string", file: `sample_ratio: "half"`, code: diag.WrongType},
		{name: "env not a number", env: map[string]string{"VELTRIX_TRACING_SAMPLE_RATIO": "half"}, code: diag.EnvInvalid},
		{name: "env NaN", env: map[string]string{"VELTRIX_TRACING_SAMPLE_RATIO": "NaN"}, code: diag.EnvInvalid},
		{name: "env above 1", env: map[string]string{"VELTRIX_TRACING_SAMPLE_RATIO": "2"}, code: diag.EnvInvalid},
		{name: "unknown key", file: "sample_rate: 0.5", code: diag.UnknownKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "app: {id: traced}\n"
			if tt.file != "" {
				src += "tracing:\n  " + tt.file + "\n"
			}
			path := filepath.Join(t.TempDir(), "veltrix.yaml")
			if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
			cfg, err := Load(path, WithEnv(env(tt.env)))
			if tt.code != "" {
				list := diag.AsList(err)
				if len(list) != 1 || list[0].Code != tt.code || list[0].Path != "tracing.sample_ratio" && tt.code != diag.UnknownKey {
					t.Fatalf("Load = %v, want one %s at tracing.sample_ratio", err, tt.code)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Tracing.SampleRatio != tt.want {
				t.Errorf("tracing.sample_ratio = %v, want %v", cfg.Tracing.SampleRatio, tt.want)
			}
		})
	}
}
