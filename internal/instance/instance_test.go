package instance

import (
	"os"
	"testing"
)

func TestAdvertised(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Skip("no host name")
	}
	for in, want := range map[string]string{
		"127.0.0.1:8080": "127.0.0.1:8080",
		"0.0.0.0:8080":   host + ":8080",
		"[::]:9000":      host + ":9000",
		"10.1.2.3:80":    "10.1.2.3:80",
		"nonsense":       "nonsense",
	} {
		if got := advertised(in); got != want {
			t.Errorf("advertised(%q) = %q, want %q", in, got, want)
		}
	}
}
