package config

import (
	"path/filepath"
	"regexp"
	"slices"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/veltrix/veltrix/pkg/diag"
)

// Config is a loaded, schema-checked configuration: the settings (app, kafka,
// processing, http) with defaults and environment overrides applied, plus the
// templates and rules from the main file and every included file.
//
// Steps are kept as YAML nodes with their source file: the topology package
// parses and compiles them with the step kinds' specs, so each error it finds
// still knows its line.
type Config struct {
	File string `yaml:"-"` // path of the main file as given
	// origins is where each setting's value came from (see Origin).
	origins map[string]diag.Pos

	App        App        `yaml:"app"`
	Kafka      Kafka      `yaml:"kafka"`
	Processing Processing `yaml:"processing"`
	HTTP       HTTP       `yaml:"http"`
	Log        Log        `yaml:"log"`
	Tracing    Tracing    `yaml:"tracing"`
	Include    []string   `yaml:"include" doc:"globs of rule and template files, relative to the main file"`

	Templates []*Template `yaml:"-"` // in file order
	Rules     []*Rule     `yaml:"-"` // in file order
	// Topics are the keys declared in the topics: section, in file order.
	Topics []*TopicKey `yaml:"-"`

	// Warnings are problems that do not stop the configuration from being
	// used (diag.SeverityWarning), e.g. SASL PLAIN without TLS. Load never
	// returns them as its error; validate prints them, run logs them.
	Warnings diag.List `yaml:"-"`
}

// App identifies the application.
type App struct {
	ID       string `yaml:"id" default:"veltrix" doc:"consumer group id, transactional id prefix and internal topic prefix"`
	StateDir string `yaml:"state_dir" default:"./data/state" doc:"directory of the local Pebble state stores"`
	// InstanceID is the group.instance.id of static group membership.
	InstanceID string `yaml:"instance_id" default:"" doc:"static group membership id (group.instance.id), also the suffix of the transactional id (app.id-<this>): a restarted instance with the same id gets its partitions back at once instead of waiting out its old session, and fences the transaction its dead run left open; empty: the host name and a hash of state_dir's path, stable across restarts, with or without the dir's contents; a clean stop leaves the group so that others take over at once"`
	// StateMinFreeBytes is the room the state directory's file system must
	// keep: below it, processing pauses (VX7001) until space comes back.
	StateMinFreeBytes int `yaml:"state_min_free_bytes" default:"67108864" min:"0" doc:"processing pauses (not ready, VX7001 logged, nothing written or committed) while the file system of state_dir has less free space than this, and resumes when it has; Pebble cannot carry on after a write fails for a full disk; 0 turns the check off"`
	// WatchConfig reloads the configuration when its files change.
	WatchConfig bool `yaml:"watch_config" default:"false" doc:"reload the configuration when a YAML file in its directories (the main file's, the include patterns') changes, as on SIGHUP: rule changes apply with state kept, anything else is refused and logged"`
}

// Kafka says how to reach the cluster.
type Kafka struct {
	Brokers []string `yaml:"brokers" default:"localhost:9092" doc:"seed brokers, host:port"`
	TLS     TLS      `yaml:"tls"`
	SASL    SASL     `yaml:"sasl"`

	SessionTimeout   time.Duration `yaml:"session_timeout" default:"45s" min:"100ms" doc:"consumer group session timeout: how long a silent (crashed) instance keeps its partitions"`
	RebalanceTimeout time.Duration `yaml:"rebalance_timeout" default:"60s" min:"100ms" doc:"how long the group waits for members to rejoin during a rebalance"`
	// MaxRecordBytes bounds a record Veltrix produces, checked before it
	// is produced so that a too large output is a per-record error
	// (VX5006) and not a refused transaction.
	// StartupTimeout bounds how long `veltrix run` retries a cluster it
	// cannot reach at start before it gives up with exit code 3.
	StartupTimeout time.Duration `yaml:"startup_timeout" default:"60s" min:"0s" doc:"how long veltrix run retries, with backoff, a cluster it cannot reach at start (each attempt logged with its error and the next delay) before it exits with code 3; 0: one attempt"`
	MaxRecordBytes int           `yaml:"max_record_bytes" default:"1000000" min:"1024" doc:"largest record Veltrix produces (key, value and headers); a larger output is a per-record error (VX5006) under the rule's on_error, a DLQ record is shortened to fit; keep it at or below the topics' max.message.bytes (broker default 1048588)"`
}

