package config

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"strings"

	"github.com/veltrix/veltrix/pkg/diag"
)

// checkKafkaSecurity checks the kafka.tls and kafka.sasl settings so that a
// configuration that validates also connects the way it says: TLS options
// are not silently dropped, the files they name are read and parsed here
// (not first at run), a SASL mechanism has credentials, and PLAIN without
// TLS is warned about. It reads kafka.sasl.password_file into Password.
// No error or warning ever shows a password.
func (l *loader) checkKafkaSecurity(cfg *Config, src *sources) {
	l.checkTLS(&cfg.Kafka.TLS, src)
	l.checkSASL(cfg, src)
}

// tlsOptions are the kafka.tls settings that only mean something with
// kafka.tls.enabled: true.
var tlsOptions = []struct {
	key string
	set func(TLS) bool
}{
	{"kafka.tls.ca_file", func(t TLS) bool { return t.CAFile != "" }},
	{"kafka.tls.cert_file", func(t TLS) bool { return t.CertFile != "" }},
	{"kafka.tls.key_file", func(t TLS) bool { return t.KeyFile != "" }},
	{"kafka.tls.server_name", func(t TLS) bool { return t.ServerName != "" }},
	{"kafka.tls.insecure_skip_verify", func(t TLS) bool { return t.InsecureSkipVerify }},
}

func (l *loader) checkTLS(t *TLS, src *sources) {
	if !t.Enabled {
		for _, o := range tlsOptions {
			if o.set(*t) {
				l.errs.Add(src.atOr(o.key).At(diag.SettingIgnored, "%s is set but kafka.tls.enabled is false: the connection would be plaintext", o.key).
					WithHint("set kafka.tls.enabled: true (VELTRIX_KAFKA_TLS_ENABLED=true) to use TLS, or remove %s", o.key))
			}
		}
		return
	}
	if t.CAFile != "" {
		if pem, ok := l.readTLSFile(src, "kafka.tls.ca_file", t.CAFile); ok {
			if !x509.NewCertPool().AppendCertsFromPEM(pem) {
				l.errs.Add(src.atOr("kafka.tls.ca_file").At(diag.TLSMaterialInvalid, "kafka.tls.ca_file %s holds no PEM certificate", quote(t.CAFile)).
					With("PEM certificates (-----BEGIN CERTIFICATE-----)", "none").
					WithHint("point ca_file at the PEM file of the CA that signed the brokers' certificates"))
			}
		}
	}
	switch {
	case t.CertFile != "" && t.KeyFile == "":
		l.errs.Add(src.atOr("kafka.tls.cert_file").At(diag.MissingRequired, "kafka.tls.cert_file is set without kafka.tls.key_file").
			WithHint("mutual TLS needs both: set kafka.tls.key_file to the certificate's PEM private key"))
	case t.KeyFile != "" && t.CertFile == "":
		l.errs.Add(src.atOr("kafka.tls.key_file").At(diag.MissingRequired, "kafka.tls.key_file is set without kafka.tls.cert_file").
			WithHint("mutual TLS needs both: set kafka.tls.cert_file to the PEM client certificate"))
	case t.CertFile != "":
		cert, okCert := l.readTLSFile(src, "kafka.tls.cert_file", t.CertFile)
		key, okKey := l.readTLSFile(src, "kafka.tls.key_file", t.KeyFile)
		if okCert && okKey {
			if _, err := tls.X509KeyPair(cert, key); err != nil {
				l.errs.Add(src.atOr("kafka.tls.cert_file").At(diag.TLSMaterialInvalid, "kafka.tls.cert_file %s and key_file %s: %v", quote(t.CertFile), quote(t.KeyFile), err).
					WithHint("cert_file is the PEM client certificate, key_file its PEM private key; check that they belong together"))
			}
		}
	}
}

// readTLSFile reads a file a TLS setting names, reporting VX1001 when it
// cannot.
func (l *loader) readTLSFile(src *sources, key, path string) ([]byte, bool) {
	b, err := os.ReadFile(path) // relative to the working directory, as veltrix run reads it
	if err != nil {
		l.errs.Add(src.atOr(key).At(diag.FileUnreadable, "%s: cannot read %s: %v", key, quote(path), unwrapPathError(err)).
			WithHint("check the path (a relative path is from the working directory) and that the user Veltrix runs as may read it"))
		return nil, false
	}
	return b, true
}

func (l *loader) checkSASL(cfg *Config, src *sources) {
	s := &cfg.Kafka.SASL
	if s.PasswordFile != "" {
		if s.Password != "" {
			l.errs.Add(src.atOr("kafka.sasl.password_file").At(diag.InvalidValue, "kafka.sasl.password and kafka.sasl.password_file are both set").
				WithHint("keep one of them"))
			return
		}
		b, err := os.ReadFile(s.PasswordFile)
		if err != nil {
			l.errs.Add(src.atOr("kafka.sasl.password_file").At(diag.FileUnreadable, "kafka.sasl.password_file: cannot read %s: %v", quote(s.PasswordFile), unwrapPathError(err)).
				WithHint("the file holds the SASL password; check the path (a relative path is from the working directory) and its permissions"))
			return
		}
		pw := strings.TrimSuffix(string(b), "\n")
		s.Password = strings.TrimSuffix(pw, "\r")
	}
	if s.Mechanism == "" {
		if l.rejected("kafka.sasl.mechanism") {
			return // the mechanism given was not valid: already reported
		}
		for _, k := range []struct {
			key string
			set bool
		}{{"kafka.sasl.username", s.Username != ""}, {"kafka.sasl.password", s.Password != "" && s.PasswordFile == ""}, {"kafka.sasl.password_file", s.PasswordFile != ""}} {
			if k.set {
				l.errs.Add(src.atOr(k.key).At(diag.SettingIgnored, "%s is set but kafka.sasl.mechanism is empty: no SASL authentication would be done", k.key).
					WithHint("set kafka.sasl.mechanism to PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, or remove %s", k.key))
			}
		}
		return
	}
	if s.Username == "" {
		l.errs.Add(src.atOr("kafka.sasl.username").At(diag.CredentialsMissing, "kafka.sasl.mechanism %s needs kafka.sasl.username, which is empty", s.Mechanism).
			WithHint("set kafka.sasl.username (or VELTRIX_KAFKA_SASL_USERNAME)"))
	}
	if s.Password == "" {
		key := "kafka.sasl.password"
		if s.PasswordFile != "" {
			key = "kafka.sasl.password_file"
		}
		l.errs.Add(src.atOr(key).At(diag.CredentialsMissing, "kafka.sasl.mechanism %s needs a password, and %s is empty", s.Mechanism, key).
			WithHint("set VELTRIX_KAFKA_SASL_PASSWORD or kafka.sasl.password_file (a file holding the password)"))
	}
	if s.Mechanism == "PLAIN" && !cfg.Kafka.TLS.Enabled {
		cfg.Warnings.Add(src.atOr("kafka.sasl.mechanism").At(diag.PlaintextCredentials, "SASL PLAIN without TLS sends the password in clear text").
			WithHint("set kafka.tls.enabled: true, or use SCRAM-SHA-256 or SCRAM-SHA-512, which never send the password").AsWarning())
	}
}

// rejected reports whether a problem was already found with the value at
// path (it then resolved to its default).
func (l *loader) rejected(path string) bool {
	for _, e := range l.errs {
		if e.Path == path {
			return true
		}
	}
	return false
}
