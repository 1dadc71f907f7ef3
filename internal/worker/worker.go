// Package worker runs the jobs of one kind (internal/kind) from its queue and records their
// outcomes. Contract per message: the job's state change and the messages announcing it are
// committed in one transaction (through the outbox) before the delivery is acked; a transient
// failure schedules a delayed retry the same way; a permanent one fails the job and
// dead-letters the message; a message that cannot be a job goes to the kind's DLQ as it came.
package worker

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/google/uuid"

	"github.com/careerops/jobs/internal/broker"
	"github.com/careerops/jobs/internal/jobstore"
	"github.com/careerops/jobs/internal/kind"
	"github.com/careerops/jobs/internal/progress"
	"github.com/careerops/jobs/internal/telemetry"
)

// Source is where the worker's messages come from: its kind's queue, one subscription (an
// AMQP channel) at a time. broker.Consumer is the real one.
type Source interface {
	// Subscribe starts a subscription that holds at most prefetch deliveries unsettled.
	// Deliveries arrive on the channel until ctx ends (then no new ones come) or the
	// subscription dies; the channel is then closed. Each delivery is settled once, with Ack
	// or Nack, also after ctx ended.
	Subscribe(ctx context.Context, prefetch int) (<-chan broker.Delivery, error)
	// ServerAttributes name the broker on spans (server.address, server.port).
	ServerAttributes() []attribute.KeyValue
}

// Progress announces a job's live progress; it may drop events.
type Progress = progress.Announcer

// Runs records the state of the kind's jobs (jobstore.Runs).
type Runs interface {
	Claim(ctx context.Context, r jobstore.ClaimRequest) (jobstore.Run, jobstore.Lease, error)
	Complete(ctx context.Context, l jobstore.Lease, result json.RawMessage, headers map[string]string) (jobstore.Run, error)
	Retry(ctx context.Context, l jobstore.Lease, errMsg string, runAfter time.Time, headers map[string]string) (jobstore.Run, error)
	Defer(ctx context.Context, l jobstore.Lease, runAfter time.Time, headers map[string]string) (jobstore.Run, error)
	Fail(ctx context.Context, l jobstore.Lease, errMsg string, headers map[string]string, dl jobstore.DeadLetter) (jobstore.Run, error)
	Release(ctx context.Context, l jobstore.Lease) error
	DeadLetterMessage(ctx context.Context, id string, dl jobstore.DeadLetter) error
	ReapExpired(ctx context.Context, grace time.Duration, maxAttempts int) (requeued, failed int, err error)
	Cancelled(ctx context.Context, ids []string) ([]string, error)
}

// Processes tells the other workers which processes are alive (jobstore.Store).
type Processes interface {
	Heartbeat(ctx context.Context, owner uuid.UUID, name string) error
	Forget(ctx context.Context, owner uuid.UUID) error
}

// Defaults of Config, stated once: the worker program's --help shows them too.
const (
	DefaultConcurrency    = 4
	DefaultMaxAttempts    = 5
	DefaultRetryBaseDelay = 2 * time.Second
	DefaultRetryMaxDelay  = 5 * time.Minute
	DefaultTimeout        = 60 * time.Second
	DefaultDrainTimeout   = 30 * time.Second
	DefaultReapInterval   = 30 * time.Second
	// DefaultHeartbeatInterval: a worker silent for three intervals counts as dead, and a
	// redelivery may take its jobs over.
	DefaultHeartbeatInterval = 2 * time.Second
	// leaseMargin is the time a job's lease gives beyond its attempt, to store the result.
	leaseMargin = 30 * time.Second
)

