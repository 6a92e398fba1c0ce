package kafkaconn

import (
	"path/filepath"
	"testing"

	"github.com/veltrix/veltrix/internal/config"
)

func TestOptions(t *testing.T) {
	tests := []struct {
		name    string
		k       config.Kafka
		wantErr bool
	}{
		{"plaintext", config.Kafka{Brokers: []string{"b:9092"}}, false},
		{"scram lower case", config.Kafka{SASL: config.SASL{Mechanism: "scram-sha-256", Username: "u", Password: "p"}}, false},
		{"plain", config.Kafka{SASL: config.SASL{Mechanism: "PLAIN", Username: "u", Password: "p"}}, false},
		{"unknown mechanism", config.Kafka{SASL: config.SASL{Mechanism: "GSSAPI"}}, true},
		{"tls with server name", config.Kafka{TLS: config.TLS{Enabled: true, ServerName: "kafka.internal"}}, false},
		{"tls with a missing ca", config.Kafka{TLS: config.TLS{Enabled: true, CAFile: filepath.Join(t.TempDir(), "none.pem")}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Options(tt.k); (err != nil) != tt.wantErr {
				t.Errorf("Options = %v, want an error: %v", err, tt.wantErr)
			}
		})
	}
}

// kafka.tls.server_name is the name the brokers' certificates are checked
// against; empty leaves it to each broker address's host.
func TestTLSServerName(t *testing.T) {
	for _, name := range []string{"", "kafka.internal"} {
		tc, err := tlsConfig(config.TLS{Enabled: true, ServerName: name})
		if err != nil {
			t.Fatal(err)
		}
		if tc.ServerName != name {
			t.Errorf("ServerName = %q, want %q", tc.ServerName, name)
		}
	}
}
