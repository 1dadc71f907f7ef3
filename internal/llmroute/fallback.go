package llmroute

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/careerops/jobs/internal/llm"
	"github.com/careerops/jobs/internal/telemetry"
)

// Endpoint names on metrics, spans and logs.
const (
	endpointPrimary  = "primary"
	endpointFallback = "fallback"
)

// Reasons a call goes to the fallback.
const (
	reasonOpen          = "breaker_open"
	reasonPrimaryFailed = "primary_failed"
)

// Span attributes and events of the router, on the caller's span (the worker's job span).
const (
	endpointKey       = attribute.Key("careerops.llm.endpoint")
	endpointModelKey  = attribute.Key("careerops.llm.endpoint.model")
	fallbackReasonKey = attribute.Key("careerops.llm.fallback_reason")
	breakerEvent      = "llm breaker state change"
)

// Config configures a Fallback.
type Config struct {
	// Primary is the endpoint used while it works; Fallback the one used while the
	// primary's breaker is open. Both are required.
	Primary, Fallback llm.Streamer
	// PrimaryModel and FallbackModel name the endpoints' models on spans and in logs.
	PrimaryModel, FallbackModel string
	// Breaker configures the primary's circuit breaker.
	Breaker BreakerConfig
	// AttemptTimeout is the time one call may take, a retry on the fallback included: the
	// worker's LLM_TIMEOUT, on which a job's lease depends. After a temporary failure of the
	// primary the call is retried at once on the fallback only if at least half of it is left.
	// Required.
	AttemptTimeout time.Duration
	// Telemetry logs the breaker's state changes. Defaults to slog.Default().
	Telemetry *telemetry.Telemetry
	// Metrics records calls, states and switches; nil records nothing.
	Metrics *Metrics
	// Now is the clock; defaults to time.Now.
	Now func() time.Time
}

// Fallback sends calls to the primary endpoint and, while its circuit breaker is open, to the
// fallback. A call that fails temporarily on the primary before any of its answer was handed
// on is retried at once on the fallback, time permitting; an answer is never spliced from two
// endpoints. The breaker's state is this process's own. Safe for concurrent use.
type Fallback struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	breaker *Breaker
}

