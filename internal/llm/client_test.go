package llm

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/careerops/jobs/internal/fakeopenai"
	"github.com/careerops/jobs/internal/telemetry"
	"github.com/careerops/jobs/internal/testkit"
)

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name   string
		header map[string]string
		want   time.Duration
	}{
		{"absent", nil, 0},
		{"seconds", map[string]string{"Retry-After": "3"}, 3 * time.Second},
		{"fractional seconds", map[string]string{"Retry-After": "0.5"}, 500 * time.Millisecond},
		{"milliseconds header wins", map[string]string{"Retry-After": "3", "retry-after-ms": "1200"}, 1200 * time.Millisecond},
		{"http date", map[string]string{"Retry-After": now.Add(7 * time.Second).Format(http.TimeFormat)}, 7 * time.Second},
		{"date in the past", map[string]string{"Retry-After": now.Add(-time.Minute).Format(http.TimeFormat)}, 0},
		{"garbage", map[string]string{"Retry-After": "soon"}, 0},
		{"negative", map[string]string{"Retry-After": "-4"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := http.Header{}
			for k, v := range tt.header {
				h.Set(k, v)
			}
			if got := parseRetryAfter(h, now); got != tt.want {
				t.Errorf("parseRetryAfter = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestTemporaryStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status int
		want   bool
	}{
		{0, true}, {400, false}, {401, false}, {403, false}, {404, false}, {408, true}, {409, true},
		{413, false}, {422, false}, {429, true}, {500, true}, {502, true}, {503, true},
	}
	for _, tt := range tests {
		if got := temporaryStatus(tt.status); got != tt.want {
			t.Errorf("temporaryStatus(%d) = %v, want %v", tt.status, got, tt.want)
		}
	}
}

func TestChatSpanRecordsContentOnlyWhenAskedTo(t *testing.T) {
	t.Parallel()
	_, url := testkit.StartFakeOpenAI(t, fakeopenai.Config{})
	for _, capture := range []bool{false, true} {
		rec := tracetest.NewSpanRecorder()
		tel := telemetry.New(slog.Default(), sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
		tel.CaptureContent = capture
		c := New(Config{BaseURL: url + "/v1", APIKey: "k", Model: "m", Telemetry: tel})
		out, err := c.Complete(context.Background(), "be brief", "Job description:\nPlumber at Mario Bros")
		if err != nil {
			t.Fatal(err)
		}
		var chat sdktrace.ReadOnlySpan
		for _, s := range rec.Ended() {
			if s.Name() == "chat m" {
				chat = s
			}
		}
		if chat == nil {
			t.Fatal("no chat span")
		}
		attrs := map[string]string{}
		for _, kv := range chat.Attributes() {
			attrs[string(kv.Key)] = kv.Value.String()
		}
		hasIn := strings.Contains(attrs["gen_ai.input.messages"], "Plumber at Mario Bros")
		hasOut := strings.Contains(attrs["gen_ai.output.messages"], out.Text[:20])
		if hasIn != capture || hasOut != capture {
			t.Fatalf("capture %v: input recorded %v, output recorded %v", capture, hasIn, hasOut)
		}
		if attrs["server.address"] != "127.0.0.1" || attrs["gen_ai.usage.output_tokens"] == "" {
			t.Fatalf("chat span attributes %v", attrs)
		}
	}
}

func TestIsReasoningModel(t *testing.T) {
	t.Parallel()
	for model, want := range map[string]bool{
		"o1": true, "o1-mini": true, "o3": true, "o3-mini": true, "o4-mini": true, "o4-mini-high": true,
		"gpt-5": true, "gpt-5-mini": true, "gpt-5-nano": true, "gpt-5.1": true, "gpt-5.1-mini": true, "GPT-5": true,
		"gpt-6": true, "gpt-10": true, "openai/o3": true, "azure/gpt-5-mini": true,
		"gpt-4o-mini": false, "gpt-4o": false, "gpt-4.1": false, "gpt-4": false, "gpt-3.5-turbo": false,
		"llama3.1:8b": false, "meta-llama/Llama-3.1-8B-Instruct": false, "openchat": false, "orca2": false,
		"fake-gpt": false, "o": false, "": false, "letters-prod": false,
	} {
		if got := IsReasoningModel(model); got != want {
			t.Errorf("IsReasoningModel(%q) = %v, want %v", model, got, want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"defaults", Config{Model: "m"}, ""},
		{"azure reasoning", Config{Model: "m", APIType: APITypeAzure, ModelKind: ModelKindReasoning, MaxTokens: 9}, ""},
		{"no model", Config{}, "model"},
		{"unknown api type", Config{Model: "m", APIType: "bedrock"}, "API type"},
		{"unknown kind", Config{Model: "m", ModelKind: "thinking"}, "model kind"},
		{"negative cap", Config{Model: "m", MaxTokens: -1}, "token cap"},
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		if (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("%s: Validate() = %v, want an error about %q", tt.name, err, tt.wantErr)
		}
	}
}

func TestDefaultMaxTokensFollowTheKind(t *testing.T) {
	t.Parallel()
	tests := []struct {
		cfg  Config
		want int
	}{
		{Config{Model: "gpt-4o-mini"}, DefaultMaxTokens},
		{Config{Model: "o3-mini"}, DefaultReasoningMaxTokens},
		{Config{Model: "o3-mini", ModelKind: ModelKindChat}, DefaultMaxTokens},
		{Config{Model: "letters", ModelKind: ModelKindReasoning}, DefaultReasoningMaxTokens},
		{Config{Model: "o3-mini", MaxTokens: 2000}, 2000},
	}
	for _, tt := range tests {
		if got := tt.cfg.withDefaults().MaxTokens; got != tt.want {
			t.Errorf("%+v: MaxTokens = %d, want %d", tt.cfg, got, tt.want)
		}
	}
}

func TestParseRateLimit(t *testing.T) {
	t.Parallel()
	h := http.Header{}
	if got := parseRateLimit(h); got != (RateLimit{}) {
		t.Fatalf("no headers: %+v", got)
	}
	for k, v := range map[string]string{
		"x-ratelimit-limit-requests": "60", "x-ratelimit-remaining-requests": "59", "x-ratelimit-reset-requests": "1s",
		"x-ratelimit-limit-tokens": "40000", "x-ratelimit-remaining-tokens": "39000", "x-ratelimit-reset-tokens": "6m0s",
	} {
		h.Set(k, v)
	}
	want := RateLimit{Reported: true, LimitRequests: 60, RemainingRequests: 59, ResetRequests: time.Second,
		LimitTokens: 40000, RemainingTokens: 39000, ResetTokens: 6 * time.Minute}
	if got := parseRateLimit(h); got != want {
		t.Fatalf("parseRateLimit = %+v, want %+v", got, want)
	}
	azure := http.Header{"X-Ratelimit-Remaining-Tokens": {"12"}, "X-Ratelimit-Reset-Tokens": {"soon"}}
	if got := parseRateLimit(azure); got != (RateLimit{Reported: true, RemainingTokens: 12}) {
		t.Fatalf("Azure's headers: %+v", got)
	}
}

// TestChatSpanSaysWhereUsageComesFromAndWhyItFailed: the span carries the usage source and,
// for an answer that is not a letter, the reason as error.type with what the call cost.
func TestChatSpanSaysWhereUsageComesFromAndWhyItFailed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		user                  string
		wantSource, wantError string
	}{
		{"Job description:\nPlumber at Mario Bros", UsageEstimated, ""},
		{"Job description:\nPlumber [[fakeopenai:finish=length]]", UsageEstimated, ReasonTruncated},
	}
	for _, tt := range tests {
		rec := tracetest.NewSpanRecorder()
		p := providers()[2] // vllm: no usage in streams
		_, b := setup(t, p)
		c := b.with(func(cfg *Config) {
			cfg.Telemetry = telemetry.New(slog.Default(), sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
		})
		_, _ = c.Stream(t.Context(), "be brief", tt.user, func(string) {}) // the span tells
		attrs := map[string]string{}
		for _, s := range rec.Ended() {
			if s.Name() == "chat "+p.chat {
				for _, kv := range s.Attributes() {
					attrs[string(kv.Key)] = kv.Value.String()
				}
			}
		}
		if attrs["careerops.llm.usage.source"] != tt.wantSource || attrs["error.type"] != tt.wantError ||
			attrs["gen_ai.usage.output_tokens"] == "" || attrs["careerops.llm.reasoning_model"] != "false" {
			t.Errorf("%q: chat span attributes %v", tt.user, attrs)
		}
	}
}

func TestTokenCounterPicksTheModelsEncoding(t *testing.T) {
	t.Parallel()
	for model, want := range map[string]string{
		"gpt-4o-mini": "o200k_base", "gpt-4.1": "o200k_base", "o3-mini": "o200k_base", "openai/gpt-5": "o200k_base",
		"gpt-4": "cl100k_base", "gpt-3.5-turbo": "cl100k_base", "llama3.1:8b": "cl100k_base", "meta-llama/Llama-3.1-8B": "cl100k_base",
	} {
		if got := codecFor(model).GetName(); got != want {
			t.Errorf("codecFor(%q) = %s, want %s", model, got, want)
		}
	}
	if n := newTokenCounter("gpt-4o").count("Hello, world!"); n != 4 {
		t.Errorf("count = %d, want 4", n)
	}
}
