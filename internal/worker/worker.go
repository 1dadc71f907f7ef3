// Package worker consumes cover-letter.generate, asks the LLM for each letter and records the
// outcome. Contract per message: the job's state change and the messages announcing it are
// committed in one transaction (through the outbox) before the delivery is acked; a transient
// failure schedules a delayed retry the same way; a permanent one fails the job and
// dead-letters the message; a message that cannot be a job goes to the DLQ as it came.
package worker

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/careerops/jobs/internal/telemetry"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/careerops/jobs/internal/broker"
	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/jobstore"
	"github.com/careerops/jobs/internal/llm"
	"github.com/careerops/jobs/internal/progress"
	"github.com/careerops/jobs/internal/prompt"
)

// LLM writes text, handing each piece to onDelta as it comes.
type LLM interface {
	Stream(ctx context.Context, system, user string, onDelta func(string)) (llm.Completion, error)
}

// Progress announces a job's live progress; it may drop events.
type Progress interface {
	Publish(progress.Event)
}

// JobStore records job state.
type JobStore interface {
	Claim(ctx context.Context, r jobstore.ClaimRequest) (jobstore.Job, jobstore.Lease, error)
	Complete(ctx context.Context, l jobstore.Lease, r jobstore.Result, headers map[string]string) (jobstore.Job, error)
	Retry(ctx context.Context, l jobstore.Lease, errMsg string, runAfter time.Time, headers map[string]string) (jobstore.Job, error)
	Fail(ctx context.Context, l jobstore.Lease, errMsg string, headers map[string]string, dl jobstore.DeadLetter) (jobstore.Job, error)
	Release(ctx context.Context, l jobstore.Lease) error
	DeadLetterMessage(ctx context.Context, id string, dl jobstore.DeadLetter) error
	ReapExpired(ctx context.Context, grace time.Duration, maxAttempts int) (requeued, failed int, err error)
}

// Defaults of Config, stated once: the worker program's --help shows them too.
const (
	DefaultConcurrency    = 4
	DefaultMaxAttempts    = 5
	DefaultRetryBaseDelay = 2 * time.Second
	DefaultRetryMaxDelay  = 5 * time.Minute
	DefaultLLMTimeout     = 60 * time.Second
	DefaultDrainTimeout   = 30 * time.Second
	DefaultReapInterval   = 30 * time.Second
	// leaseMargin is the time a job's lease gives beyond the LLM call, to store the result.
	leaseMargin = 30 * time.Second
)

// Config configures a Worker. Zero fields take the Default* values.
type Config struct {
	// Concurrency is how many jobs run at once; also the prefetch.
	Concurrency int
	// MaxAttempts is how many LLM attempts a job gets before it fails for good.
	MaxAttempts int
	// RetryBaseDelay is the backoff before the first retry, doubled for each next.
	RetryBaseDelay time.Duration
	// RetryMaxDelay caps the backoff.
	RetryMaxDelay time.Duration
	// LLMTimeout bounds one LLM call; a claimed job's lease is this plus a margin to store
	// the result, so another worker takes a job over only once its call must have ended.
	LLMTimeout time.Duration
	// DrainTimeout bounds how long shutdown waits for jobs in flight before giving them back.
	DrainTimeout time.Duration
	// ReapInterval is how often the worker looks for jobs whose worker died.
	ReapInterval time.Duration
	// Telemetry logs and traces; defaults to slog.Default() and no tracing.
	Telemetry *telemetry.Telemetry
	// Metrics records what happens; nil records nothing.
	Metrics *Metrics
	// Progress receives status changes and the letter as it is written; nil: none.
	Progress Progress
}

// LeaseFor is how long a claimed job stays with its worker before another may take it over.
func (c Config) LeaseFor() time.Duration {
	return cmp.Or(c.LLMTimeout, DefaultLLMTimeout) + leaseMargin
}

