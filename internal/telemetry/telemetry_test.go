package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/careerops/jobs/internal/config"
)

func TestLogLinesCarryTraceSpanAndJob(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log, err := NewLogger(&buf, "info", "test")
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider()
	ctx, span := tp.Tracer("t").Start(context.Background(), "op")
	defer span.End()
	log.InfoContext(WithJobID(ctx, "job-1"), "with everything")
	log.InfoContext(context.Background(), "with nothing")
	log.With(slog.String("k", "v")).InfoContext(ctx, "derived logger")

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	var got []map[string]any
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatal(err)
		}
		got = append(got, m)
	}
	sc := span.SpanContext()
	if got[0]["trace_id"] != sc.TraceID().String() || got[0]["span_id"] != sc.SpanID().String() || got[0]["job_id"] != "job-1" || got[0]["service"] != "test" {
		t.Fatalf("line with a span and a job: %v", got[0])
	}
	if _, ok := got[1]["trace_id"]; ok {
		t.Fatalf("line without a span has a trace id: %v", got[1])
	}
	if got[2]["trace_id"] != sc.TraceID().String() || got[2]["k"] != "v" {
		t.Fatalf("a derived logger lost the ids: %v", got[2])
	}
	if _, err := NewLogger(&buf, "loud", "test"); err == nil {
		t.Fatal("an unknown level was accepted")
	}
}

func TestJobIDReachesSpansOfLibraries(t *testing.T) {
	t.Parallel()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(NewJobIDProcessor()), sdktrace.WithSpanProcessor(rec))
	ctx, parent := tp.Tracer("t").Start(context.Background(), "parent")
	ctx = WithJobID(ctx, "job-7")
	_, child := tp.Tracer("library").Start(ctx, "child") // a library knows nothing of jobs
	child.End()
	parent.End()
	for _, s := range rec.Ended() {
		found := false
		for _, kv := range s.Attributes() {
			found = found || (kv.Key == JobIDKey && kv.Value.AsString() == "job-7")
		}
		if !found {
			t.Fatalf("span %s has no %s", s.Name(), JobIDKey)
		}
	}
}

func TestSetupReadsTheStandardVariables(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string
		capture bool
		records bool // spans record what is done (they are exported)
	}{
		{"no endpoint: spans with ids that record nothing", nil, "", false, false},
		{"exporter none", map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"}, "", false, false},
		{"otlp over http", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, "", false, true},
		{"grpc refused with a clear line", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "http/protobuf", false, false},
		{"unknown exporter", map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, "not supported", false, false},
		{"content capture is opt-in", map[string]string{"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true"}, "", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var cfg Config
			err := config.Load(func(k string) string { return tt.env[k] }, &cfg)
			if err != nil {
				t.Fatal(err)
			}
			tel, err := Setup(context.Background(), "svc", cfg, slog.Default())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Setup = %v, want an error about %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer tel.Close()
			_, span := tel.Tracer("t").Start(context.Background(), "op")
			if !span.SpanContext().IsValid() {
				t.Fatal("no valid span: logs and the API would have no trace id")
			}
			if span.IsRecording() != tt.records { // a recorded span nobody exports is waste
				t.Fatalf("span recording = %v, want %v", span.IsRecording(), tt.records)
			}
			span.End()
			if tel.CaptureContent != tt.capture {
				t.Fatalf("CaptureContent = %v", tel.CaptureContent)
			}
		})
	}
}