// Config configures a Worker. Zero fields take the kind's values, then the Default* values.
type Config struct {
	// Concurrency is how many jobs run at once; also the prefetch.
	Concurrency int
	// MaxAttempts is how many attempts a job gets before it fails for good.
	MaxAttempts int
	// RetryBaseDelay is the backoff before the first retry, doubled for each next.
	RetryBaseDelay time.Duration
	// RetryMaxDelay caps the backoff.
	RetryMaxDelay time.Duration
	// Timeout bounds one attempt; a claimed job's lease is this plus a margin to store the
	// result, so another worker takes a job over only once its attempt must have ended.
	Timeout time.Duration
	// Wait is the longest an attempt may wait for its turn in a shared budget before its work
	// starts (llmbudget's MaxWait); the lease covers it too. Defaults to 0: no budget.
	Wait time.Duration
	// DrainTimeout bounds how long shutdown waits for jobs in flight before giving them back.
	DrainTimeout time.Duration
	// ReapInterval is how often the worker looks for jobs whose worker died.
	ReapInterval time.Duration
	// HeartbeatInterval is how often the worker tells the others it is alive.
	HeartbeatInterval time.Duration
	// Name names the worker process in the heartbeat table (its host name, say).
	Name string
	// Telemetry logs and traces; defaults to slog.Default() and no tracing.
	Telemetry *telemetry.Telemetry
	// Metrics records what happens; nil records nothing.
	Metrics *Metrics
	// Progress receives status changes; nil: none.
	Progress Progress
}

// LeaseFor is how long a claimed job stays with its worker before another may take it over.
func (c Config) LeaseFor() time.Duration {
	return max(c.Wait, 0) + cmp.Or(c.Timeout, DefaultTimeout) + leaseMargin
}

// withDefaults fills c's zero fields from the kind k, then from the Default* values.
func (c Config) withDefaults(k kind.Kind) Config {
	c.Concurrency = cmp.Or(max(c.Concurrency, 0), k.Concurrency, DefaultConcurrency)
	c.MaxAttempts = cmp.Or(max(c.MaxAttempts, 0), k.Retry.MaxAttempts, DefaultMaxAttempts)
	c.RetryBaseDelay = cmp.Or(max(c.RetryBaseDelay, 0), k.Retry.BaseDelay, DefaultRetryBaseDelay)
	c.RetryMaxDelay = cmp.Or(max(c.RetryMaxDelay, 0), k.Retry.MaxDelay, DefaultRetryMaxDelay)
	c.Timeout = cmp.Or(max(c.Timeout, 0), k.Timeout, DefaultTimeout)
	c.Wait = cmp.Or(max(c.Wait, 0), k.Wait)
	c.DrainTimeout = cmp.Or(max(c.DrainTimeout, 0), DefaultDrainTimeout)
	c.ReapInterval = cmp.Or(max(c.ReapInterval, 0), DefaultReapInterval)
	c.HeartbeatInterval = cmp.Or(max(c.HeartbeatInterval, 0), DefaultHeartbeatInterval)
	if c.Progress == nil {
		c.Progress = (*progress.Publisher)(nil)
	}
	if c.Telemetry == nil {
		c.Telemetry = telemetry.New(slog.Default(), noop.NewTracerProvider())
	}
	return c
}

// Worker runs the jobs of one kind from its queue.
type Worker struct {
	running sync.Map  // job id → *runningJob
	id      uuid.UUID // this process, in heartbeats and leases

	kind    kind.Kind
	source  Source
	runs    Runs
	procs   Processes
	cfg     Config
	metrics *kindMetrics
	policy  policy
	tel     *telemetry.Telemetry
	log     *slog.Logger
	tracer  trace.Tracer
}

// New returns a Worker that runs the jobs of kind k from source, recording them in runs.
func New(k kind.Kind, source Source, runs Runs, procs Processes, cfg Config) *Worker {
	cfg = cfg.withDefaults(k)
	return &Worker{id: uuid.New(), kind: k, source: source, runs: runs, procs: procs, cfg: cfg, tel: cfg.Telemetry,
		log:     cfg.Telemetry.Logger.With(slog.String("kind", k.Name)),
		metrics: cfg.Metrics.forKind(k.Name),
		policy:  policy{maxAttempts: cfg.MaxAttempts, baseDelay: cfg.RetryBaseDelay, maxDelay: cfg.RetryMaxDelay, rnd: rand.Int64N},
		tracer:  cfg.Telemetry.Tracer("github.com/careerops/jobs/internal/worker")}
}