// New returns a Fallback over cfg's two endpoints.
func New(cfg Config) *Fallback {
	if cfg.Telemetry == nil {
		cfg.Telemetry = telemetry.New(slog.Default(), noop.NewTracerProvider())
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Fallback{cfg: cfg, log: cfg.Telemetry.Logger, breaker: NewBreaker(cfg.Breaker)}
}

// State is the primary's breaker state now.
func (f *Fallback) State() State {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.breaker.State()
}

// Stream writes the text with the endpoint the breaker picks; see Fallback.
func (f *Fallback) Stream(ctx context.Context, system, user string, onDelta func(string)) (llm.Completion, error) {
	start := f.cfg.Now()
	f.mu.Lock()
	ticket, tr := f.breaker.Admit(start)
	f.mu.Unlock()
	f.changed(ctx, tr)
	if !ticket.Primary {
		return f.fallback(ctx, system, user, onDelta, reasonOpen, f.cfg.AttemptTimeout)
	}

	out, handedOn, err := f.primary(ctx, ticket, system, user, onDelta)
	left := f.cfg.AttemptTimeout - f.cfg.Now().Sub(start)
	if !temporary(err) || handedOn || ctx.Err() != nil || left < f.cfg.AttemptTimeout/2 {
		f.annotate(ctx, endpointPrimary, f.cfg.PrimaryModel, "")
		return out, err
	}
	fout, ferr := f.fallback(ctx, system, user, onDelta, reasonPrimaryFailed, left)
	var perr, fe *llm.Error
	if errors.As(err, &perr) && errors.As(ferr, &fe) && perr.RetryAfter > fe.RetryAfter {
		// Both failed: the next attempt waits as long as either asked.
		e := *fe
		e.RetryAfter = perr.RetryAfter
		ferr = &e
	}
	return fout, ferr
}

// primary calls the primary endpoint with ticket and records the outcome; handedOn says
// whether part of the answer went to onDelta. A panic (in onDelta, say) counts as neutral, so
// that a probe never leaves the breaker waiting for its outcome.
func (f *Fallback) primary(ctx context.Context, ticket Ticket, system, user string, onDelta func(string)) (out llm.Completion, handedOn bool, err error) {
	o := Neutral
	defer func() {
		f.mu.Lock()
		tr := f.breaker.Record(f.cfg.Now(), ticket, o)
		f.mu.Unlock()
		f.changed(ctx, tr)
	}()
	watched := onDelta
	if onDelta != nil {
		watched = func(s string) { handedOn = true; onDelta(s) }
	}
	out, err = f.cfg.Primary.Stream(ctx, system, user, watched)
	o = outcome(ctx, err)
	f.cfg.Metrics.call(endpointPrimary, llm.Outcome(err))
	return out, handedOn, err
}

// fallback calls the fallback endpoint within the time left of the attempt.
func (f *Fallback) fallback(ctx context.Context, system, user string, onDelta func(string), reason string, left time.Duration) (llm.Completion, error) {
	f.cfg.Metrics.fallback(reason)
	f.annotate(ctx, endpointFallback, f.cfg.FallbackModel, reason)
	callCtx, cancel := context.WithTimeout(ctx, left)
	defer cancel()
	out, err := f.cfg.Fallback.Stream(callCtx, system, user, onDelta)
	if err != nil && ctx.Err() == nil && callCtx.Err() != nil && !temporary(err) {
		// The attempt's time ran out, not the caller's: a timeout, as the endpoint's own.
		err = &llm.Error{Temporary: true, Err: fmt.Errorf("no answer within %s (the fallback's share of the attempt)", left.Round(time.Millisecond))}
	}
	f.cfg.Metrics.call(endpointFallback, llm.Outcome(err))
	return out, err
}

// changed logs, counts and traces a change of the breaker's state.
func (f *Fallback) changed(ctx context.Context, tr Transition) {
	if !tr.Changed() {
		return
	}
	f.cfg.Metrics.transition(endpointPrimary, tr)
	trace.SpanFromContext(ctx).AddEvent(breakerEvent, trace.WithAttributes(
		endpointKey.String(endpointPrimary), attribute.String("from", tr.From.String()), attribute.String("to", tr.To.String())))
	attrs := []any{slog.String("endpoint", endpointPrimary), slog.String("model", f.cfg.PrimaryModel),
		slog.String("from", tr.From.String()), slog.String("to", tr.To.String())}
	switch tr.To {
	case Open:
		f.log.WarnContext(ctx, "llm: primary endpoint failing; calls go to the fallback", append(attrs, slog.String("fallback_model", f.cfg.FallbackModel))...)
	default:
		f.log.InfoContext(ctx, "llm: primary endpoint breaker "+tr.To.String(), attrs...)
	}
}

// annotate says on the caller's span which endpoint and model answer the call.
func (f *Fallback) annotate(ctx context.Context, endpoint, model, reason string) {
	attrs := []attribute.KeyValue{endpointKey.String(endpoint), endpointModelKey.String(model)}
	if reason != "" {
		attrs = append(attrs, fallbackReasonKey.String(reason))
	}
	trace.SpanFromContext(ctx).SetAttributes(attrs...)
}

// outcome is what a primary's call says of its health: a letter is a success, a temporary
// failure a failure; a permanent error or the caller giving up says nothing.
func outcome(ctx context.Context, err error) Outcome {
	switch {
	case err == nil:
		return Success
	case ctx.Err() != nil:
		return Neutral
	case temporary(err):
		return Failure
	}
	return Neutral
}

// temporary reports whether err is an LLM failure a later call may not have.
func temporary(err error) bool {
	var e *llm.Error
	return errors.As(err, &e) && e.Temporary
}
