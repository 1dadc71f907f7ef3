package worker

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/careerops/jobs/internal/broker"
	"github.com/careerops/jobs/internal/database"
	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/jobstore"
	"github.com/careerops/jobs/internal/kind"
	"github.com/careerops/jobs/internal/progress"
	"github.com/careerops/jobs/internal/telemetry"
)

// delivery is one message being handled: its span, context and, once claimed, its lease.
type delivery struct {
	broker.Delivery
	ctx     context.Context
	span    trace.Span
	lease   *jobstore.Lease
	settled bool // acked or nacked: RabbitMQ accepts one of them, once
}

// ack acks the delivery once.
func (d *delivery) ack() error {
	d.settled = true
	return d.Ack()
}

// requeue nacks the delivery once, back to the queue.
func (d *delivery) requeue() error {
	d.settled = true
	return d.Nack(true)
}

// The attributes of a delivery's span: what became of it (careerops.outcome), and the job's
// attempt number.
const (
	outcomeKey = attribute.Key("careerops.outcome")
	attemptKey = attribute.Key("careerops.job.attempt")
)

// handle processes one delivery and acks or nacks it. A panic is recovered and treated as a
// transient failure.
func (w *Worker) handle(ctx context.Context, raw broker.Delivery) {
	// Single-message processing: the CONSUMER span is a child of the message's creation
	// context, so one trace tells the job's story from the HTTP request on.
	parent := w.tel.Propagator.Extract(ctx, broker.HeaderCarrier(raw.Headers))
	ctx, span := w.tracer.Start(parent, broker.OpProcess+" "+w.kind.Name, trace.WithSpanKind(trace.SpanKindConsumer))
	defer span.End()
	if span.IsRecording() { // an unsampled span needs no attributes
		attrs := broker.SpanAttributes(broker.OpProcess, raw.RoutingKey, raw.MessageID, w.source.ServerAttributes()...)
		span.SetAttributes(append(attrs, semconv.MessagingRabbitMQMessageDeliveryTag(int(raw.DeliveryTag)))...)
	}
	if id := broker.HeaderCarrier(raw.Headers).Get(job.HeaderJobID); id != "" {
		ctx = telemetry.WithJobID(ctx, id)
	}
	d := &delivery{Delivery: raw, ctx: ctx, span: span}
	defer func() {
		if p := recover(); p != nil {
			w.panicked(d, p)
		}
	}()
	w.process(d)
}

// panicked turns a panic p into a transient failure of the job, unless the delivery was
// already settled; before a claim, the message is requeued (it counts towards the queue's
// delivery limit, then goes to the DLQ).
func (w *Worker) panicked(d *delivery, p any) {
	w.log.ErrorContext(d.ctx, "worker: panic while handling a message",
		slog.Any("panic", p), slog.String("stack", string(debug.Stack())))
	d.span.SetStatus(codes.Error, fmt.Sprint("panic: ", p))
	d.span.SetAttributes(semconv.ErrorTypeKey.String("panic"))
	switch {
	case d.settled: // the outcome was stored and settled before the panic
	case d.lease != nil:
		// The job's context ended with the panic; storing the retry gets a bounded one of its own.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(d.ctx), 10*time.Second)
		defer cancel()
		d.ctx = ctx
		f := w.policy.decide(attempt{panic: p})
		w.retry(d, f.errMsg, f.delay)
	default:
		w.finish(d, settleRequeue, "requeued")
	}
}