// Kind is the name of the kind the worker runs.
func (w *Worker) Kind() string { return w.kind.Name }

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
	// Heartbeats go on until the last job drained: the others must not take those over.
	beatCtx, stopBeats := context.WithCancel(context.WithoutCancel(ctx))
	beatsDone := make(chan struct{})
	go func() {
		defer close(beatsDone)
		w.heartbeat(beatCtx)
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
	stopBeats()
	<-beatsDone
	w.log.InfoContext(ctx, "worker: stopped")
	return nil
}

// heartbeat tells the other workers this one is alive until ctx ends, then that it is gone.
func (w *Worker) heartbeat(ctx context.Context) {
	t := time.NewTicker(w.cfg.HeartbeatInterval)
	defer t.Stop()
	for beat := true; beat; {
		if err := w.procs.Heartbeat(ctx, w.id, w.cfg.Name); err != nil && ctx.Err() == nil {
			w.log.WarnContext(ctx, "worker: heartbeat", slog.String("error", err.Error()))
		}
		select {
		case <-ctx.Done():
			beat = false
		case <-t.C:
		}
	}
	forgetCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := w.procs.Forget(forgetCtx, w.id); err != nil {
		w.log.WarnContext(forgetCtx, "worker: forget this process", slog.String("error", err.Error()))
	}
}

// errSubscriptionEnded is why consume returns while the worker still runs.
var errSubscriptionEnded = errors.New("worker: subscription ended")

// consume runs one subscription until ctx ends or the subscription dies, handing each
// delivery to a goroutine of its own.
func (w *Worker) consume(ctx, jobsCtx context.Context, inflight *sync.WaitGroup) error {
	deliveries, err := w.source.Subscribe(ctx, w.cfg.Concurrency)
	if err != nil {
		return err
	}
	w.metrics.consumerUp(true)
	defer w.metrics.consumerUp(false)
	for d := range deliveries {
		inflight.Add(1)
		go func() {
			defer inflight.Done()
			w.handle(jobsCtx, d)
		}()
	}
	return errSubscriptionEnded
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
		requeued, failed, err := w.runs.ReapExpired(ctx, w.cfg.LeaseFor()/4, w.cfg.MaxAttempts)
		switch {
		case err != nil && ctx.Err() == nil:
			w.log.WarnContext(ctx, "worker: reaping expired leases", slog.String("error", err.Error()))
		case requeued+failed > 0:
			w.log.InfoContext(ctx, "worker: reaped expired leases", slog.Int("requeued", requeued), slog.Int("failed", failed))
		}
	}
}

// ErrJobCancelled is the cause of a running job's context when its user cancelled it.
var ErrJobCancelled = errors.New("job cancelled by its user")

// CancelJob stops the job with id if this worker is running it: its attempt is abandoned and
// its message acked (the job is already cancelled in the database).
func (w *Worker) CancelJob(id string) {
	if run, ok := w.running.Load(id); ok {
		run.(*runningJob).cancel(ErrJobCancelled)
	}
}

// CancelCancelled stops the jobs this worker runs that are cancelled in the database: it
// catches the cancellations announced while nobody listened (the LISTEN connection was down).
func (w *Worker) CancelCancelled(ctx context.Context) error {
	var ids []string
	w.running.Range(func(id, _ any) bool {
		ids = append(ids, id.(string))
		return true
	})
	if len(ids) == 0 {
		return nil
	}
	cancelled, err := w.runs.Cancelled(ctx, ids)
	if err != nil {
		return err
	}
	for _, id := range cancelled {
		w.CancelJob(id)
	}
	return nil
}

// runningJob is a job this worker runs; a pointer, so the map can compare entries.
type runningJob struct{ cancel context.CancelCauseFunc }
