// Package deploy holds no code: its test keeps docker-compose.yml in step
// with deploy/kafka/, the Apache Kafka that the tests and benchmarks run
// (docker-compose cannot run on the machines the tests run on).
package deploy

import (
	"bufio"
	"os"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

type compose struct {
	Services map[string]struct {
		Image       string            `yaml:"image"`
		Environment map[string]string `yaml:"environment"`
		Ports       []string          `yaml:"ports"`
	} `yaml:"services"`
}

// properties reads key=value lines, skipping comments and blank lines.
func properties(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: %q is not key=value", path, line)
		}
		out[k] = v
	}
	if len(out) == 0 {
		t.Fatalf("%s has no settings", path)
	}
	return out
}

// envName is the apache/kafka image's variable for a broker setting.
func envName(key string) string {
	return "KAFKA_" + strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(key))
}

func TestComposeMatchesKafkaSh(t *testing.T) {
	b, err := os.ReadFile("../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var c compose
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	pom, err := os.ReadFile("kafka/pom.xml")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`<kafka.version>([^<]+)</kafka.version>`).FindSubmatch(pom)
	if m == nil {
		t.Fatal("no kafka.version in deploy/kafka/pom.xml")
	}
	version := string(m[1])

	for name, svc := range c.Services {
		if strings.HasPrefix(svc.Image, "apache/kafka:") && svc.Image != "apache/kafka:"+version {
			t.Errorf("service %s runs %s; deploy/kafka/pom.xml pins Kafka %s", name, svc.Image, version)
		}
		for _, p := range svc.Ports {
			if !strings.HasPrefix(p, "127.0.0.1:") {
				t.Errorf("service %s publishes %q on every interface; bind it to 127.0.0.1", name, p)
			}
		}
	}
	kafka, ok := c.Services["kafka"]
	if !ok {
		t.Fatal("docker-compose.yml has no kafka service")
	}
	want := properties(t, "kafka/broker.properties")
	for k, v := range properties(t, "kafka/replication.properties") {
		want[k] = strings.NewReplacer("${RF}", "1", "${MIN_ISR}", "1").Replace(v)
	}
	for k, v := range want {
		got, ok := kafka.Environment[envName(k)]
		switch {
		case !ok:
			t.Errorf("docker-compose.yml: kafka lacks %s (%s=%s in deploy/kafka)", envName(k), k, v)
		case got != v:
			t.Errorf("docker-compose.yml: kafka has %s=%s; deploy/kafka sets %s=%s", envName(k), got, k, v)
		}
	}
}

// The veltrix service restarts, publishes on 127.0.0.1 only (checked
// above) and has a health check that runs the image's own binary (the
// distroless image has no shell or curl): `veltrix health`, the same
// command as the Dockerfile's HEALTHCHECK, with a subcommand that exists.
func TestComposeVeltrixHealthCheck(t *testing.T) {
	b, err := os.ReadFile("../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Services map[string]struct {
			Restart     string `yaml:"restart"`
			Healthcheck struct {
				Test        []string `yaml:"test"`
				Interval    string   `yaml:"interval"`
				StartPeriod string   `yaml:"start_period"`
			} `yaml:"healthcheck"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	v, ok := c.Services["veltrix"]
	if !ok {
		t.Fatal("docker-compose.yml has no veltrix service")
	}
	if v.Restart == "" || v.Restart == "no" {
		t.Errorf("veltrix has restart %q, want a restart policy", v.Restart)
	}
	hc := v.Healthcheck.Test
	if len(hc) < 3 || hc[0] != "CMD" || hc[2] != "health" {
		t.Fatalf("veltrix healthcheck test %q, want the exec form [CMD, <binary>, health, ...] (no shell in the image)", hc)
	}
	if v.Healthcheck.Interval == "" || v.Healthcheck.StartPeriod == "" {
		t.Errorf("veltrix healthcheck lacks interval or start_period: %+v", v.Healthcheck)
	}

	df, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	dockerfile := string(df)
	if !strings.Contains(dockerfile, "COPY --from=build /out/veltrix "+hc[1]+"\n") {
		t.Errorf("the healthcheck runs %s, which the Dockerfile does not install", hc[1])
	}
	m := regexp.MustCompile(`(?m)^HEALTHCHECK .*CMD (\[.*\])$`).FindStringSubmatch(dockerfile)
	if m == nil {
		t.Fatal("the Dockerfile has no HEALTHCHECK ... CMD [...] (exec form)")
	}
	var cmd []string
	if err := yaml.Unmarshal([]byte(m[1]), &cmd); err != nil {
		t.Fatal(err)
	}
	if strings.Join(cmd, " ") != strings.Join(hc[1:], " ") {
		t.Errorf("Dockerfile HEALTHCHECK runs %q, docker-compose.yml %q: keep them the same", cmd, hc[1:])
	}

	src, err := os.ReadFile("../cmd/veltrix/health.go")
	if err != nil {
		t.Fatalf("the health subcommand: %v", err)
	}
	if !strings.Contains(string(src), `Use:   "`+hc[2]+`"`) {
		t.Errorf("cmd/veltrix/health.go does not define the %q subcommand", hc[2])
	}
}