func (c Config) withDefaults() Config {
	c.Concurrency = cmp.Or(max(c.Concurrency, 0), DefaultConcurrency)
	c.MaxAttempts = cmp.Or(max(c.MaxAttempts, 0), DefaultMaxAttempts)
	c.RetryBaseDelay = cmp.Or(max(c.RetryBaseDelay, 0), DefaultRetryBaseDelay)
	c.RetryMaxDelay = cmp.Or(max(c.RetryMaxDelay, 0), DefaultRetryMaxDelay)
	c.LLMTimeout = cmp.Or(max(c.LLMTimeout, 0), DefaultLLMTimeout)
	c.DrainTimeout = cmp.Or(max(c.DrainTimeout, 0), DefaultDrainTimeout)
	c.ReapInterval = cmp.Or(max(c.ReapInterval, 0), DefaultReapInterval)
	if c.Progress == nil {
		c.Progress = (*progress.Publisher)(nil)
	}
	if c.Telemetry == nil {
		c.Telemetry = telemetry.New(slog.Default(), noop.NewTracerProvider())
	}
	return c
}

// Worker runs jobs from the generate queue.
type Worker struct {
	running sync.Map // job id → *runningJob

	conn   *broker.Connection
	store  JobStore
	llm    LLM
	cfg    Config
	tel    *telemetry.Telemetry
	log    *slog.Logger
	tracer trace.Tracer
}

// New returns a Worker.
func New(conn *broker.Connection, store JobStore, model LLM, cfg Config) *Worker {
	cfg = cfg.withDefaults()
	return &Worker{conn: conn, store: store, llm: model, cfg: cfg, tel: cfg.Telemetry, log: cfg.Telemetry.Logger,
		tracer: cfg.Telemetry.Tracer("github.com/careerops/jobs/internal/worker")}
}

// Run consumes until ctx ends, then drains: it stops taking messages, lets jobs in flight
// finish for up to DrainTimeout, gives back the rest, and returns.
func (w *Worker) Run(ctx context.Context) error {
	// Jobs run under their own context, cancelled only when the drain times out.
	jobsCtx, cancelJobs := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelJobs()
	var inflight sync.WaitGroup

	reaperDone := make(chan struct{})
	go func() {
		defer close(reaperDone)
		w.reap(ctx)
	}()

	for ctx.Err() == nil {
		err := w.consume(ctx, jobsCtx, &inflight)
		if ctx.Err() != nil {
			break
		}
		w.log.WarnContext(ctx, "worker: consumer stopped, reopening", slog.String("error", err.Error()))
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}

	w.log.InfoContext(ctx, "worker: draining", slog.Duration("timeout", w.cfg.DrainTimeout))
	drained := make(chan struct{})
	go func() { inflight.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(w.cfg.DrainTimeout):
		w.log.WarnContext(ctx, "worker: drain timeout, giving jobs back")
		cancelJobs()
		<-drained
	}
	<-reaperDone
	w.log.InfoContext(ctx, "worker: stopped")
	return nil
}

// consume runs one channel's consumer until ctx ends or the channel dies. On ctx's end it
// cancels the consumer (no new deliveries) and returns; the channel stays open until the jobs
// in flight have acked.
func (w *Worker) consume(ctx, jobsCtx context.Context, inflight *sync.WaitGroup) error {
	ch, err := w.conn.Channel(ctx)
	if err != nil {
		return err
	}
	channelUsers := &sync.WaitGroup{}
	defer func() {
		go func() { channelUsers.Wait(); _ = ch.Close() }()
	}()
	if err := broker.Declare(ch); err != nil {
		return err
	}
	if err := ch.Qos(w.cfg.Concurrency, 0, false); err != nil {
		return fmt.Errorf("worker: set prefetch: %w", err)
	}
	const tag = "careerops-worker"
	// Plain Consume, cancelled below: ConsumeWithContext would send basic.cancel when its
	// context ends, possibly on a channel already closed, which RabbitMQ answers by closing
	// the whole connection (CHANNEL_ERROR 504).
	deliveries, err := ch.Consume(job.QueueGenerate, tag, false, false, false, false, nil)
	if err != nil {
		return fmt.Errorf("worker: consume %s: %w", job.QueueGenerate, err)
	}
	w.cfg.Metrics.consumerUp(true)
	defer w.cfg.Metrics.consumerUp(false)
	closed := ch.NotifyClose(make(chan *amqp.Error, 1))
	for {
		select {
		case <-ctx.Done():
			_ = ch.Cancel(tag, false)
			return nil
		case err := <-closed:
			return fmt.Errorf("worker: channel closed: %w", err)
		case d, ok := <-deliveries:
			if !ok {
				return errors.New("worker: deliveries ended")
			}
			inflight.Add(1)
			channelUsers.Add(1)
			go func() {
				defer inflight.Done()
				defer channelUsers.Done()
				w.handle(jobsCtx, d)
			}()
		}
	}
}

