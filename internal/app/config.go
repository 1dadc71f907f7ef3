package app

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/careerops/jobs/internal/analytics"
	"github.com/careerops/jobs/internal/auth"
	"github.com/careerops/jobs/internal/email"
	"github.com/careerops/jobs/internal/jobstore"
	"github.com/careerops/jobs/internal/kind"
	"github.com/careerops/jobs/internal/kinds"
	"github.com/careerops/jobs/internal/llm"
	"github.com/careerops/jobs/internal/llmbudget"
	"github.com/careerops/jobs/internal/llmroute"
	"github.com/careerops/jobs/internal/schedule"
	"github.com/careerops/jobs/internal/telemetry"
	"github.com/careerops/jobs/internal/worker"
)

// Dependencies are the services the api and the worker use.
type Dependencies struct {
	// DatabaseURL is the PostgreSQL URL (pgx syntax).
	DatabaseURL string `env:"DATABASE_URL,required" help:"The PostgreSQL URL (pgx syntax)."`
	// RabbitMQURL is the AMQP URL.
	RabbitMQURL string `env:"RABBITMQ_URL,required" help:"The AMQP URL."`
	// CompletedQueueMaxLength caps cover-letter.completed (0: no cap).
	CompletedQueueMaxLength int `env:"COMPLETED_QUEUE_MAX_LENGTH" help:"Caps cover-letter.completed, which nobody may consume: past it the oldest announcements are dropped (0: no cap; applies when the queue is first declared)."`
}

// defaultDependencies are the defaults of Dependencies.
func defaultDependencies() Dependencies {
	return Dependencies{CompletedQueueMaxLength: 100_000}
}

// Diagnostics are how a program shows what it does: logs, traces and profiles.
type Diagnostics struct {
	// PprofAddr, if set, serves Go's profiles there (e.g. 127.0.0.1:6060); off by default.
	PprofAddr string `env:"PPROF_ADDR" help:"If set, serves Go profiles (/debug/pprof) on this address, e.g. 127.0.0.1:6060."`
	// Telemetry is the log level and the OpenTelemetry settings.
	Telemetry telemetry.Config
}

// APIConfig is the api's configuration.
type APIConfig struct {
	Dependencies
	// JWTSecret is the HS256 secret of user tokens; at least auth.MinSecretBytes bytes.
	JWTSecret string `env:"JWT_SECRET,required" help:"The HS256 secret of user tokens; at least 32 bytes."`
	// HTTPAddr is the listen address.
	HTTPAddr string `env:"HTTP_ADDR" help:"The listen address."`
	// DatabaseMaxConns bounds the pool.
	DatabaseMaxConns int32 `env:"DATABASE_MAX_CONNS" help:"Bounds the database pool."`
	// ShutdownTimeout bounds the graceful stop.
	ShutdownTimeout time.Duration `env:"SHUTDOWN_TIMEOUT" help:"Bounds the graceful stop."`
	// UserRequestsPerMinute caps one user's API requests per minute on each replica (0: none).
	UserRequestsPerMinute int `env:"USER_REQUESTS_PER_MINUTE" help:"Caps one user's API requests per minute on each api replica (0: no limit)."`
	// UserJobsPerMinute caps the cover letters one user may request per minute (0: none).
	UserJobsPerMinute int `env:"USER_JOBS_PER_MINUTE" help:"Caps the cover letters one user may request per minute, across replicas (0: no limit)."`
	// UserTokensPerDay caps one user's LLM tokens per UTC day (0: none).
	UserTokensPerDay int `env:"USER_TOKENS_PER_DAY" help:"Caps one user's LLM tokens (input + output) per UTC day (0: no limit)."`
	// DevTokenEndpoint enables POST /dev/token, which mints tokens for anyone: development only.
	DevTokenEndpoint bool `env:"DEV_TOKEN_ENDPOINT" help:"Enables POST /dev/token, which mints a token (admin if asked) for anyone: development only."`
	// TrustClientTraceContext takes requests' traceparent as their traces' parent.
	TrustClientTraceContext bool `env:"TRUST_CLIENT_TRACE_CONTEXT" help:"Take a request's traceparent as the parent of its trace: only behind a gateway that sets it (a public client must not choose a job's trace)."`
	// StreamsPerUser caps one user's open event streams on each replica.
	StreamsPerUser int `env:"STREAMS_PER_USER" help:"Caps one user's open event streams on each api replica (more get 429)."`
	// StreamMaxLifetime ends an event stream after this long (the browser reconnects).
	StreamMaxLifetime time.Duration `env:"STREAM_MAX_LIFETIME" help:"Ends an event stream after this long; the browser reconnects and resumes from the stored job."`
	// CreateBatchMax caps the creates one transaction commits.
	CreateBatchMax int `env:"CREATE_BATCH_MAX" help:"The most job creates the api commits in one transaction (creates that arrive together share it; 1: each alone)."`
	// JaegerUIURL links the ops page to traces, e.g. http://127.0.0.1:16686.
	JaegerUIURL string `env:"JAEGER_UI_URL" help:"Base URL of the Jaeger UI, for trace links on the ops page."`
	Diagnostics
}