func (w *Worker) process(d *delivery) {
	env, args, ok := w.decode(d)
	if !ok {
		return
	}
	// Registered before the claim: a cancellation that comes as soon as the claim commits
	// finds the job (it cancels runCtx, which the attempt runs under). A second delivery of a
	// job already running here leaves the first one's entry alone: its claim fails.
	run := &runningJob{}
	runCtx, cancel := context.WithCancelCause(d.ctx)
	run.cancel = cancel
	defer cancel(nil)
	if _, running := w.running.LoadOrStore(env.JobID, run); !running {
		defer w.running.CompareAndDelete(env.JobID, run)
	}
	j, err := w.claim(d, env, args)
	var limitErr *jobstore.LimitError
	switch {
	case errors.Is(err, jobstore.ErrErasedUser): // its body is the erased user's data: not kept in a DLQ
		w.log.InfoContext(d.ctx, "worker: a message of an erased user dropped")
		w.finish(d, settleAck, "erased_user")
		return
	case errors.Is(err, jobstore.ErrUnknownUser), database.IsDataError(err):
		w.deadLetter(d, job.SafeText(fmt.Sprintf("%v: %v", job.ErrInvalidMessage, err), job.MaxErrorBytes))
		return
	case errors.As(err, &limitErr): // the store failed the job and dead-lettered its message
		w.log.WarnContext(d.ctx, "worker: job over its user's quota refused", slog.String("limit", limitErr.Limit))
		w.finish(d, settleAck, "quota_exceeded")
		return
	case err != nil:
		w.settle(d, err)
		return
	}
	d.ctx = runCtx
	d.span.SetAttributes(attemptKey.Int(j.Attempts))
	w.log.InfoContext(d.ctx, "worker: job started", slog.Int("attempt", j.Attempts), slog.Duration("queued_for", time.Since(j.CreatedAt)))
	defer w.metrics.jobStarted()()

	result, err := w.attempt(d, j)
	w.apply(d, j, result, w.policy.decide(attempt{err: err, cause: context.Cause(d.ctx), attempts: j.AttemptsSince}))
}

// decode reads the job from a delivery (its envelope and the kind's arguments), or
// dead-letters a message that cannot be one.
func (w *Worker) decode(d *delivery) (job.Envelope, json.RawMessage, bool) {
	env, args, err := job.DecodeMessage(d.Body, cmp.Or(w.kind.MaxMessageBytes, kind.DefaultMaxMessageBytes))
	if err == nil {
		args, err = w.kind.Decode(args)
	}
	if err != nil {
		w.deadLetter(d, err.Error())
		return env, nil, false
	}
	d.ctx = telemetry.WithJobID(d.ctx, env.JobID)
	if due, err := time.Parse(time.RFC3339Nano, broker.HeaderCarrier(d.Headers).Get(job.HeaderDueAt)); err == nil {
		w.metrics.queueWait(time.Since(due))
	}
	return env, args, true
}

// claim takes the job's lease for this delivery. While a live worker holds the job (this is a
// redelivery after its connection dropped) it waits: that worker may still finish the job.
func (w *Worker) claim(d *delivery, env job.Envelope, args json.RawMessage) (jobstore.Run, error) {
	req := jobstore.ClaimRequest{
		Envelope: env, Args: args, Redelivered: d.Redelivered, LeaseFor: w.cfg.LeaseFor(),
		TraceParent: broker.HeaderCarrier(d.Headers).Get("traceparent"),
		Owner:       w.id, OwnerDeadAfter: 3 * w.cfg.HeartbeatInterval,
	}
	for {
		var (
			j   jobstore.Run
			l   jobstore.Lease
			err error
		)
		err = w.persist(d.ctx, "claim", func(ctx context.Context) error {
			j, l, err = w.runs.Claim(ctx, req)
			return err
		})
		switch {
		case err == nil:
			d.lease = &l
			return j, nil
		case !errors.Is(err, jobstore.ErrLeaseHeld):
			return j, err
		}
		select {
		case <-d.ctx.Done():
			return j, d.ctx.Err()
		case <-time.After(w.cfg.HeartbeatInterval):
		}
	}
}

// attempt runs the kind's handler for one attempt of the job, within the kind's timeout.
func (w *Worker) attempt(d *delivery, j jobstore.Run) (json.RawMessage, error) {
	w.cfg.Progress.Publish(progress.Event{Type: progress.TypeStatus, JobID: j.ID, Status: job.StatusProcessing, Attempt: j.Attempts})
	ctx, cancel := context.WithTimeoutCause(d.ctx, w.cfg.Wait+w.cfg.Timeout+attemptGrace(w.cfg.Timeout), errAttemptTimedOut)
	defer cancel()
	return w.kind.Handle(ctx, j)
}

