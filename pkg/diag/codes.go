package diag

// The code catalog. Each code has a section in docs/errors.md (a test keeps the
// two in step). Ranges: VX1xxx files and schema, VX2xxx templates and
// parameters, VX3xxx expressions and steps, VX4xxx cluster checks, VX5xxx
// failures of single events at run time, VX6xxx reloads, VX7xxx the
// instance's own resources, VX9xxx internal.
const (
	// Files and YAML.
	FileUnreadable Code = "VX1001" // a config or included file cannot be read
	YAMLSyntax     Code = "VX1002" // the file is not valid YAML
	IncludeInvalid Code = "VX1003" // an include pattern is malformed or matches no file

	// Schema.
	UnknownKey      Code = "VX1101" // a key the schema does not know
	WrongType       Code = "VX1102" // a value of the wrong type
	MissingRequired Code = "VX1103" // a required value is missing
	InvalidValue    Code = "VX1104" // a value of the right type that is not allowed
	EnvInvalid      Code = "VX1105" // an environment override that does not parse
	DuplicateName   Code = "VX1106" // two rules (or templates) with one name
	InvalidTopic    Code = "VX1107" // a topic name Kafka would reject
	SettingIgnored  Code = "VX1108" // a setting that would have no effect (TLS options with TLS off, SASL credentials without a mechanism)
	// Connection security.
	CredentialsMissing   Code = "VX1109" // a SASL mechanism with an empty user name or password
	TLSMaterialInvalid   Code = "VX1110" // a CA, certificate or key file that is not usable PEM
	PlaintextCredentials Code = "VX1111" // warning: SASL PLAIN without TLS sends the password in clear text

	// Templates and parameters.
	UnknownTemplate    Code = "VX2001" // a rule or use: names a template that does not exist
	MissingParam       Code = "VX2002" // a required template parameter is not given
	ParamType          Code = "VX2003" // a parameter value of the wrong type
	UnknownParam       Code = "VX2004" // with: gives a parameter the template does not declare
	ParamConstraint    Code = "VX2005" // a parameter value violates min, max, enum or pattern
	TemplateCycle      Code = "VX2006" // templates that use each other in a cycle
	InvalidParamSchema Code = "VX2007" // a parameter declaration that is itself wrong

	// Expressions and steps.
	ExprSyntax        Code = "VX3001" // a CEL expression that does not parse
	ExprType          Code = "VX3002" // a CEL expression that does not type-check
	UnknownStep       Code = "VX3003" // a step kind that does not exist
	InvalidStep       Code = "VX3004" // a step whose shape is wrong
	OutputLoop        Code = "VX3005" // a rule writes to a topic it reads
	UnreachableBranch Code = "VX3006" // a route branch after a catch-all
	TopicKeyUnused    Code = "VX3007" // topics: declares the key of a topic no rule reads
	RepartitionAdded  Code = "VX3008" // information: a repartition added before a step that groups by a key

	// Cluster checks.
	TopicMissing          Code = "VX4001" // an input topic does not exist
	CoPartition           Code = "VX4002" // topics that must be co-partitioned are not
	ChangelogInvalid      Code = "VX4003" // a changelog topic with the wrong shape
	OutputUnavailable     Code = "VX4004" // an output topic that neither exists nor can be created
	ClusterUnreachable    Code = "VX4005" // the brokers cannot be reached
	TxnTimeoutTooLarge    Code = "VX4006" // processing.transaction_timeout above the brokers' transaction.max.timeout.ms
	RecordLimitAboveTopic Code = "VX4007" // warning: kafka.max_record_bytes above a topic's max.message.bytes
	TransactionHanging    Code = "VX4008" // a partition read or written held by a transaction open longer than the brokers' transaction.max.timeout.ms

	// Failures of single events.
	MalformedEvent   Code = "VX5001" // the record value is not a JSON object
	EvalError        Code = "VX5002" // an expression failed while evaluating
	MissingField     Code = "VX5003" // an expression read a field the event does not have
	ResultType       Code = "VX5004" // an expression returned a value of the wrong type
	LateEvent        Code = "VX5005" // an event arrived after its window closed (beyond grace)
	RecordTooLarge   Code = "VX5006" // an output record larger than kafka.max_record_bytes
	ExprCostExceeded Code = "VX5007" // an expression's evaluation went over its cost limit
	EventTimeAhead   Code = "VX5008" // a record timestamp too far ahead of the wall clock

	// Reloads.
	ReloadSettingChanged Code = "VX6001" // a reload changed a setting that needs a restart
	ReloadShapeChanged   Code = "VX6002" // a reload changed the topology's shape (sources, stores, repartitions)

	// The instance's own resources.
	StateDiskLow Code = "VX7001" // the state directory's disk is below app.state_min_free_bytes: processing paused

	// Internal.
	Internal Code = "VX9001" // a bug or an unexpected failure
)
