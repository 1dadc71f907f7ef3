// Package llmbudget keeps the calls of every worker replica to one LLM endpoint within the
// provider's limits of requests and tokens per minute, which count per organisation, not per
// pod. Budgeted wraps the endpoint's client: before each call it reserves a request and the
// call's most tokens from a budget shared through PostgreSQL (Store), waits its turn, calls,
// and settles the real usage; a 429's Retry-After pauses the budget for everyone, and the
// provider's x-ratelimit-reset-* headers keep it from running ahead of the provider's own
// count. A call that could not start within MaxWait is not made: it fails with an
// llm.ErrDeferred error, and the worker puts the job back for later without counting an
// attempt, so a backlog drains at the provider's pace instead of holding leases.
package llmbudget

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/careerops/jobs/internal/llm"
	"github.com/careerops/jobs/internal/pause"
	"github.com/careerops/jobs/internal/telemetry"
)

// DefaultMaxWait is Config.MaxWait's default: a call waits at most this long for its turn.
const DefaultMaxWait = 20 * time.Second

// storeTimeout bounds each step on the budget's table: a reservation (past it the call goes
// unbudgeted) and the settlement after a call (which runs even if the call's context ended).
const storeTimeout = 5 * time.Second

// Config configures a Budgeted.
type Config struct {
	// Name keys the budget in the shared table: one per endpoint and model (the replicas of
	// a worker agree on it), e.g. the base URL and the model.
	Name string
	// Limits are the endpoint's limits; 0 leaves one unlimited.
	Limits Limits
	// MaxWait is the longest a call waits for its turn; a call that would wait longer is
	// deferred. Defaults to DefaultMaxWait.
	MaxWait time.Duration
	// Tokens is the most tokens a call of a prompt may use, reserved before it (the prompt's
	// and the answer's cap: llm.Client.MaxTokens). Nil reserves none: the real usage is
	// charged after the call.
	Tokens func(system, user string) int
	// Telemetry logs; defaults to slog.Default().
	Telemetry *telemetry.Telemetry
	// Metrics records waits, deferrals and 429s; nil records nothing.
	Metrics *Metrics
}

// Budgeted is an LLM whose calls stay within a shared budget.
type Budgeted struct {
	next  llm.Streamer
	store *Store
	cfg   Config
	log   *slog.Logger
}

// New returns next within the budget cfg names, kept in store.
func New(next llm.Streamer, store *Store, cfg Config) *Budgeted {
	cfg.MaxWait = cmp.Or(max(cfg.MaxWait, 0), DefaultMaxWait)
	if cfg.Tokens == nil {
		cfg.Tokens = func(string, string) int { return 0 }
	}
	if cfg.Telemetry == nil {
		cfg.Telemetry = telemetry.New(slog.Default(), noop.NewTracerProvider())
	}
	return &Budgeted{next: next, store: store, cfg: cfg, log: cfg.Telemetry.Logger}
}

// Attributes of the budget's span event.
const (
	budgetKey = attribute.Key("careerops.llm.budget")
	waitKey   = attribute.Key("careerops.llm.budget.wait_ms")
)

// Stream waits for the budget, then calls the endpoint. A call that would wait longer than
// MaxWait returns at once with a temporary *llm.Error wrapping llm.ErrDeferred, whose
// RetryAfter is when to come back: its place in the line of deferred calls. Should the
// budget's table be unreachable, the call goes unbudgeted (logged): the provider's limits
// still hold, with 429s.
func (b *Budgeted) Stream(ctx context.Context, system, user string, onDelta func(string)) (llm.Completion, error) {
	tokens := b.cfg.Tokens(system, user)
	wait, ok, err := b.reserve(ctx, tokens)
	switch {
	case err != nil && ctx.Err() != nil:
		return llm.Completion{}, ctx.Err()
	case err != nil:
		b.log.WarnContext(ctx, "llmbudget: budget unavailable, calling without it", slog.String("error", err.Error()))
		b.cfg.Metrics.reserved(outcomeUnavailable, 0)
		return b.next.Stream(ctx, system, user, onDelta)
	case !ok:
		b.event(ctx, "llm budget deferred", wait)
		b.cfg.Metrics.reserved(outcomeDeferred, 0)
		return llm.Completion{}, &llm.Error{Temporary: true, RetryAfter: wait,
			Err: fmt.Errorf("%w: its turn is more than %s away; back in %s", llm.ErrDeferred, b.cfg.MaxWait, wait.Round(time.Millisecond))}
	}
	if wait > 0 {
		b.event(ctx, "llm budget wait", wait)
		b.cfg.Metrics.reserved(outcomeWaited, wait)
		if err := pause.For(ctx, wait); err != nil {
			b.settle(ctx, Outcome{Requests: -1, Tokens: -tokens}) // never made
			return llm.Completion{}, err
		}
	} else {
		b.cfg.Metrics.reserved(outcomeImmediate, 0)
	}
	out, err := b.next.Stream(ctx, system, user, onDelta)
	o := outcome(tokens, out, err)
	if o.RateLimited {
		b.cfg.Metrics.rateLimited()
	}
	b.settle(ctx, o)
	return out, err
}

// reserve asks the budget for a turn for a call of tokens, for at most storeTimeout.
func (b *Budgeted) reserve(ctx context.Context, tokens int) (wait time.Duration, ok bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	return b.store.Reserve(ctx, b.cfg.Name, b.cfg.Limits, tokens, b.cfg.MaxWait)
}

// outcome is what a call reserved with tokens cost: the usage of an answer, nothing for a
// call that was refused before it was sent or answered 429, the reservation otherwise (a
// timeout or a broken stream may have used it all).
func outcome(tokens int, out llm.Completion, err error) Outcome {
	var e *llm.Error
	switch {
	case out.UsageSource != "":
		return Outcome{Tokens: out.PromptTokens + out.CompletionTokens - tokens, RateLimit: out.RateLimit}
	case errors.As(err, &e) && e.Reason == llm.ReasonClientRejected:
		return Outcome{Requests: -1, Tokens: -tokens}
	case errors.As(err, &e) && e.StatusCode == 429:
		return Outcome{Tokens: -tokens, RateLimited: true, RetryAfter: e.RetryAfter, RateLimit: e.RateLimit}
	case errors.As(err, &e):
		return Outcome{RateLimit: e.RateLimit}
	}
	return Outcome{}
}

// settle records o, even after ctx ended; a failure only costs accuracy, and is logged.
func (b *Budgeted) settle(ctx context.Context, o Outcome) {
	if o == (Outcome{}) {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	defer cancel()
	if err := b.store.Settle(ctx, b.cfg.Name, b.cfg.Limits, o); err != nil {
		b.log.WarnContext(ctx, "llmbudget: settle", slog.String("error", err.Error()))
	}
}

// event notes a wait (or a deferral) on the caller's span.
func (b *Budgeted) event(ctx context.Context, name string, wait time.Duration) {
	trace.SpanFromContext(ctx).AddEvent(name, trace.WithAttributes(
		budgetKey.String(b.cfg.Name), waitKey.Int64(wait.Milliseconds())))
}