// defaultUserJobsPerMinute is USER_JOBS_PER_MINUTE's default, for the api and the worker.
const defaultUserJobsPerMinute = 10

// DefaultAPIConfig is the api's configuration before the environment: its defaults.
func DefaultAPIConfig() APIConfig {
	return APIConfig{
		Dependencies:          defaultDependencies(),
		HTTPAddr:              ":8080",
		DatabaseMaxConns:      16,
		ShutdownTimeout:       15 * time.Second,
		UserRequestsPerMinute: 300,
		UserJobsPerMinute:     defaultUserJobsPerMinute,
		CreateBatchMax:        jobstore.DefaultBatchMax,
		UserTokensPerDay:      200_000,
		StreamsPerUser:        10,
		StreamMaxLifetime:     10 * time.Minute,
		Diagnostics:           defaultDiagnostics(),
	}
}

// Validate reports the first problem with c as one line.
func (c *APIConfig) Validate() error {
	switch {
	case len(c.JWTSecret) < auth.MinSecretBytes:
		return fmt.Errorf("JWT_SECRET must be at least %d bytes", auth.MinSecretBytes)
	case c.HTTPAddr == "":
		return errors.New("HTTP_ADDR must not be empty")
	case c.CompletedQueueMaxLength < 0:
		return errors.New("COMPLETED_QUEUE_MAX_LENGTH must not be negative")
	case c.DatabaseMaxConns < 2:
		return errors.New("DATABASE_MAX_CONNS must be at least 2")
	case c.ShutdownTimeout <= 0:
		return errors.New("SHUTDOWN_TIMEOUT must be positive")
	case c.UserRequestsPerMinute < 0 || c.UserJobsPerMinute < 0 || c.UserTokensPerDay < 0:
		return errors.New("USER_REQUESTS_PER_MINUTE, USER_JOBS_PER_MINUTE and USER_TOKENS_PER_DAY must not be negative")
	case c.StreamsPerUser < 1 || c.StreamMaxLifetime <= 0:
		return errors.New("STREAMS_PER_USER must be at least 1 and STREAM_MAX_LIFETIME positive")
	case c.CreateBatchMax < 1:
		return errors.New("CREATE_BATCH_MAX must be at least 1")
	case c.DevTokenEndpoint && !loopback(c.HTTPAddr):
		return fmt.Errorf("DEV_TOKEN_ENDPOINT mints admin tokens for anyone: it needs HTTP_ADDR on a loopback address such as 127.0.0.1:8080, not %q", c.HTTPAddr)
	}
	return nil
}

