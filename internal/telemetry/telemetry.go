// Package telemetry sets up what every program reports: OpenTelemetry traces configured by the
// standard OTEL_* variables, and JSON logs that carry the trace, span and job of each line.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/exaring/otelpgx"
	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
)

// JobIDKey is the span attribute that names the job a span works for, on every span of a job.
const JobIDKey = attribute.Key("careerops.job.id")

// Telemetry is a program's tracing and logging.
type Telemetry struct {
	Logger         *slog.Logger
	TracerProvider trace.TracerProvider
	Propagator     propagation.TextMapPropagator
	// CaptureContent records prompts and letters on LLM spans; off by default (personal data).
	CaptureContent bool
	shutdown       func(context.Context) error
}

// Tracer returns the program's tracer for a component.
func (t *Telemetry) Tracer(name string) trace.Tracer { return t.TracerProvider.Tracer(name) }

// Shutdown flushes and stops the exporter.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	if t.shutdown == nil {
		return nil
	}
	return t.shutdown(ctx)
}

// Propagator is the W3C trace-context and baggage propagator every program uses.
func Propagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

// New wraps an existing logger and tracer provider (tests use an in-memory one).
func New(log *slog.Logger, tp trace.TracerProvider) *Telemetry {
	return &Telemetry{Logger: log, TracerProvider: tp, Propagator: Propagator()}
}

// Setup builds a program's telemetry from the environment:
//   - traces go to an OTLP/HTTP endpoint when OTEL_EXPORTER_OTLP_ENDPOINT (or
//     OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set or OTEL_TRACES_EXPORTER=otlp; with
//     OTEL_TRACES_EXPORTER=none or no endpoint, spans are made (logs and the API still carry
//     trace ids) but not exported;
//   - OTEL_SERVICE_NAME names the service, else service; OTEL_RESOURCE_ATTRIBUTES,
//     OTEL_TRACES_SAMPLER(_ARG) and OTEL_BSP_* work as the SDK documents;
//   - OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true records prompts and letters on
//     LLM spans.
func Setup(ctx context.Context, service string, getenv func(string) string, log *slog.Logger) (*Telemetry, error) {
	opts := []sdktrace.TracerProviderOption{sdktrace.WithSpanProcessor(jobIDProcessor{})}
	exporter := strings.ToLower(strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")))
	endpoint := getenv("OTEL_EXPORTER_OTLP_ENDPOINT") + getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
	switch {
	case exporter == "none":
	case exporter == "otlp" || (exporter == "" && endpoint != ""):
		proto := getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
		if proto == "" {
			proto = getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
		}
		if proto != "" && proto != "http/protobuf" {
			return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL %q is not supported: use http/protobuf (port 4318)", proto)
		}
		exp, err := otlptracehttp.New(ctx)
		if err != nil {
			return nil, fmt.Errorf("telemetry: OTLP exporter: %w", err)
		}
		opts = append(opts, sdktrace.WithBatcher(exp))
	case exporter != "":
		return nil, fmt.Errorf("OTEL_TRACES_EXPORTER %q is not supported: use otlp or none", exporter)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName(service)),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win
		resource.WithTelemetrySDK(),
		resource.WithHost(),
		resource.WithProcessPID(),
	)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("telemetry: resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(append(opts, sdktrace.WithResource(res))...)
	t := New(log, tp)
	t.CaptureContent = strings.EqualFold(getenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"), "true")
	t.shutdown = tp.Shutdown
	return t, nil
}

type jobIDKey struct{}

// WithJobID marks ctx as working for a job: every span started under it gets
// careerops.job.id, and every log line written with it gets job_id.
func WithJobID(ctx context.Context, id string) context.Context {
	trace.SpanFromContext(ctx).SetAttributes(JobIDKey.String(id))
	return context.WithValue(ctx, jobIDKey{}, id)
}

// JobID returns the job ctx works for, if any.
func JobID(ctx context.Context) string {
	id, _ := ctx.Value(jobIDKey{}).(string)
	return id
}

// jobIDProcessor puts careerops.job.id on every span started in a job's context, including
// the spans of libraries (database, HTTP client) that know nothing of jobs.
type jobIDProcessor struct{}

func (jobIDProcessor) OnStart(ctx context.Context, s sdktrace.ReadWriteSpan) {
	if id := JobID(ctx); id != "" {
		s.SetAttributes(JobIDKey.String(id))
	}
}
func (jobIDProcessor) OnEnd(sdktrace.ReadOnlySpan)      {}
func (jobIDProcessor) Shutdown(context.Context) error   { return nil }
func (jobIDProcessor) ForceFlush(context.Context) error { return nil }

// NewJobIDProcessor returns the processor Setup installs, for tests that build their own
// tracer provider.
func NewJobIDProcessor() sdktrace.SpanProcessor { return jobIDProcessor{} }

// FromEnv is a program's telemetry: JSON logs on w at level, traces per Setup (reading the
// process environment). Call Close when the program ends.
func FromEnv(ctx context.Context, service, level string, w io.Writer) (*Telemetry, error) {
	log, err := NewLogger(w, level, service)
	if err != nil {
		return nil, err
	}
	return Setup(ctx, service, os.Getenv, log)
}

// Close flushes the spans still buffered, waiting up to 5 seconds.
func (t *Telemetry) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := t.Shutdown(ctx); err != nil {
		t.Logger.WarnContext(ctx, "telemetry: flushing spans", slog.String("error", err.Error()))
	}
}

// QueryTracer traces every database query as a span of this program.
func (t *Telemetry) QueryTracer() pgx.QueryTracer {
	return otelpgx.NewTracer(otelpgx.WithTracerProvider(t.TracerProvider),
		otelpgx.WithDisableAcquireTracer(), otelpgx.WithDisableConnectionDetailsInAttributes())
}

// Pprof serves Go's profiles on addr, if addr is set, until stop is called.
func (t *Telemetry) Pprof(addr string) (stop func()) {
	if addr == "" {
		return func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		if err := ServePprof(ctx, addr, t.Logger); err != nil {
			t.Logger.ErrorContext(ctx, "pprof", slog.String("error", err.Error()))
		}
	}()
	return cancel
}