// TLS configures TLS to the brokers.
type TLS struct {
	Enabled            bool   `yaml:"enabled" default:"false" doc:"dial the brokers with TLS"`
	CAFile             string `yaml:"ca_file" doc:"PEM file of CAs to trust (system roots when empty)"`
	CertFile           string `yaml:"cert_file" doc:"PEM client certificate for mutual TLS"`
	KeyFile            string `yaml:"key_file" doc:"PEM client key for mutual TLS"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify" default:"false" doc:"do not verify the brokers' certificates (testing only)"`
	ServerName         string `yaml:"server_name" doc:"host name the brokers' certificates are checked against (SNI); empty: the host of each broker address"`
}

// SASL configures SASL authentication.
type SASL struct {
	Mechanism string `yaml:"mechanism" enum:",PLAIN,SCRAM-SHA-256,SCRAM-SHA-512" fold:"true" doc:"empty (no SASL), PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (any letter case); a mechanism needs username and a password; PLAIN without TLS is warned about (VX1111)"`
	Username  string `yaml:"username" doc:"SASL user name"`
	Password  string `yaml:"password" doc:"SASL password (prefer the VELTRIX_KAFKA_SASL_PASSWORD environment variable or password_file); never logged"`
	// PasswordFile is read at load into Password.
	PasswordFile string `yaml:"password_file" doc:"file holding the SASL password, read at start (one trailing newline removed; a relative path is from the working directory), e.g. a mounted secret; not with password"`
}

// Guarantees.
const (
	ExactlyOnce = "exactly_once"
	AtLeastOnce = "at_least_once"
)

// Processing tunes the engine.
type Processing struct {
	Guarantee      string        `yaml:"guarantee" default:"exactly_once" enum:"exactly_once,at_least_once" doc:"exactly_once (Kafka transactions) or at_least_once"`
	CommitInterval time.Duration `yaml:"commit_interval" default:"100ms" min:"1ms" doc:"how often outputs, state and offsets are committed"`
	Workers        int           `yaml:"workers" default:"0" min:"0" doc:"tasks (input partitions) processed at once; 0: one per CPU (GOMAXPROCS)"`
	MaxPollRecords int           `yaml:"max_poll_records" default:"10000" min:"1" doc:"records taken from the client per poll; at most twice as many wait for the tasks, which bounds the work buffered in memory"`
	// TransactionTimeout bounds how long a transaction of a crashed instance
	// that never restarts (with the same state dir) holds back
	// read_committed consumers of its outputs; Kafka Streams uses 10s too.
	TransactionTimeout time.Duration `yaml:"transaction_timeout" default:"10s" min:"1s" doc:"exactly_once: the broker aborts a transaction left open this long (an instance that died); must exceed commit_interval"`
	// MaxEventTimeSkew keeps one far-future event from moving stream time
	// (closing every window, expiring every dedupe id) for good.
	MaxEventTimeSkew time.Duration `yaml:"max_event_time_skew" default:"1h" min:"0s" doc:"a record whose timestamp is further ahead of the wall clock fails with VX5008 under the rule's on_error and does not move stream time; 0 disables the check"`
	// ShutdownTimeout bounds a stop: with the cluster gone, committing or
	// aborting the open transaction could otherwise wait forever.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout" default:"30s" min:"1ms" doc:"after SIGINT/SIGTERM, how long the instance has to commit or abort its open transaction and close; then it exits with code 1, logging what it abandoned (the broker aborts an open transaction after transaction_timeout: nothing is lost or duplicated); a second signal exits at once"`
}

// HTTP configures the HTTP server.
type HTTP struct {
	Listen string `yaml:"listen" default:"127.0.0.1:8080" doc:"address of /metrics, /healthz, /readyz, /v1 and the console at /; empty disables the server"`
	// Advertise is what other instances call for keys this one owns; it
	// travels in the group's member metadata, so it must be a plain
	// host:port.
	Advertise string `yaml:"advertise" doc:"host:port other instances use to reach this one's /v1 (interactive queries of keys it owns); empty: the bound listen address, with the host name for a wildcard host (0.0.0.0, ::); set it when listening on a wildcard or loopback address that peers cannot use as is"`
	// AuthToken guards /v1/*; never logged nor shown by /v1.
	AuthToken string `yaml:"auth_token" doc:"when set, /v1/* requires the header Authorization: Bearer <token> and peer calls send it (every instance needs the same token), and the console at / asks for it once (a login form); /metrics, /healthz and /readyz stay open; prefer VELTRIX_HTTP_AUTH_TOKEN or auth_token_file"`
	// AuthTokenFile is read at load into AuthToken.
	AuthTokenFile string `yaml:"auth_token_file" doc:"file holding http.auth_token (surrounding white space ignored; a relative path is from the working directory), e.g. a mounted secret; not with auth_token"`
	// ReadyTimeout ends readiness when the brokers stop answering.
	ReadyTimeout time.Duration `yaml:"ready_timeout" default:"15s" min:"0s" doc:"/readyz answers 503 when no broker has answered for this long (the brokers are gone; fetches and heartbeats get answers every few seconds); 0: not checked"`
}