// loopback reports whether addr (host:port) listens on this machine only.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// WorkerConfig is the worker's configuration.
type WorkerConfig struct {
	Dependencies
	// OpenAIAPIKey is the LLM API key. Never logged.
	OpenAIAPIKey string `env:"OPENAI_API_KEY,required" help:"The LLM API key. Never logged."`
	// OpenAIBaseURL is the base URL of an OpenAI-compatible API.
	OpenAIBaseURL string `env:"OPENAI_BASE_URL" help:"The base URL of an OpenAI-compatible API."`
	// OpenAIModel is the model name.
	OpenAIModel string `env:"OPENAI_MODEL" help:"The model name."`
	// OpenAIAPIType is openai (OpenAI and compatible servers) or azure.
	OpenAIAPIType string `env:"OPENAI_API_TYPE" help:"openai (OpenAI and OpenAI-compatible servers: vLLM, Ollama, LiteLLM) or azure (Azure OpenAI: OPENAI_BASE_URL is the resource endpoint)."`
	// OpenAIAPIVersion is Azure's api-version.
	OpenAIAPIVersion string `env:"OPENAI_API_VERSION" help:"Azure only: the api-version query parameter."`
	// AzureDeployment is the Azure deployment called; empty: OPENAI_MODEL.
	AzureDeployment string `env:"AZURE_OPENAI_DEPLOYMENT" help:"Azure only: the deployment called; empty: OPENAI_MODEL."`
	// OpenAIModelKind says how OPENAI_MODEL is asked: auto, chat or reasoning.
	OpenAIModelKind string `env:"OPENAI_MODEL_KIND" help:"auto, chat or reasoning: how OPENAI_MODEL is asked (reasoning: max_completion_tokens, no temperature); auto decides from the name (o1, o3, o4…, gpt-5 and later are reasoning models)."`
	// OpenAIReasoningEffort is passed to reasoning models; empty: the model's own.
	OpenAIReasoningEffort string `env:"OPENAI_REASONING_EFFORT" help:"Reasoning models only: reasoning_effort (minimal, low, medium, high); empty: the model's own."`
	// LLMMaxTokens caps an answer's tokens; 0: by the model kind.
	LLMMaxTokens int `env:"LLM_MAX_TOKENS" help:"Caps an answer's tokens, reasoning included; 0: 1024 for chat models, 8192 for reasoning models."`
	// LLMTimeout bounds one LLM call.
	LLMTimeout time.Duration `env:"LLM_TIMEOUT" help:"Bounds one LLM call (a claimed job's lease follows from it)."`
	// LLMRequestsPerMinute and LLMTokensPerMinute are the provider's limits, shared by every
	// worker replica through the database (0: none).
	LLMRequestsPerMinute int `env:"LLM_REQUESTS_PER_MINUTE" help:"The provider's requests-per-minute limit, one budget shared by every worker replica through the database (0: no budget; see docs/operations.md)."`
	LLMTokensPerMinute   int `env:"LLM_TOKENS_PER_MINUTE" help:"The provider's tokens-per-minute limit, shared like LLM_REQUESTS_PER_MINUTE; a call reserves its prompt's tokens and LLM_MAX_TOKENS, and settles what it used (0: no budget)."`
	// LLMBudgetMaxWait is the longest a call waits for its turn in the budget.
	LLMBudgetMaxWait time.Duration `env:"LLM_BUDGET_MAX_WAIT" help:"The longest an LLM call waits for its turn in the budget; a job that would wait longer is put back for its turn, without spending an attempt (the lease covers this wait)."`
	// LLMBudgetName keys the shared budget; empty: OPENAI_BASE_URL and the model.
	LLMBudgetName string `env:"LLM_BUDGET_NAME" help:"Names the shared budget: workers with the same name share one (empty: OPENAI_BASE_URL and the model or Azure deployment)."`
	// AdminAddr serves /healthz, /readyz and /metrics.
	AdminAddr string `env:"ADMIN_ADDR" help:"Serves /healthz, /readyz and /metrics."`
	// Concurrency is how many jobs of each kind run at once (also the prefetch).
	Concurrency int `env:"WORKER_CONCURRENCY" help:"How many jobs of each kind run at once (also the prefetch)."`
	// Kinds are the job kinds this process runs; empty: every kind.
	Kinds []string `env:"WORKER_KINDS" help:"The job kinds this process runs, comma-separated (e.g. notifications.email); empty: every kind."`
	// MaxAttempts is the LLM attempts a cover letter gets before it fails for good.
	MaxAttempts int `env:"WORKER_MAX_ATTEMPTS" help:"The LLM attempts a cover letter gets before it fails for good (other kinds keep their own retry policy)."`
	// RetryBaseDelay is the backoff before the first retry.
	RetryBaseDelay time.Duration `env:"WORKER_RETRY_BASE_DELAY" help:"The cover letters' backoff before the first retry."`
	// RetryMaxDelay caps the backoff.
	RetryMaxDelay time.Duration `env:"WORKER_RETRY_MAX_DELAY" help:"Caps the backoff."`
	// DrainTimeout bounds how long SIGTERM waits for jobs in flight.
	DrainTimeout time.Duration `env:"WORKER_DRAIN_TIMEOUT" help:"Bounds how long SIGTERM waits for jobs in flight."`
	// ReapInterval is how often jobs of dead workers are looked for.
	ReapInterval time.Duration `env:"WORKER_REAP_INTERVAL" help:"How often jobs of dead workers are looked for."`
	// UserJobsPerMinute caps the jobs one user may have created per minute, for jobs created
	// from other services' messages (0: none).
	UserJobsPerMinute int `env:"USER_JOBS_PER_MINUTE" help:"Caps the cover letters one user may have created per minute, for jobs other services publish to the queue (0: no limit); the api applies the same setting to its requests."`
	// DatabaseMaxConns bounds the pool; 0 is WORKER_CONCURRENCY + 4.
	DatabaseMaxConns int32 `env:"DATABASE_MAX_CONNS" help:"Bounds the database pool; 0: WORKER_CONCURRENCY + 4."`
	// RetentionDays keeps finished jobs this many days after they completed; 0 keeps all.
	RetentionDays int `env:"RETENTION_DAYS" help:"Finished jobs (completed, failed, cancelled: their job descriptions, CVs and letters) are deleted this many days after they completed, by the scheduled task maintenance.retention (daily, in batches of 1000 rows); 0: kept forever."`
	// LLMPrices are the models' prices for the usage rollups' cost estimate.
	LLMPrices string `env:"LLM_PRICES" help:"Prices of LLM tokens for the usage rollups' cost estimate (analytics.process): model=input/output pairs separated by ';', in millionths of the currency unit per million tokens (gpt-4o-mini=150000/600000 is 0.15 and 0.60 a million); added to the defaults (gpt-4o-mini, gpt-4o, gpt-4.1, gpt-4.1-mini, gpt-4.1-nano at OpenAI's USD list prices); the model * prices every model not listed (else 0)."`
	// Schedules overrides the kinds' schedules: task → cron expression, or off.
	Schedules map[string]string `env:"WORKER_SCHEDULES, delimiter=;, separator==" help:"Changes scheduled tasks' times: task=cron pairs separated by ';' (e.g. maintenance.retention=0 4 * * *), cron with 5 fields, 6 with seconds first, or @daily-like; task=off turns a task off. Every worker runs the scheduler: give them all the same."`
	// Fallback is the optional second LLM endpoint and the primary's circuit breaker.
	Fallback FallbackConfig
	// Email is how users' emails are sent (SMTP_*; off without SMTP_HOST).
	Email email.Config
	// JWTSecret signs the unsubscribe links in emails (the api verifies them with it).
	JWTSecret string `env:"JWT_SECRET" help:"The api's HS256 secret, at least 32 bytes: signs the unsubscribe links of emails (needed with SMTP_HOST)."`
	Diagnostics
}