// attemptGrace is how long past its timeout an attempt may run before the worker ends it: a
// handler that bounds its own work (the LLM client does, with the same timeout) reports its
// own, more telling error first; the worker's deadline is the backstop. It stays well inside
// the lease's margin.
func attemptGrace(timeout time.Duration) time.Duration {
	return min(max(timeout/10, time.Second), leaseMargin/3)
}

// errAttemptTimedOut ends an attempt that ran past the kind's timeout.
var errAttemptTimedOut = errors.New("the attempt ran out of time")

// apply carries out a claimed job's fate.
func (w *Worker) apply(d *delivery, j jobstore.Run, result json.RawMessage, f fate) {
	switch f.action {
	case actionComplete:
		if d.ctx.Err() != nil { // the drain timeout ended the job as its letter came: store it all the same
			ctx, cancel := context.WithTimeout(context.WithoutCancel(d.ctx), 10*time.Second)
			defer cancel()
			d.ctx = ctx
		}
		w.complete(d, j, result)
	case actionDrop: // the job is already final
		w.log.InfoContext(d.ctx, "worker: job cancelled by its user; call abandoned")
		w.finish(d, settleAck, "cancelled")
	case actionRelease: // drain timeout: give the job back for another worker
		w.finish(d, settleRelease, "released")
	case actionFail:
		w.fail(d, f.reason, f.errMsg)
	case actionDefer:
		w.deferJob(d, f.errMsg, f.delay)
	default:
		w.retry(d, f.errMsg, f.delay)
	}
}

// successorHeaders carry this delivery's trace context to the messages its outcome sends:
// a retry's processing span becomes a child of this one, in the same trace.
func (w *Worker) successorHeaders(d *delivery) map[string]string {
	h := map[string]string{}
	w.tel.Propagator.Inject(d.ctx, propagation.MapCarrier(h))
	return h
}

func (w *Worker) complete(d *delivery, j jobstore.Run, result json.RawMessage) {
	err := w.persist(d.ctx, "complete", func(ctx context.Context) error {
		_, err := w.runs.Complete(ctx, *d.lease, result, w.successorHeaders(d))
		return err
	})
	if err == nil {
		w.log.InfoContext(d.ctx, "worker: job completed", slog.Duration("took", time.Since(j.CreatedAt)))
		w.metrics.finished(job.StatusCompleted, "", time.Since(j.CreatedAt))
		d.span.SetAttributes(outcomeKey.String("completed"))
		w.announce(d, job.StatusCompleted)
	}
	w.settle(d, err)
}

func (w *Worker) retry(d *delivery, errMsg string, delay time.Duration) {
	err := w.persist(d.ctx, "retry", func(ctx context.Context) error {
		_, err := w.runs.Retry(ctx, *d.lease, errMsg, time.Now().Add(delay), w.successorHeaders(d))
		return err
	})
	if err == nil {
		w.log.WarnContext(d.ctx, "worker: attempt failed, will retry", slog.String("error", errMsg), slog.Duration("retry_in", delay))
		w.metrics.retried()
		d.span.SetAttributes(outcomeKey.String("retry"))
		w.announce(d, job.StatusPending)
		d.span.SetStatus(codes.Error, errMsg)
		d.span.SetAttributes(semconv.ErrorTypeKey.String("transient"))
	}
	w.settle(d, err)
}

// deferJob puts back a job whose work a shared budget did not let start soon enough.
func (w *Worker) deferJob(d *delivery, why string, delay time.Duration) {
	err := w.persist(d.ctx, "defer", func(ctx context.Context) error {
		_, err := w.runs.Defer(ctx, *d.lease, time.Now().Add(delay), w.successorHeaders(d))
		return err
	})
	if err == nil {
		w.log.InfoContext(d.ctx, "worker: job deferred for a shared budget", slog.String("why", why), slog.Duration("retry_in", delay))
		d.span.SetAttributes(outcomeKey.String("deferred"))
		w.announce(d, job.StatusPending)
	}
	w.settle(d, err)
}