// reap periodically requeues jobs whose worker died holding them.
func (w *Worker) reap(ctx context.Context) {
	t := time.NewTicker(w.cfg.ReapInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		requeued, failed, err := w.store.ReapExpired(ctx, w.cfg.LeaseFor()/4, w.cfg.MaxAttempts)
		switch {
		case err != nil && ctx.Err() == nil:
			w.log.WarnContext(ctx, "worker: reaping expired leases", slog.String("error", err.Error()))
		case requeued+failed > 0:
			w.log.InfoContext(ctx, "worker: reaped expired leases", slog.Int("requeued", requeued), slog.Int("failed", failed))
		}
	}
}

// delivery is one message being handled: its span, context and, once claimed, its lease.
type delivery struct {
	amqp.Delivery
	ctx     context.Context
	span    trace.Span
	lease   *jobstore.Lease
	settled bool // acked or nacked: RabbitMQ accepts one of them, once
}

// Ack acks the delivery once.
func (d *delivery) Ack(multiple bool) error {
	d.settled = true
	return d.Delivery.Ack(multiple)
}

// Nack nacks the delivery once.
func (d *delivery) Nack(multiple, requeue bool) error {
	d.settled = true
	return d.Delivery.Nack(multiple, requeue)
}

// outcome names what became of a delivery, on its span (careerops.outcome).
const outcomeKey = attribute.Key("careerops.outcome")

// handle processes one delivery and acks or nacks it. A panic is recovered and treated as a
// transient failure.
func (w *Worker) handle(ctx context.Context, raw amqp.Delivery) {
	// Single-message processing: the CONSUMER span is a child of the message's creation
	// context, so one trace tells the job's story from the HTTP request on.
	parent := w.tel.Propagator.Extract(ctx, broker.HeaderCarrier(raw.Headers))
	attrs := append(broker.SpanAttributes(broker.OpProcess, raw.RoutingKey, raw.MessageId), w.conn.ServerAttributes()...)
	attrs = append(attrs, semconv.MessagingRabbitMQMessageDeliveryTag(int(raw.DeliveryTag)))
	ctx, span := w.tracer.Start(parent, broker.OpProcess+" "+job.QueueGenerate,
		trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(attrs...))
	defer span.End()
	if id := broker.HeaderCarrier(raw.Headers).Get(job.HeaderJobID); id != "" {
		ctx = telemetry.WithJobID(ctx, id)
	}
	d := &delivery{Delivery: raw, ctx: ctx, span: span}
	defer func() {
		if p := recover(); p != nil {
			w.log.ErrorContext(d.ctx, "worker: panic while handling a message",
				slog.Any("panic", p), slog.String("stack", string(debug.Stack())))
			d.span.SetStatus(codes.Error, fmt.Sprint("panic: ", p))
			d.span.SetAttributes(semconv.ErrorTypeKey.String("panic"))
			switch {
			case d.settled: // the outcome was stored and settled before the panic
			case d.lease != nil:
				w.retry(d, fmt.Sprintf("internal error: %v", p), w.cfg.RetryBaseDelay)
			default:
				_ = d.Nack(false, true) // counts towards the queue's delivery limit, then the DLQ
			}
		}
	}()
	w.process(d)
}