// FallbackConfig is the worker's optional second LLM endpoint, used while the primary's
// circuit breaker is open, and the breaker's settings.
type FallbackConfig struct {
	// BaseURL enables the fallback; empty: none, the primary alone.
	BaseURL string `env:"LLM_FALLBACK_BASE_URL" help:"Enables a fallback LLM endpoint, used while the primary fails: its base URL (as OPENAI_BASE_URL); empty: no fallback."`
	// APIKey is the fallback's key. Never logged.
	APIKey string `env:"LLM_FALLBACK_API_KEY" help:"The fallback's API key (required with LLM_FALLBACK_BASE_URL; the primary's is never sent elsewhere). Never logged."`
	// Model is the fallback's model; empty: OPENAI_MODEL.
	Model string `env:"LLM_FALLBACK_MODEL" help:"The fallback's model (a smaller one, say); empty: OPENAI_MODEL."`
	// APIType is openai or azure.
	APIType string `env:"LLM_FALLBACK_API_TYPE" help:"openai or azure: the fallback's kind of endpoint (as OPENAI_API_TYPE)."`
	// APIVersion is Azure's api-version.
	APIVersion string `env:"LLM_FALLBACK_API_VERSION" help:"Azure only: the fallback's api-version."`
	// Deployment is the Azure deployment called; empty: the fallback's model.
	Deployment string `env:"LLM_FALLBACK_DEPLOYMENT" help:"Azure only: the fallback's deployment; empty: its model."`
	// ModelKind says how the fallback's model is asked: auto, chat or reasoning.
	ModelKind string `env:"LLM_FALLBACK_MODEL_KIND" help:"auto, chat or reasoning: how the fallback's model is asked (as OPENAI_MODEL_KIND)."`
	// ReasoningEffort is passed to a reasoning fallback model; empty: the model's own.
	ReasoningEffort string `env:"LLM_FALLBACK_REASONING_EFFORT" help:"Reasoning models only: the fallback's reasoning_effort; empty: the model's own."`
	// BreakerFailures is how many consecutive temporary failures open the primary's breaker.
	BreakerFailures int `env:"LLM_BREAKER_FAILURES" help:"With a fallback: how many consecutive temporary failures of the primary (429, 5xx, timeouts, network) send calls to the fallback."`
	// BreakerCooldown is how long calls go to the fallback before one probes the primary.
	BreakerCooldown time.Duration `env:"LLM_BREAKER_COOLDOWN" help:"With a fallback: how long calls go to the fallback before one probes the primary; doubled after each failed probe, up to 8 times this."`
}