func (w *Worker) fail(d *delivery, reason, errMsg string) {
	err := w.persist(d.ctx, "fail", func(ctx context.Context) error {
		_, err := w.runs.Fail(ctx, *d.lease, errMsg, w.successorHeaders(d),
			jobstore.DeadLetter{Body: d.Body, Headers: stringHeaders(d.Headers), Reason: reason, Error: errMsg})
		return err
	})
	if err == nil {
		w.log.ErrorContext(d.ctx, "worker: job failed", slog.String("reason", reason), slog.String("error", errMsg))
		w.metrics.finished(job.StatusFailed, reason, 0)
		d.span.SetAttributes(outcomeKey.String("failed"))
		w.announce(d, job.StatusFailed)
		d.span.SetStatus(codes.Error, errMsg)
		d.span.SetAttributes(semconv.ErrorTypeKey.String(reason))
	}
	w.settle(d, err)
}

func (w *Worker) deadLetter(d *delivery, reason string) {
	id := d.MessageID
	if id == "" {
		id = fmt.Sprintf("invalid/%d", time.Now().UnixNano())
	}
	err := w.persist(d.ctx, "dead-letter", func(ctx context.Context) error {
		return w.runs.DeadLetterMessage(ctx, id, jobstore.DeadLetter{
			Body: d.Body, Headers: stringHeaders(d.Headers), Reason: job.ReasonInvalidMessage, Error: reason,
		})
	})
	if err == nil {
		w.log.ErrorContext(d.ctx, "worker: invalid message dead-lettered", slog.String("message_id", id), slog.String("error", reason))
		w.metrics.deadLettered(job.ReasonInvalidMessage)
		d.span.SetAttributes(outcomeKey.String("dead_lettered"))
		d.span.SetStatus(codes.Error, reason)
		d.span.SetAttributes(semconv.ErrorTypeKey.String(job.ReasonInvalidMessage))
	}
	w.settle(d, err)
}

// announce tells whoever watches the job that its status changed.
func (w *Worker) announce(d *delivery, s job.Status) {
	w.cfg.Progress.Publish(progress.Event{Type: progress.TypeStatus, JobID: d.lease.JobID, Status: s})
}

// settle ends a delivery once its store step returned err: see settlementAfter.
func (w *Worker) settle(d *delivery, err error) {
	s, outcome := settlementAfter(err, d.lease != nil)
	switch {
	case errors.Is(err, jobstore.ErrLeaseLost):
		w.log.WarnContext(d.ctx, "worker: lease lost to another worker; result discarded")
	case errors.Is(err, jobstore.ErrClaimLost):
		w.log.WarnContext(d.ctx, "worker: the job is pending again (a PostgreSQL crash undid its claim); result discarded, message requeued")
	case errors.Is(err, jobstore.ErrNotClaimable):
		w.log.InfoContext(d.ctx, "worker: duplicate or stale message dropped", slog.Bool("redelivered", d.Redelivered))
	}
	w.finish(d, s, outcome)
}

// finish settles a delivery as s, naming its outcome on the span unless outcome is empty.
func (w *Worker) finish(d *delivery, s settlement, outcome string) {
	if outcome != "" {
		d.span.SetAttributes(outcomeKey.String(outcome))
	}
	switch s {
	case settleAck:
		if err := d.ack(); err != nil {
			// The channel died: RabbitMQ redelivers, and the job's state turns the copy into a no-op.
			w.log.WarnContext(d.ctx, "worker: ack failed", slog.String("error", err.Error()))
		}
	case settleRelease:
		w.release(d)
	default:
		w.requeue(d.ctx, d)
	}
}

// release gives the job back and requeues the message: used on shutdown.
func (w *Worker) release(d *delivery) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(d.ctx), 5*time.Second)
	defer cancel()
	if err := w.runs.Release(ctx, *d.lease); err != nil && !errors.Is(err, jobstore.ErrLeaseLost) {
		w.log.WarnContext(ctx, "worker: release job (its lease will expire instead)", slog.String("error", err.Error()))
	}
	w.requeue(ctx, d)
	w.log.InfoContext(ctx, "worker: job given back")
}

func (w *Worker) requeue(ctx context.Context, d *delivery) {
	if err := d.requeue(); err != nil {
		w.log.WarnContext(ctx, "worker: requeue message", slog.String("error", err.Error()))
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
		if isVerdict(err) {
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
func stringHeaders(h map[string]any) map[string]string {
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