func (w *Worker) process(d *delivery) {
	var msg job.GenerateMessage
	if err := json.Unmarshal(d.Body, &msg); err != nil {
		w.deadLetter(d, fmt.Sprintf("%v: body is not a JSON job: %v", job.ErrInvalidMessage, err))
		return
	}
	if err := msg.Validate(); err != nil {
		w.deadLetter(d, err.Error())
		return
	}
	d.ctx = telemetry.WithJobID(d.ctx, msg.JobID)
	if due, err := time.Parse(time.RFC3339Nano, broker.HeaderCarrier(d.Headers).Get(job.HeaderDueAt)); err == nil {
		w.cfg.Metrics.queueWait(time.Since(due))
	}

	var (
		j jobstore.Job
		l jobstore.Lease
	)
	err := w.persist(d.ctx, "claim", func(ctx context.Context) error {
		var err error
		j, l, err = w.store.Claim(ctx, jobstore.ClaimRequest{Message: msg, Redelivered: d.Redelivered, LeaseFor: w.cfg.LeaseFor(),
			TraceParent: broker.HeaderCarrier(d.Headers).Get("traceparent")})
		return err
	})
	switch {
	case errors.Is(err, jobstore.ErrNotClaimable):
		w.log.InfoContext(d.ctx, "worker: duplicate or stale message dropped", slog.Bool("redelivered", d.Redelivered))
		d.span.SetAttributes(outcomeKey.String("duplicate"))
		w.ack(d)
		return
	case err != nil: // shutting down
		d.span.SetAttributes(outcomeKey.String("requeued"))
		_ = d.Nack(false, true)
		return
	}
	d.lease = &l
	run := &runningJob{}
	d.ctx, run.cancel = context.WithCancelCause(d.ctx)
	w.running.Store(j.ID, run)
	defer func() { w.running.CompareAndDelete(j.ID, run); run.cancel(nil) }()
	d.span.SetAttributes(attemptKey.Int(j.Attempts))
	w.log.InfoContext(d.ctx, "worker: job started", slog.Int("attempt", j.Attempts), slog.Duration("queued_for", time.Since(j.CreatedAt)))
	defer w.cfg.Metrics.jobStarted()()
	start := time.Now()

	w.cfg.Progress.Publish(progress.Event{Type: progress.TypeStatus, JobID: j.ID, Status: job.StatusProcessing, Attempt: j.Attempts})
	p := prompt.Build(j.JobDescription, j.CVText, j.Tone)
	deltas := newCoalescer(func(index int, text string) {
		w.cfg.Progress.Publish(progress.Event{Type: progress.TypeDelta, JobID: j.ID, Attempt: j.Attempts, Index: index, Text: text})
	})
	out, err := w.llm.Stream(d.ctx, p.System, p.User, deltas.add)
	deltas.flush()
	w.cfg.Metrics.llmCall(time.Since(start), err)
	var llmErr *llm.Error
	switch {
	case err == nil:
		w.complete(d, j, out)
	case errors.Is(context.Cause(d.ctx), ErrJobCancelled): // the job is already final
		w.log.InfoContext(d.ctx, "worker: job cancelled by its user; call abandoned")
		d.span.SetAttributes(outcomeKey.String("cancelled"))
		w.ack(d)
	case d.ctx.Err() != nil: // drain timeout: give the job back for another worker
		w.release(d)
	case errors.As(err, &llmErr) && !llmErr.Temporary:
		w.fail(d, job.ReasonLLMRejected, fmt.Sprintf("the LLM rejected the request: %v", err))
	case j.AttemptsSince >= w.cfg.MaxAttempts:
		w.fail(d, job.ReasonAttemptsExhausted, fmt.Sprintf("gave up after %d attempts; last error: %v", j.AttemptsSince, err))
	default:
		var retryAfter time.Duration
		if llmErr != nil {
			retryAfter = llmErr.RetryAfter
		}
		w.retry(d, err.Error(), RetryDelay(j.AttemptsSince, w.cfg.RetryBaseDelay, w.cfg.RetryMaxDelay, retryAfter))
	}
}

const attemptKey = attribute.Key("careerops.job.attempt")

// ErrJobCancelled is the cause of a running job's context when its user cancelled it.
var ErrJobCancelled = errors.New("job cancelled by its user")

// CancelJob stops the job with id if this worker is running it: its LLM call is abandoned and
// its message acked (the job is already cancelled in the database).
func (w *Worker) CancelJob(id string) {
	if run, ok := w.running.Load(id); ok {
		run.(*runningJob).cancel(ErrJobCancelled)
	}
}

