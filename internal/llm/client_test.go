package llm

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/careerops/jobs/internal/fakeopenai"
	"github.com/careerops/jobs/internal/telemetry"
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
	fake, err := fakeopenai.New(fakeopenai.Config{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	for _, capture := range []bool{false, true} {
		rec := tracetest.NewSpanRecorder()
		tel := telemetry.New(slog.Default(), sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
		tel.CaptureContent = capture
		c := New(Config{BaseURL: srv.URL + "/v1", APIKey: "k", Model: "m", Telemetry: tel})
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
