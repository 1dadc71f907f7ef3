// Package telemetry sets up what every program reports: OpenTelemetry traces configured by the
// standard OTEL_* variables, and JSON logs that carry the trace, span and job of each line.
package telemetry

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
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

// Propagator is the W3C trace-context propagator every program uses. Baggage is not carried:
// nothing here reads it, and a client's baggage must reach neither the messages nor the
// third-party LLM.
func Propagator() propagation.TextMapPropagator {
	return propagation.TraceContext{}
}

// New wraps an existing logger and tracer provider (tests use an in-memory one).
func New(log *slog.Logger, tp trace.TracerProvider) *Telemetry {
	return &Telemetry{Logger: log, TracerProvider: tp, Propagator: Propagator()}
}

// DefaultLogLevel is the level of a program's logs unless LOG_LEVEL says otherwise.
const DefaultLogLevel = "info"

// Config is a program's logging and tracing: the log level and the standard OpenTelemetry
// variables that decide how spans leave the program, read with the program's configuration
// (package config). The SDK reads its other variables (OTEL_RESOURCE_ATTRIBUTES,
// OTEL_TRACES_SAMPLER(_ARG), OTEL_BSP_*, OTEL_EXPORTER_OTLP_HEADERS, …) itself, as it
// documents.
type Config struct {
	// LogLevel is debug, info, warn or error. Defaults to DefaultLogLevel.
	LogLevel string `env:"LOG_LEVEL" help:"One of debug, info, warn or error."`
	// ServiceName names the service on spans and logs; defaults to the program's own name.
	ServiceName string `env:"OTEL_SERVICE_NAME" help:"The service name on spans; defaults to careerops-api or careerops-worker."`
	// TracesExporter is otlp or none; empty exports when an endpoint is set.
	TracesExporter string `env:"OTEL_TRACES_EXPORTER" help:"otlp or none; unset: otlp when an OTLP endpoint is set."`
	// Endpoint is the OTLP/HTTP base URL; spans go to its /v1/traces.
	Endpoint string `env:"OTEL_EXPORTER_OTLP_ENDPOINT" help:"OTLP/HTTP base URL (e.g. http://jaeger:4318); spans go to its /v1/traces."`
	// TracesEndpoint is the OTLP/HTTP URL of spans, used as it is; it wins over Endpoint.
	TracesEndpoint string `env:"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" help:"OTLP/HTTP URL for spans, used as it is; wins over OTEL_EXPORTER_OTLP_ENDPOINT."`
	// Protocol of the OTLP exporter: only http/protobuf is supported.
	Protocol string `env:"OTEL_EXPORTER_OTLP_PROTOCOL" help:"Only http/protobuf is supported."`
	// TracesProtocol wins over Protocol for spans.
	TracesProtocol string `env:"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL" help:"Only http/protobuf is supported."`
	// CaptureContent records prompts and letters on LLM spans (personal data).
	CaptureContent bool `env:"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT" help:"true records prompts and letters on LLM spans (personal data)."`
}

// Setup builds a program's tracing from cfg:
//   - traces go to an OTLP/HTTP endpoint when OTEL_EXPORTER_OTLP_ENDPOINT (or
//     OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set or OTEL_TRACES_EXPORTER=otlp; with
//     OTEL_TRACES_EXPORTER=none or no endpoint, spans get ids (logs and the API still carry
//     trace ids) but record nothing and are marked not sampled, which the programs after
//     this one in a job's path follow;
//   - OTEL_SERVICE_NAME names the service, else service; OTEL_RESOURCE_ATTRIBUTES,
//     OTEL_TRACES_SAMPLER(_ARG) and OTEL_BSP_* work as the SDK documents;
//   - OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true records prompts and letters on
//     LLM spans.
func Setup(ctx context.Context, service string, cfg Config, log *slog.Logger) (*Telemetry, error) {
	exp, err := exporter(ctx, cfg)
	if err != nil {
		return nil, err
	}
	// With nothing to export to, spans keep their ids (for logs and the API) but record
	// nothing: recorded spans were a third of the api's allocations under load.
	opts := []sdktrace.TracerProviderOption{sdktrace.WithSampler(sdktrace.NeverSample())}
	if exp != nil {
		opts = []sdktrace.TracerProviderOption{sdktrace.WithSpanProcessor(jobIDProcessor{}), sdktrace.WithBatcher(exp)}
	}
	resOpts := []resource.Option{
		resource.WithAttributes(semconv.ServiceName(service)),
		resource.WithFromEnv(), // OTEL_RESOURCE_ATTRIBUTES wins over the program's name
		resource.WithTelemetrySDK(),
		resource.WithHost(),
		resource.WithProcessPID(),
	}
	if cfg.ServiceName != "" {
		resOpts = append(resOpts, resource.WithAttributes(semconv.ServiceName(cfg.ServiceName)))
	}
	res, err := resource.New(ctx, resOpts...)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("telemetry: resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(append(opts, sdktrace.WithResource(res))...)
	t := New(log, tp)
	t.CaptureContent = cfg.CaptureContent
	t.shutdown = tp.Shutdown
	return t, nil
}

// exporter is the span exporter cfg asks for, or nil for none.
func exporter(ctx context.Context, cfg Config) (sdktrace.SpanExporter, error) {
	kind := strings.ToLower(strings.TrimSpace(cfg.TracesExporter))
	switch {
	case kind == "none":
		return nil, nil
	case kind == "otlp" || (kind == "" && cfg.Endpoint+cfg.TracesEndpoint != ""):
	case kind != "":
		return nil, fmt.Errorf("OTEL_TRACES_EXPORTER %q is not supported: use otlp or none", kind)
	default:
		return nil, nil
	}
	if proto := cmp.Or(cfg.TracesProtocol, cfg.Protocol); proto != "" && proto != "http/protobuf" {
		return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL %q is not supported: use http/protobuf (port 4318)", proto)
	}
	var opts []otlptracehttp.Option
	switch {
	case cfg.TracesEndpoint != "":
		opts = append(opts, otlptracehttp.WithEndpointURL(cfg.TracesEndpoint))
	case cfg.Endpoint != "":
		opts = append(opts, otlptracehttp.WithEndpointURL(strings.TrimRight(cfg.Endpoint, "/")+"/v1/traces"))
	}
	exp, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("telemetry: OTLP exporter: %w", err)
	}
	return exp, nil
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

// Start is a program's telemetry: JSON logs on w at cfg.LogLevel, traces per Setup. Call
// Close when the program ends.
func Start(ctx context.Context, service string, cfg Config, w io.Writer) (*Telemetry, error) {
	log, err := NewLogger(w, cmp.Or(cfg.LogLevel, DefaultLogLevel), service)
	if err != nil {
		return nil, err
	}
	return Setup(ctx, service, cfg, log)
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
