// Package workercmd is the worker program: configuration, wiring and lifecycle around worker.
package workercmd

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/careerops/jobs/internal/llm"
	"github.com/careerops/jobs/internal/telemetry"
)

// Config is the worker's configuration, read from the environment by envconfig.
type Config struct {
	// DatabaseURL is the PostgreSQL URL (pgx syntax).
	DatabaseURL string `envconfig:"DATABASE_URL" required:"true" desc:"The PostgreSQL URL (pgx syntax)."`
	// RabbitMQURL is the AMQP URL.
	RabbitMQURL string `envconfig:"RABBITMQ_URL" required:"true" desc:"The AMQP URL."`
	// OpenAIAPIKey is the LLM API key. Never logged.
	OpenAIAPIKey string `envconfig:"OPENAI_API_KEY" required:"true" desc:"The LLM API key. Never logged."`
	// OpenAIBaseURL is the base URL of an OpenAI-compatible API. Defaults to OpenAI's.
	OpenAIBaseURL string `envconfig:"OPENAI_BASE_URL" default:"https://api.openai.com/v1" desc:"The base URL of an OpenAI-compatible API. Defaults to OpenAI's."`
	// OpenAIModel is the model name. Defaults to gpt-4o-mini.
	OpenAIModel string `envconfig:"OPENAI_MODEL" default:"gpt-4o-mini" desc:"The model name. Defaults to gpt-4o-mini."`
	// OpenAIAPIType is openai (OpenAI, vLLM, Ollama, LiteLLM…) or azure. Defaults to openai.
	OpenAIAPIType string `envconfig:"OPENAI_API_TYPE" default:"openai" desc:"openai (OpenAI and OpenAI-compatible servers: vLLM, Ollama, LiteLLM) or azure (Azure OpenAI: OPENAI_BASE_URL is the resource endpoint). Defaults to openai."`
	// OpenAIAPIVersion is Azure's api-version. Defaults to 2024-10-21.
	OpenAIAPIVersion string `envconfig:"OPENAI_API_VERSION" desc:"Azure only: the api-version query parameter. Defaults to 2024-10-21."`
	// AzureDeployment is the Azure deployment called. Defaults to OPENAI_MODEL.
	AzureDeployment string `envconfig:"AZURE_OPENAI_DEPLOYMENT" desc:"Azure only: the deployment called. Defaults to OPENAI_MODEL."`
	// OpenAIModelKind is auto, chat or reasoning. Defaults to auto.
	OpenAIModelKind string `envconfig:"OPENAI_MODEL_KIND" default:"auto" desc:"auto, chat or reasoning: how OPENAI_MODEL is asked (reasoning: max_completion_tokens, no temperature). auto decides from the name (o1, o3, o4…, gpt-5 and later are reasoning models). Defaults to auto."`
	// OpenAIReasoningEffort is sent to reasoning models. Defaults to the model's own.
	OpenAIReasoningEffort string `envconfig:"OPENAI_REASONING_EFFORT" desc:"Reasoning models only: reasoning_effort (minimal, low, medium, high). Defaults to the model's own."`
	// LLMMaxTokens caps an answer, reasoning included. Defaults to 1024 (reasoning models 8192).
	LLMMaxTokens int `envconfig:"LLM_MAX_TOKENS" desc:"Caps an answer's tokens, reasoning included. Defaults to 1024, or 8192 for reasoning models."`
	// LLMTimeout bounds one LLM call. Defaults to 60s.
	LLMTimeout time.Duration `envconfig:"LLM_TIMEOUT" default:"60s" desc:"Bounds one LLM call. Defaults to 60s."`
	// AdminAddr serves /healthz, /readyz and /metrics. Defaults to :9090.
	AdminAddr string `envconfig:"ADMIN_ADDR" default:":9090" desc:"Serves /healthz, /readyz and /metrics. Defaults to :9090."`
	// Concurrency is how many jobs run at once (also the prefetch). Defaults to 4.
	Concurrency int `envconfig:"WORKER_CONCURRENCY" default:"4" desc:"How many jobs run at once (also the prefetch). Defaults to 4."`
	// MaxAttempts is the LLM attempts a job gets before it fails for good. Defaults to 5.
	MaxAttempts int `envconfig:"WORKER_MAX_ATTEMPTS" default:"5" desc:"The LLM attempts a job gets before it fails for good. Defaults to 5."`
	// RetryBaseDelay is the backoff before the first retry. Defaults to 2s.
	RetryBaseDelay time.Duration `envconfig:"WORKER_RETRY_BASE_DELAY" default:"2s" desc:"The backoff before the first retry. Defaults to 2s."`
	// RetryMaxDelay caps the backoff. Defaults to 5m.
	RetryMaxDelay time.Duration `envconfig:"WORKER_RETRY_MAX_DELAY" default:"5m" desc:"Caps the backoff. Defaults to 5m."`
	// DrainTimeout bounds how long SIGTERM waits for jobs in flight. Defaults to 30s.
	DrainTimeout time.Duration `envconfig:"WORKER_DRAIN_TIMEOUT" default:"30s" desc:"Bounds how long SIGTERM waits for jobs in flight. Defaults to 30s."`
	// ReapInterval is how often jobs of dead workers are looked for. Defaults to 30s.
	ReapInterval time.Duration `envconfig:"WORKER_REAP_INTERVAL" default:"30s" desc:"How often jobs of dead workers are looked for. Defaults to 30s."`
	// DatabaseMaxConns bounds the pool. Defaults to WORKER_CONCURRENCY + 4.
	DatabaseMaxConns int32 `envconfig:"DATABASE_MAX_CONNS" desc:"Bounds the pool. Defaults to WORKER_CONCURRENCY + 4."`
	// PprofAddr, if set, serves Go's profiles there (e.g. 127.0.0.1:6060); off by default.
	PprofAddr string `envconfig:"PPROF_ADDR" desc:"If set, serves Go profiles (/debug/pprof) on this address, e.g. 127.0.0.1:6060."`
	// LogLevel is debug, info, warn or error. Defaults to info.
	LogLevel string `envconfig:"LOG_LEVEL" default:"info" desc:"One of debug, info, warn or error. Defaults to info."`
}

