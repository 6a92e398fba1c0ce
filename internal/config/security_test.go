package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/veltrix/veltrix/pkg/diag"
)

// selfSigned writes a self-signed certificate and its key as PEM files in
// dir and returns their paths.
func selfSigned(t *testing.T, dir, name string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	writeFile(t, certFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	writeFile(t, keyFile, string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})))
	return certFile, keyFile
}

// kafka.tls and kafka.sasl: what validates is what connects. Each case sets
// the kafka section in a file (so that places are checked) and/or through
// the environment, and names the error codes and warning codes expected.
func TestKafkaSecuritySettings(t *testing.T) {
	dir := t.TempDir()
	ca, caKey := selfSigned(t, dir, "ca")
	client, clientKey := selfSigned(t, dir, "client")
	notPEM := filepath.Join(dir, "not.pem")
	writeFile(t, notPEM, "hello\n")
	pwFile := filepath.Join(dir, "pw")
	writeFile(t, pwFile, "s3cret pass\n")
	pwCRLF := filepath.Join(dir, "pw-crlf")
	writeFile(t, pwCRLF, "s3cret\r\n")
	emptyPW := filepath.Join(dir, "empty")
	writeFile(t, emptyPW, "\n")
	missing := filepath.Join(dir, "missing.pem")

	tests := []struct {
		name     string
		kafka    string // YAML of the kafka section's tls and sasl keys
		env      map[string]string
		errs     []diag.Code
		warnings []diag.Code
		path     string // the path of the first error, when errs is set
		check    func(*Config) bool
	}{
		{name: "no tls no sasl", kafka: ``},
		{name: "tls with ca", kafka: `tls: {enabled: true, ca_file: ` + ca + `, server_name: kafka.internal}`,
			check: func(c *Config) bool { return c.Kafka.TLS.ServerName == "kafka.internal" }},
		{name: "mutual tls", kafka: `tls: {enabled: true, ca_file: ` + ca + `, cert_file: ` + client + `, key_file: ` + clientKey + `}`},
		{name: "ca file with tls off", kafka: `tls: {ca_file: ` + ca + `}`, errs: []diag.Code{diag.SettingIgnored}, path: "kafka.tls.ca_file"},
		{name: "server name with tls off", env: map[string]string{"VELTRIX_KAFKA_TLS_SERVER_NAME": "k"}, errs: []diag.Code{diag.SettingIgnored}, path: "kafka.tls.server_name"},
		{name: "skip verify with tls off", kafka: `tls: {insecure_skip_verify: true}`, errs: []diag.Code{diag.SettingIgnored}},
		{name: "missing ca", kafka: `tls: {enabled: true, ca_file: ` + missing + `}`, errs: []diag.Code{diag.FileUnreadable}, path: "kafka.tls.ca_file"},
		{name: "ca not pem", kafka: `tls: {enabled: true, ca_file: ` + notPEM + `}`, errs: []diag.Code{diag.TLSMaterialInvalid}, path: "kafka.tls.ca_file"},
		{name: "missing key file", kafka: `tls: {enabled: true, cert_file: ` + client + `, key_file: ` + missing + `}`, errs: []diag.Code{diag.FileUnreadable}, path: "kafka.tls.key_file"},
		{name: "cert without key", kafka: `tls: {enabled: true, cert_file: ` + client + `}`, errs: []diag.Code{diag.MissingRequired}, path: "kafka.tls.cert_file"},
		{name: "key without cert", kafka: `tls: {enabled: true, key_file: ` + clientKey + `}`, errs: []diag.Code{diag.MissingRequired}, path: "kafka.tls.key_file"},
		{name: "key of another cert", kafka: `tls: {enabled: true, cert_file: ` + client + `, key_file: ` + caKey + `}`, errs: []diag.Code{diag.TLSMaterialInvalid}, path: "kafka.tls.cert_file"},
		{name: "scram", kafka: `sasl: {mechanism: SCRAM-SHA-512, username: u}`, env: map[string]string{"VELTRIX_KAFKA_SASL_PASSWORD": "p"}},
		{name: "mechanism in lower case", kafka: `sasl: {mechanism: scram-sha-256, username: u, password: p}`,
			check: func(c *Config) bool { return c.Kafka.SASL.Mechanism == "SCRAM-SHA-256" }},
		{name: "env mechanism in mixed case", env: map[string]string{"VELTRIX_KAFKA_SASL_MECHANISM": "Scram-Sha-512", "VELTRIX_KAFKA_SASL_USERNAME": "u", "VELTRIX_KAFKA_SASL_PASSWORD": "p"},
			check: func(c *Config) bool { return c.Kafka.SASL.Mechanism == "SCRAM-SHA-512" }},
		{name: "unknown mechanism", kafka: `sasl: {mechanism: GSSAPI, username: u, password: p}`, errs: []diag.Code{diag.InvalidValue}},
		{name: "scram empty user", kafka: `sasl: {mechanism: SCRAM-SHA-256, password: p}`, errs: []diag.Code{diag.CredentialsMissing}, path: "kafka.sasl.username"},
		{name: "scram empty password", kafka: `sasl: {mechanism: SCRAM-SHA-256, username: u, password: ""}`, errs: []diag.Code{diag.CredentialsMissing}, path: "kafka.sasl.password"},
		{name: "plain without tls", kafka: `sasl: {mechanism: PLAIN, username: u, password: p}`, warnings: []diag.Code{diag.PlaintextCredentials}},
		{name: "plain with tls", kafka: `{tls: {enabled: true}, sasl: {mechanism: plain, username: u, password: p}}`,
			check: func(c *Config) bool { return c.Kafka.SASL.Mechanism == "PLAIN" }},
		{name: "password file", kafka: `sasl: {mechanism: SCRAM-SHA-256, username: u, password_file: ` + pwFile + `}`,
			check: func(c *Config) bool { return c.Kafka.SASL.Password == "s3cret pass" }},
		{name: "password file crlf", env: map[string]string{"VELTRIX_KAFKA_SASL_MECHANISM": "SCRAM-SHA-256", "VELTRIX_KAFKA_SASL_USERNAME": "u", "VELTRIX_KAFKA_SASL_PASSWORD_FILE": pwCRLF},
			check: func(c *Config) bool { return c.Kafka.SASL.Password == "s3cret" }},
		{name: "password and file", kafka: `sasl: {mechanism: SCRAM-SHA-256, username: u, password: p, password_file: ` + pwFile + `}`, errs: []diag.Code{diag.InvalidValue}, path: "kafka.sasl.password_file"},
		{name: "missing password file", kafka: `sasl: {mechanism: SCRAM-SHA-256, username: u, password_file: ` + missing + `}`, errs: []diag.Code{diag.FileUnreadable}, path: "kafka.sasl.password_file"},
		{name: "empty password file", kafka: `sasl: {mechanism: SCRAM-SHA-256, username: u, password_file: ` + emptyPW + `}`, errs: []diag.Code{diag.CredentialsMissing}, path: "kafka.sasl.password_file"},
		{name: "credentials without mechanism", kafka: `sasl: {username: u, password: p}`, errs: []diag.Code{diag.SettingIgnored, diag.SettingIgnored}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "veltrix.yaml")
			body := "app: {id: sec}\nrules: []\n"
			if tt.kafka != "" {
				if strings.HasPrefix(tt.kafka, "{") {
					body += "kafka: " + tt.kafka + "\n"
				} else {
					body += "kafka: {" + tt.kafka + "}\n"
				}
			}
			writeFile(t, file, body)
			cfg, err := Load(file, WithEnv(env(tt.env)))
			if msg := ""; err != nil {
				msg = err.Error()
				for _, secret := range []string{"s3cret", ": p\n", "password p"} {
					if strings.Contains(msg, secret) {
						t.Errorf("the error shows a password: %s", msg)
					}
				}
			}
			got := diag.AsList(err)
			if err != nil && got == nil {
				t.Fatalf("Load = %v, want a diag.List", err)
			}
			if codes := got.Codes(); !slices.Equal(codes, tt.errs) && !(len(codes) == 0 && len(tt.errs) == 0) {
				t.Fatalf("errors %v, want %v:\n%v", codes, tt.errs, err)
			}
			if len(tt.errs) > 0 && tt.path != "" && got[0].Path != tt.path {
				t.Errorf("error at %q, want %q: %v", got[0].Path, tt.path, got[0])
			}
			for _, e := range got {
				if e.IsWarning() {
					t.Errorf("Load returned a warning as an error: %v", e)
				}
				if e.Hint == "" {
					t.Errorf("%v has no hint", e)
				}
			}
			if codes := cfg.Warnings.Codes(); !slices.Equal(codes, tt.warnings) && !(len(codes) == 0 && len(tt.warnings) == 0) {
				t.Errorf("warnings %v, want %v", codes, tt.warnings)
			}
			for _, w := range cfg.Warnings {
				if !w.IsWarning() || !strings.Contains(w.Error(), "warning "+string(w.Code)) {
					t.Errorf("warning %q is not marked as one", w.Error())
				}
			}
			if tt.check != nil && !tt.check(cfg) {
				t.Errorf("not applied: kafka=%+v", cfg.Kafka)
			}
		})
	}
}
