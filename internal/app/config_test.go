package app

import (
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/careerops/jobs/internal/config"
)

// DEV_TOKEN_ENDPOINT mints admin tokens for anyone who asks: the api refuses to start with it
// on an address other machines can reach.
func TestDevTokenEndpointOnlyOnLoopback(t *testing.T) {
	t.Parallel()
	base := map[string]string{
		"DATABASE_URL": "postgres://127.0.0.1:1/none", "RABBITMQ_URL": "amqp://127.0.0.1:1/",
		"JWT_SECRET": strings.Repeat("s", 32), "DEV_TOKEN_ENDPOINT": "true",
	}
	for _, addr := range []string{":8080", "0.0.0.0:8080", "10.1.2.3:8080", "[::]:8080", "example.com:8080"} {
		vars := map[string]string{"HTTP_ADDR": addr}
		for k, v := range base {
			vars[k] = v
		}
		err := API(Options{})(t.Context(), nil, env(vars), io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "DEV_TOKEN_ENDPOINT") {
			t.Errorf("HTTP_ADDR=%s with DEV_TOKEN_ENDPOINT=true: %v, want a refusal", addr, err)
		}
	}
	for _, addr := range []string{"127.0.0.1:8080", "localhost:0", "[::1]:8080"} {
		c := DefaultAPIConfig()
		c.JWTSecret, c.DevTokenEndpoint, c.HTTPAddr = strings.Repeat("s", 32), true, addr
		if err := c.Validate(); err != nil {
			t.Errorf("HTTP_ADDR=%s: %v", addr, err)
		}
	}
}

func TestWorkerLLMBudget(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		set      func(*WorkerConfig)
		want     string // the budget's name; "" for none
		validErr string
	}{
		{name: "none by default", set: func(*WorkerConfig) {}},
		{name: "requests per minute: named after the endpoint and model", set: func(c *WorkerConfig) { c.LLMRequestsPerMinute = 60 },
			want: "https://api.openai.com/v1 gpt-4o-mini"},
		{name: "an Azure deployment names it", set: func(c *WorkerConfig) { c.LLMTokensPerMinute, c.AzureDeployment = 40_000, "letters" },
			want: "https://api.openai.com/v1 letters"},
		{name: "a name of its own", set: func(c *WorkerConfig) { c.LLMRequestsPerMinute, c.LLMBudgetName = 60, "org-1" }, want: "org-1"},
		{name: "a negative limit is refused", set: func(c *WorkerConfig) { c.LLMTokensPerMinute = -1 }, validErr: "LLM_TOKENS_PER_MINUTE"},
		{name: "no wait is refused", set: func(c *WorkerConfig) { c.LLMBudgetMaxWait = 0 }, validErr: "LLM_BUDGET_MAX_WAIT"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := DefaultWorkerConfig()
			c.OpenAIAPIKey = "k"
			tt.set(&c)
			if err := c.Validate(); tt.validErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.validErr) {
					t.Fatalf("Validate() = %v, want a refusal naming %s", err, tt.validErr)
				}
				return
			} else if err != nil {
				t.Fatal(err)
			}
			b, ok := c.llmBudget()
			if ok != (tt.want != "") || ok && b.Name != tt.want {
				t.Fatalf("budget %q (%v), want %q", b.Name, ok, tt.want)
			}
		})
	}
}

// The fallback endpoint's settings are checked only when it is enabled; its key is never
// borrowed from the primary.
func TestWorkerFallbackSettings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		set     func(f *FallbackConfig)
		wantErr string // "" for valid
	}{
		{"no fallback", func(*FallbackConfig) {}, ""},
		{"openai fallback", func(f *FallbackConfig) {
			f.BaseURL, f.APIKey, f.Model = "https://api.openai.com/v1", "sk-2", "gpt-4o-mini"
		}, ""},
		{"azure fallback", func(f *FallbackConfig) {
			f.BaseURL, f.APIKey, f.APIType, f.Deployment = "https://res.openai.azure.com", "k", "azure", "letters"
		}, ""},
		{"no key", func(f *FallbackConfig) { f.BaseURL = "https://res.openai.azure.com" }, "LLM_FALLBACK_API_KEY"},
		{"not a URL", func(f *FallbackConfig) { f.BaseURL, f.APIKey = "res.openai.azure.com", "k" }, "LLM_FALLBACK_BASE_URL"},
		{"unknown type", func(f *FallbackConfig) { f.BaseURL, f.APIKey, f.APIType = "https://x.example", "k", "bedrock" }, "LLM_FALLBACK_API_TYPE"},
		{"unknown kind", func(f *FallbackConfig) { f.BaseURL, f.APIKey, f.ModelKind = "https://x.example", "k", "big" }, "LLM_FALLBACK_MODEL_KIND"},
		{"no failures", func(f *FallbackConfig) { f.BreakerFailures = 0 }, "LLM_BREAKER_FAILURES"},
		{"no cool-down", func(f *FallbackConfig) { f.BreakerCooldown = 0 }, "LLM_BREAKER_COOLDOWN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := DefaultWorkerConfig()
			c.OpenAIAPIKey = "sk-1"
			tt.set(&c.Fallback)
			err := c.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Validate = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Validate = %v, want an error naming %s", err, tt.wantErr)
			}
		})
	}
	c := DefaultWorkerConfig()
	c.Fallback.BaseURL = "https://x.example"
	if got := c.fallbackModel(); got != c.OpenAIModel {
		t.Errorf("fallback model without LLM_FALLBACK_MODEL = %q, want OPENAI_MODEL's %q", got, c.OpenAIModel)
	}
}

// RETENTION_DAYS and WORKER_SCHEDULES are read from the environment and checked: a cron with
// seconds, a task turned off, an unknown task or a bad expression, a negative retention.
func TestWorkerScheduleAndRetentionSettings(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, schedules, days string
		want                  map[string]string
		validErr              string
	}{
		{name: "defaults", want: nil},
		{name: "seconds and off", schedules: "maintenance.retention=*/2 * * * * *", days: "30",
			want: map[string]string{"maintenance.retention": "*/2 * * * * *"}},
		{name: "a list with commas inside", schedules: "maintenance.retention=0 3,15 * * *", want: map[string]string{"maintenance.retention": "0 3,15 * * *"}},
		{name: "off", schedules: "maintenance.retention=off", want: map[string]string{"maintenance.retention": "off"}},
		{name: "unknown task", schedules: "nope.task=@daily", validErr: "nope.task"},
		{name: "bad cron", schedules: "maintenance.retention=every day", validErr: "WORKER_SCHEDULES"},
		{name: "negative days", days: "-1", validErr: "RETENTION_DAYS"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := DefaultWorkerConfig()
			vars := map[string]string{"DATABASE_URL": "postgres://x", "RABBITMQ_URL": "amqp://x", "OPENAI_API_KEY": "k",
				"WORKER_SCHEDULES": tt.schedules, "RETENTION_DAYS": tt.days}
			_, err := config.Parse(workerProgram().Program, nil, env(vars), io.Discard, &c)
			if tt.validErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.validErr) {
					t.Fatalf("Parse = %v, want a refusal naming %s", err, tt.validErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(c.Schedules) != fmt.Sprint(tt.want) {
				t.Fatalf("Schedules = %q, want %q", c.Schedules, tt.want)
			}
		})
	}
}