// Validate reports the first problem with c as one line.
func (c Config) Validate() error {
	u, err := url.Parse(c.OpenAIBaseURL)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return errors.New("OPENAI_BASE_URL must be an http(s) URL")
	case c.OpenAIModel == "":
		return errors.New("OPENAI_MODEL must not be empty")
	case c.Concurrency < 1 || c.Concurrency > 1000:
		return errors.New("WORKER_CONCURRENCY must be from 1 to 1000")
	case c.MaxAttempts < 1:
		return errors.New("WORKER_MAX_ATTEMPTS must be at least 1")
	case c.LLMTimeout <= 0 || c.RetryBaseDelay <= 0 || c.RetryMaxDelay < c.RetryBaseDelay || c.DrainTimeout <= 0 || c.ReapInterval <= 0:
		return fmt.Errorf("LLM_TIMEOUT, WORKER_*_DELAY, WORKER_DRAIN_TIMEOUT and WORKER_REAP_INTERVAL must be positive, max delay ≥ base delay")
	case c.AdminAddr == "":
		return errors.New("ADMIN_ADDR must not be empty")
	}
	if err := c.LLMConfig(nil).Validate(); err != nil {
		return fmt.Errorf("OPENAI_API_TYPE, OPENAI_MODEL_KIND or LLM_MAX_TOKENS: %w", err)
	}
	return nil
}

// LLMConfig is the llm.Config of these settings.
func (c Config) LLMConfig(tel *telemetry.Telemetry) llm.Config {
	return llm.Config{
		APIType: llm.APIType(c.OpenAIAPIType), BaseURL: c.OpenAIBaseURL, APIKey: c.OpenAIAPIKey,
		Model: c.OpenAIModel, ModelKind: llm.ModelKind(c.OpenAIModelKind), ReasoningEffort: c.OpenAIReasoningEffort,
		APIVersion: c.OpenAIAPIVersion, Deployment: c.AzureDeployment, MaxTokens: c.LLMMaxTokens,
		Timeout: c.LLMTimeout, Telemetry: tel,
	}
}