// DefaultWorkerConfig is the worker's configuration before the environment: its defaults.
func DefaultWorkerConfig() WorkerConfig {
	return WorkerConfig{
		OpenAIBaseURL:    "https://api.openai.com/v1",
		OpenAIModel:      "gpt-4o-mini",
		OpenAIAPIType:    string(llm.APITypeOpenAI),
		OpenAIAPIVersion: llm.DefaultAzureAPIVersion,
		OpenAIModelKind:  string(llm.ModelKindAuto),
		LLMTimeout:       worker.DefaultTimeout,
		LLMBudgetMaxWait: llmbudget.DefaultMaxWait,
		AdminAddr:        ":9090",
		Concurrency:      worker.DefaultConcurrency,
		MaxAttempts:      worker.DefaultMaxAttempts,
		RetryBaseDelay:   worker.DefaultRetryBaseDelay,
		RetryMaxDelay:    worker.DefaultRetryMaxDelay,
		DrainTimeout:     worker.DefaultDrainTimeout,
		ReapInterval:     worker.DefaultReapInterval,
		Fallback: FallbackConfig{
			APIType:         string(llm.APITypeOpenAI),
			APIVersion:      llm.DefaultAzureAPIVersion,
			ModelKind:       string(llm.ModelKindAuto),
			BreakerFailures: llmroute.DefaultFailures,
			BreakerCooldown: llmroute.DefaultCooldown,
		},
		Email:       email.DefaultConfig(),
		Diagnostics: defaultDiagnostics(),
	}
}

// Validate reports the first problem with c as one line.
func (c *WorkerConfig) Validate() error {
	switch {
	case !httpURL(c.OpenAIBaseURL):
		return errors.New("OPENAI_BASE_URL must be an http(s) URL")
	case c.OpenAIModel == "":
		return errors.New("OPENAI_MODEL must not be empty")
	case c.Concurrency < 1 || c.Concurrency > 1000:
		return errors.New("WORKER_CONCURRENCY must be from 1 to 1000")
	case c.MaxAttempts < 1:
		return errors.New("WORKER_MAX_ATTEMPTS must be at least 1")
	case c.LLMTimeout <= 0 || c.RetryBaseDelay <= 0 || c.RetryMaxDelay < c.RetryBaseDelay || c.DrainTimeout <= 0 || c.ReapInterval <= 0:
		return errors.New("LLM_TIMEOUT, WORKER_*_DELAY, WORKER_DRAIN_TIMEOUT and WORKER_REAP_INTERVAL must be positive, max delay ≥ base delay")
	case c.AdminAddr == "":
		return errors.New("ADMIN_ADDR must not be empty")
	case c.UserJobsPerMinute < 0 || c.CompletedQueueMaxLength < 0:
		return errors.New("USER_JOBS_PER_MINUTE and COMPLETED_QUEUE_MAX_LENGTH must not be negative")
	case c.LLMRequestsPerMinute < 0 || c.LLMTokensPerMinute < 0 || c.LLMBudgetMaxWait <= 0:
		return errors.New("LLM_REQUESTS_PER_MINUTE and LLM_TOKENS_PER_MINUTE must not be negative, LLM_BUDGET_MAX_WAIT must be positive")
	case c.RetentionDays < 0:
		return errors.New("RETENTION_DAYS must not be negative (0 keeps everything)")
	}
	if _, err := analytics.ParsePrices(c.LLMPrices); err != nil {
		return err
	}
	if _, err := schedule.Tasks(kinds.All(kinds.Deps{}), c.Schedules); err != nil {
		return fmt.Errorf("WORKER_SCHEDULES: %w", err)
	}
	if err := c.llmConfig(nil).Validate(); err != nil {
		return fmt.Errorf("OPENAI_API_TYPE, OPENAI_MODEL_KIND or LLM_MAX_TOKENS: %w", err)
	}
	if err := c.Email.Validate(); err != nil {
		return err
	}
	if c.Email.Enabled() && len(c.JWTSecret) < auth.MinSecretBytes {
		return fmt.Errorf("JWT_SECRET must be set (at least %d bytes) with SMTP_HOST: it signs the emails' unsubscribe links", auth.MinSecretBytes)
	}
	return c.validateFallback()
}