// Log formats.
const (
	LogText = "text"
	LogJSON = "json"
)

// Log configures the process's log (stderr).
type Log struct {
	Format string `yaml:"format" default:"text" enum:"text,json" doc:"text (logfmt-like key=value) or json (one JSON object per line)"`
	Level  string `yaml:"level" default:"info" enum:"debug,info,warn,error" doc:"least severe level logged: debug, info, warn or error (the Kafka client logs at warn and above)"`
}

// Tracing configures OpenTelemetry tracing of records through the rules
// (package tracing). Where spans go is set by the standard OTEL_*
// environment variables, not here.
type Tracing struct {
	// SampleRatio 0 turns tracing off entirely: no header is read or
	// written and a record costs nothing more.
	SampleRatio float64 `yaml:"sample_ratio" default:"0" min:"0" max:"1" doc:"share of input records without a traceparent header that start a trace (0.01: one in a hundred; 1: all); a record with a W3C traceparent header continues its trace whenever tracing is on; each traced record gets a span per rule and its trace context in the headers of its outputs and DLQ records; spans go to the OTLP endpoint of the standard OTEL_EXPORTER_OTLP_* variables (see docs/operations.md); 0: off, no header read or written"`
}

// Error policies of a rule.
const (
	OnErrorFail = "fail"
	OnErrorSkip = "skip"
	OnErrorDLQ  = "dlq"
)

// Template is a named, parameterised list of steps.
type Template struct {
	Name        string
	Description string
	Params      []*Param // in declaration order
	Steps       []*yaml.Node
	Pos         diag.Pos // of the template's name

	invalid bool // its declaration has problems (reported): uses are not checked
}

// Param types.
const (
	ParamString   = "string"
	ParamNumber   = "number"
	ParamInt      = "int"
	ParamBool     = "bool"
	ParamDuration = "duration"
	ParamTopic    = "topic"
	ParamList     = "list"
	ParamExpr     = "expr"
)

// Param declares one typed template parameter.
type Param struct {
	Name        string
	Type        string
	Description string
	Default     *Value // nil: the parameter is required
	Min, Max    *float64
	Enum        []string
	Pattern     string
	Pos         diag.Pos

	re *regexp.Regexp // Pattern compiled, anchored at both ends
}

// Value is a parameter value checked against its declared type: string, topic
// and expr are string; number is float64; int is int64; bool is bool; duration
// is time.Duration; list is []any of JSON-like values.
type Value struct {
	V   any
	Pos diag.Pos
}

// Rule reads one or more topics and runs steps over each event: its own
// inline steps, or a template's steps with parameters.
type Rule struct {
	Name     string
	From     []string
	Steps    []*yaml.Node      // inline steps (empty when Template is set)
	Template string            // template name, if any
	With     map[string]*Value // template arguments, checked against the template's params
	OnError  string            // fail, skip or dlq (default dlq)
	DLQ      string            // DLQ topic (default <app.id>.dlq)
	Pos      diag.Pos          // of the rule's entry
	FromPos  []diag.Pos        // of each From topic
}

// Dirs returns the directories the configuration's files are in: the main
// file's and each include pattern's (a pattern's directory part may itself
// be a glob), for watching them.
func (c *Config) Dirs() []string {
	dir := filepath.Dir(c.File)
	out := []string{dir}
	for _, pattern := range c.Include {
		full := pattern
		if !filepath.IsAbs(full) {
			full = filepath.Join(dir, pattern)
		}
		matches, err := filepath.Glob(filepath.Dir(full))
		if err != nil {
			continue
		}
		for _, m := range matches {
			if !slices.Contains(out, m) {
				out = append(out, m)
			}
		}
	}
	return out
}
