package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/veltrix/veltrix/pkg/diag"
)

// http.advertise, http.auth_token and http.auth_token_file: defaults,
// environment overrides, the token file, and rejected values (whose errors
// never show a token).
func TestHTTPSettings(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("  file-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	emptyFile := filepath.Join(dir, "empty")
	if err := os.WriteFile(emptyFile, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		env   map[string]string
		check func(*Config) bool
		code  diag.Code // a rejected value's code, else ""
	}{
		{"defaults", nil, func(c *Config) bool { return c.HTTP.Advertise == "" && c.HTTP.AuthToken == "" }, ""},
		{"advertise", map[string]string{"VELTRIX_HTTP_ADVERTISE": "veltrix-0.veltrix:8080"},
			func(c *Config) bool { return c.HTTP.Advertise == "veltrix-0.veltrix:8080" }, ""},
		{"advertise ipv6", map[string]string{"VELTRIX_HTTP_ADVERTISE": "[fd00::1]:8080"},
			func(c *Config) bool { return c.HTTP.Advertise == "[fd00::1]:8080" }, ""},
		{"token", map[string]string{"VELTRIX_HTTP_AUTH_TOKEN": "env-token"},
			func(c *Config) bool { return c.HTTP.AuthToken == "env-token" }, ""},
		{"token file", map[string]string{"VELTRIX_HTTP_AUTH_TOKEN_FILE": tokenFile},
			func(c *Config) bool { return c.HTTP.AuthToken == "file-token" }, ""},
		{"advertise with scheme", map[string]string{"VELTRIX_HTTP_ADVERTISE": "http://h:8080"}, nil, diag.InvalidValue},
		{"advertise with path", map[string]string{"VELTRIX_HTTP_ADVERTISE": "h:8080/x"}, nil, diag.InvalidValue},
		{"advertise without port", map[string]string{"VELTRIX_HTTP_ADVERTISE": "h"}, nil, diag.InvalidValue},
		{"token and file", map[string]string{"VELTRIX_HTTP_AUTH_TOKEN": "env-token", "VELTRIX_HTTP_AUTH_TOKEN_FILE": tokenFile}, nil, diag.InvalidValue},
		{"missing file", map[string]string{"VELTRIX_HTTP_AUTH_TOKEN_FILE": filepath.Join(dir, "nope")}, nil, diag.FileUnreadable},
		{"empty file", map[string]string{"VELTRIX_HTTP_AUTH_TOKEN_FILE": emptyFile}, nil, diag.InvalidValue},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Load("testdata/full/veltrix.yaml", WithEnv(env(tt.env)))
			if tt.code != "" {
				list := diag.AsList(err)
				if list == nil {
					t.Fatalf("Load with %v = %v, want a configuration problem", tt.env, err)
				}
				found := false
				for _, e := range list {
					found = found || e.Code == tt.code
				}
				if !found {
					t.Errorf("Load with %v = %v, want %s", tt.env, err, tt.code)
				}
				if msg := err.Error(); strings.Contains(msg, "env-token") || strings.Contains(msg, "file-token") {
					t.Errorf("the error shows the token: %s", msg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(cfg) {
				t.Errorf("%v not applied: http=%+v", tt.env, cfg.HTTP)
			}
		})
	}
}