// runningJob is a job this worker runs; a pointer, so the map can compare entries.
type runningJob struct{ cancel context.CancelCauseFunc }

// successorHeaders carry this delivery's trace context to the messages its outcome sends:
// a retry's processing span becomes a child of this one, in the same trace.
func (w *Worker) successorHeaders(d *delivery) map[string]string {
	h := map[string]string{}
	w.tel.Propagator.Inject(d.ctx, propagation.MapCarrier(h))
	return h
}

func (w *Worker) complete(d *delivery, j jobstore.Job, out llm.Completion) {
	err := w.persist(d.ctx, "complete", func(ctx context.Context) error {
		_, err := w.store.Complete(ctx, *d.lease, jobstore.Result{
			CoverLetter: out.Text, PromptTokens: out.PromptTokens, CompletionTokens: out.CompletionTokens, Model: out.Model,
		}, w.successorHeaders(d))
		return err
	})
	if err == nil {
		w.log.InfoContext(d.ctx, "worker: job completed", slog.Duration("took", time.Since(j.CreatedAt)),
			slog.Int("prompt_tokens", out.PromptTokens), slog.Int("completion_tokens", out.CompletionTokens))
		w.cfg.Metrics.finished(job.StatusCompleted, "", time.Since(j.CreatedAt), out)
		d.span.SetAttributes(outcomeKey.String("completed"))
		w.announce(d, job.StatusCompleted)
	}
	w.settle(d, err)
}

func (w *Worker) retry(d *delivery, errMsg string, delay time.Duration) {
	err := w.persist(d.ctx, "retry", func(ctx context.Context) error {
		_, err := w.store.Retry(ctx, *d.lease, errMsg, time.Now().Add(delay), w.successorHeaders(d))
		return err
	})
	if err == nil {
		w.log.WarnContext(d.ctx, "worker: attempt failed, will retry", slog.String("error", errMsg), slog.Duration("retry_in", delay))
		w.cfg.Metrics.retried()
		d.span.SetAttributes(outcomeKey.String("retry"))
		w.announce(d, job.StatusPending)
		d.span.SetStatus(codes.Error, errMsg)
		d.span.SetAttributes(semconv.ErrorTypeKey.String("llm_transient"))
	}
	w.settle(d, err)
}

func (w *Worker) fail(d *delivery, reason, errMsg string) {
	err := w.persist(d.ctx, "fail", func(ctx context.Context) error {
		_, err := w.store.Fail(ctx, *d.lease, errMsg, w.successorHeaders(d),
			jobstore.DeadLetter{Body: d.Body, Headers: stringHeaders(d.Headers), Reason: reason, Error: errMsg})
		return err
	})
	if err == nil {
		w.log.ErrorContext(d.ctx, "worker: job failed", slog.String("reason", reason), slog.String("error", errMsg))
		w.cfg.Metrics.finished(job.StatusFailed, reason, 0, llm.Completion{})
		d.span.SetAttributes(outcomeKey.String("failed"))
		w.announce(d, job.StatusFailed)
		d.span.SetStatus(codes.Error, errMsg)
		d.span.SetAttributes(semconv.ErrorTypeKey.String(reason))
	}
	w.settle(d, err)
}

// announce tells whoever watches the job that its status changed.
func (w *Worker) announce(d *delivery, s job.Status) {
	w.cfg.Progress.Publish(progress.Event{Type: progress.TypeStatus, JobID: d.lease.JobID, Status: s})
}

// settle acks once the outcome is stored, drops a message whose lease another worker took,
// and gives the job back if shutdown interrupted the store.
func (w *Worker) settle(d *delivery, err error) {
	switch {
	case err == nil:
		w.ack(d)
	case errors.Is(err, jobstore.ErrLeaseLost):
		w.log.WarnContext(d.ctx, "worker: lease lost to another worker; result discarded")
		d.span.SetAttributes(outcomeKey.String("lease_lost"))
		w.ack(d)
	default:
		w.release(d)
	}
}