// validateFallback reports the first problem with the fallback's settings.
func (c *WorkerConfig) validateFallback() error {
	f := c.Fallback
	switch {
	case f.BreakerFailures < 1 || f.BreakerCooldown <= 0:
		return errors.New("LLM_BREAKER_FAILURES must be at least 1 and LLM_BREAKER_COOLDOWN positive")
	case f.BaseURL == "":
		return nil
	case !httpURL(f.BaseURL):
		return errors.New("LLM_FALLBACK_BASE_URL must be an http(s) URL")
	case f.APIKey == "":
		return errors.New("LLM_FALLBACK_API_KEY must be set with LLM_FALLBACK_BASE_URL (the primary's key is never sent to another endpoint)")
	}
	if err := c.fallbackLLMConfig(nil).Validate(); err != nil {
		return fmt.Errorf("LLM_FALLBACK_API_TYPE or LLM_FALLBACK_MODEL_KIND: %w", err)
	}
	return nil
}

// httpURL reports whether s is an absolute http(s) URL.
func httpURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// coverLetterRetry is the cover letters' retry policy: WORKER_MAX_ATTEMPTS and
// WORKER_RETRY_*. The other kinds keep their own (email's outlasts an SMTP outage).
func (c *WorkerConfig) coverLetterRetry() kind.Retry {
	return kind.Retry{MaxAttempts: c.MaxAttempts, BaseDelay: c.RetryBaseDelay, MaxDelay: c.RetryMaxDelay}
}

// llmConfig is the LLM client's configuration.
func (c *WorkerConfig) llmConfig(tel *telemetry.Telemetry) llm.Config {
	return llm.Config{
		APIType: llm.APIType(c.OpenAIAPIType), BaseURL: c.OpenAIBaseURL, APIKey: c.OpenAIAPIKey,
		Model: c.OpenAIModel, ModelKind: llm.ModelKind(c.OpenAIModelKind), ReasoningEffort: c.OpenAIReasoningEffort,
		APIVersion: c.OpenAIAPIVersion, Deployment: c.AzureDeployment, MaxTokens: c.LLMMaxTokens,
		Timeout: c.LLMTimeout, Telemetry: tel,
	}
}

// llmBudget is the shared rate budget's configuration; ok is false when there is none.
func (c *WorkerConfig) llmBudget() (cfg llmbudget.Config, ok bool) {
	name := c.LLMBudgetName
	if name == "" {
		name = c.OpenAIBaseURL + " " + cmp.Or(c.AzureDeployment, c.OpenAIModel)
	}
	return llmbudget.Config{
		Name:    name,
		Limits:  llmbudget.Limits{RequestsPerMinute: c.LLMRequestsPerMinute, TokensPerMinute: c.LLMTokensPerMinute},
		MaxWait: c.LLMBudgetMaxWait,
	}, c.LLMRequestsPerMinute > 0 || c.LLMTokensPerMinute > 0
}

// fallbackLLMConfig is the fallback LLM client's configuration: the fallback's endpoint, with
// the primary's token cap and timeout.
func (c *WorkerConfig) fallbackLLMConfig(tel *telemetry.Telemetry) llm.Config {
	f := c.Fallback
	return llm.Config{
		APIType: llm.APIType(f.APIType), BaseURL: f.BaseURL, APIKey: f.APIKey,
		Model: cmp.Or(f.Model, c.OpenAIModel), ModelKind: llm.ModelKind(f.ModelKind), ReasoningEffort: f.ReasoningEffort,
		APIVersion: f.APIVersion, Deployment: f.Deployment, MaxTokens: c.LLMMaxTokens,
		Timeout: c.LLMTimeout, Telemetry: tel,
	}
}

// maxConns is the pool's size.
func (c *WorkerConfig) maxConns() int32 {
	if c.DatabaseMaxConns > 0 {
		return c.DatabaseMaxConns
	}
	return int32(c.Concurrency) + 4
}

func defaultDiagnostics() Diagnostics {
	return Diagnostics{Telemetry: telemetry.Config{LogLevel: telemetry.DefaultLogLevel}}
}