// release gives the job back and requeues the message: used on shutdown.
func (w *Worker) release(d *delivery) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(d.ctx), 5*time.Second)
	defer cancel()
	if err := w.store.Release(ctx, *d.lease); err != nil && !errors.Is(err, jobstore.ErrLeaseLost) {
		w.log.WarnContext(ctx, "worker: release job (its lease will expire instead)", slog.String("error", err.Error()))
	}
	if err := d.Nack(false, true); err != nil {
		w.log.WarnContext(ctx, "worker: requeue message", slog.String("error", err.Error()))
	}
	d.span.SetAttributes(outcomeKey.String("released"))
	w.log.InfoContext(ctx, "worker: job given back")
}

func (w *Worker) deadLetter(d *delivery, reason string) {
	id := d.MessageId
	if id == "" {
		id = fmt.Sprintf("invalid/%d", time.Now().UnixNano())
	}
	err := w.persist(d.ctx, "dead-letter", func(ctx context.Context) error {
		return w.store.DeadLetterMessage(ctx, id, jobstore.DeadLetter{
			Body: d.Body, Headers: stringHeaders(d.Headers), Reason: job.ReasonInvalidMessage, Error: reason,
		})
	})
	if err != nil {
		_ = d.Nack(false, true)
		return
	}
	w.log.ErrorContext(d.ctx, "worker: invalid message dead-lettered", slog.String("message_id", id), slog.String("error", reason))
	w.cfg.Metrics.deadLettered(job.ReasonInvalidMessage)
	d.span.SetAttributes(outcomeKey.String("dead_lettered"))
	d.span.SetStatus(codes.Error, reason)
	d.span.SetAttributes(semconv.ErrorTypeKey.String(job.ReasonInvalidMessage))
	w.ack(d)
}

func (w *Worker) ack(d *delivery) {
	if err := d.Ack(false); err != nil {
		// The channel died: RabbitMQ redelivers, and the job's state turns the copy into a no-op.
		w.log.WarnContext(d.ctx, "worker: ack failed", slog.String("error", err.Error()))
	}
}

// persist runs a store operation, retrying while the database is unreachable: a blip must not
// lose the outcome, and holding the message (not nacking it) keeps it off the delivery limit.
// It gives up only when ctx ends or the store answers with a verdict (lease lost, not
// claimable).
func (w *Worker) persist(ctx context.Context, op string, fn func(context.Context) error) error {
	delay := 100 * time.Millisecond
	for {
		opCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := fn(opCtx)
		cancel()
		if err == nil || errors.Is(err, jobstore.ErrLeaseLost) || errors.Is(err, jobstore.ErrNotClaimable) {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		w.log.WarnContext(ctx, "worker: database unavailable, retrying", slog.String("op", op),
			slog.String("error", err.Error()), slog.Duration("retry_in", delay))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, 5*time.Second)
	}
}

// stringHeaders keeps a message's headers for the DLQ, as strings.
func stringHeaders(h amqp.Table) map[string]string {
	out := make(map[string]string, len(h))
	for k, v := range h {
		switch v := v.(type) {
		case string:
			out[k] = v
		case []byte:
			out[k] = string(v)
		default:
			out[k] = fmt.Sprint(v)
		}
	}
	return out
}

// coalescer gathers the LLM's pieces (often a token each) into one progress event per
// 100 ms or 512 bytes: a browser sees the letter grow as fast as a person reads, and the
// broker carries a tenth of the messages.
type coalescer struct {
	buf   strings.Builder
	last  time.Time
	index int
	emit  func(index int, text string)
}

func newCoalescer(emit func(index int, text string)) *coalescer {
	return &coalescer{last: time.Now(), emit: emit}
}

func (c *coalescer) add(text string) {
	c.buf.WriteString(text)
	if c.buf.Len() >= 512 || time.Since(c.last) >= 100*time.Millisecond {
		c.flush()
	}
}

func (c *coalescer) flush() {
	if c.buf.Len() == 0 {
		return
	}
	c.emit(c.index, c.buf.String())
	c.index++
	c.buf.Reset()
	c.last = time.Now()
}
