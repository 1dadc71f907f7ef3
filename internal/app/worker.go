package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgxlisten"

	"github.com/careerops/jobs/internal/analytics"
	"github.com/careerops/jobs/internal/broker"
	"github.com/careerops/jobs/internal/cli"
	"github.com/careerops/jobs/internal/config"
	"github.com/careerops/jobs/internal/database"
	"github.com/careerops/jobs/internal/email"
	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/jobstore"
	"github.com/careerops/jobs/internal/kind"
	"github.com/careerops/jobs/internal/kinds"
	"github.com/careerops/jobs/internal/llm"
	"github.com/careerops/jobs/internal/llmbudget"
	"github.com/careerops/jobs/internal/llmroute"
	"github.com/careerops/jobs/internal/progress"
	"github.com/careerops/jobs/internal/schedule"
	"github.com/careerops/jobs/internal/telemetry"
	"github.com/careerops/jobs/internal/worker"
)

const (
	// flushTimeout bounds the relay's last publish after the drain; what cannot go then
	// stays in the outbox for another relay.
	flushTimeout = 3 * time.Second
	// adminShutdownTimeout bounds the admin server's graceful stop.
	adminShutdownTimeout = 5 * time.Second
)

func workerProgram() program {
	return program{
		Program: config.Program{Name: "worker", About: "The CareerOps worker: runs the jobs of every kind (cover-letter.generate: calls the LLM), or of WORKER_KINDS."},
		service: "careerops-worker",
	}
}

// Worker is the worker program: it runs jobs until ctx ends, then drains.
func Worker(o Options) cli.RunFunc {
	return runProgram(o, workerProgram(), DefaultWorkerConfig, serveWorker)
}

// workerRelayLinger is how long the worker's outbox relay gathers before a batch while rows
// come often (outbox.RelayConfig.Linger). Its rows are the retries, due later, and what the
// hand-off could not publish; the completions go to the hand-off (outbox.Handoff).
const workerRelayLinger = 20 * time.Millisecond

// serveWorker runs the worker with cfg until ctx ends or one of its parts fails. Shutdown
// goes in this order: the worker drains while its broker connection, relay, cancellation
// listener and progress publisher stay up; then these stop; the relay publishes what the
// last jobs wrote; the admin server stops; the connections close.
func serveWorker(ctx context.Context, cfg WorkerConfig, tel *telemetry.Telemetry, o Options) error {
	log := tel.Logger
	// The broker connection outlives ctx: draining jobs still ack after SIGTERM.
	connCtx, closeConn := context.WithCancel(context.WithoutCancel(ctx))
	defer closeConn()
	b, err := newBase(ctx, connCtx, baseConfig{
		name: workerProgram().service, deps: cfg.Dependencies, maxConns: cfg.maxConns(), pprof: cfg.PprofAddr,
		relayLinger: workerRelayLinger,
	}, tel)
	if err != nil {
		return err
	}
	defer b.close()

	progressPub := progress.NewPublisher(b.conn, log)
	deps, err := kindDeps(cfg, tel, b, progressPub)
	if err != nil {
		return err
	}
	all := kinds.All(deps)
	workers, batched, err := workersOf(cfg, tel, b, all, progressPub)
	if err != nil {
		return err
	}
	// Every worker process runs every kind's schedules; each slot runs once among them.
	tasks, err := schedule.Tasks(all, cfg.Schedules)
	if err != nil {
		return err
	}
	ln, err := new(net.ListenConfig).Listen(ctx, "tcp", cfg.AdminAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.AdminAddr, err)
	}

	g := newGroup()
	adminStage := g.stage(context.WithoutCancel(ctx))
	adminStage.run("admin server", serve(&http.Server{Handler: b.admin, ReadHeaderTimeout: 5 * time.Second}, ln, adminShutdownTimeout))
	log.InfoContext(ctx, "worker: admin listening", slog.String("addr", ln.Addr().String()),
		slog.Any("kinds", kindNames(workers)), slog.Int("concurrency", cfg.Concurrency), slog.String("model", cfg.OpenAIModel),
		slog.String("fallback_model", cfg.fallbackModel()))
	o.ready(ln.Addr().String())

	// The hand-off and the relay publish what the worker's transactions wrote (results,
	// retries, dead letters); they and the others here run until the jobs have drained.
	background := g.stage(context.WithoutCancel(ctx))
	background.run("outbox relay", b.relay.Run)
	background.run("outbox hand-off", b.handoff.Run)
	background.run("cancellation listener", cancellations(b, workers).Listen)
	background.run("progress publisher", func(ctx context.Context) error { progressPub.Run(ctx); return nil })
	for _, c := range batched {
		background.run("batched claims and completes of "+c.Kind(), c.Run)
	}
	background.run("scheduler", schedule.New(schedule.Config{Pool: b.pool, Tasks: tasks, Owner: processName(), Logger: log}).Run)

	front := g.stage(ctx)
	for _, w := range workers {
		front.run("worker "+w.Kind(), w.Run)
	}
	err = front.wait()
	err = errors.Join(err, background.stop())
	// Publish what the last jobs wrote; what cannot go now stays in the outbox for others.
	flushCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), flushTimeout)
	if flushErr := errors.Join(b.handoff.Flush(flushCtx), b.relay.Flush(flushCtx)); flushErr != nil {
		log.WarnContext(flushCtx, "worker: outbox not flushed; another relay will publish it", slog.String("error", flushErr.Error()))
	}
	cancel()
	return errors.Join(err, adminStage.stop())
}

// workersOf are the workers of the kinds of all that cfg names (every kind by default, but
// email without SMTP_HOST), one each, and the Batched that claim their jobs and store their
// results.
func workersOf(cfg WorkerConfig, tel *telemetry.Telemetry, b *base, all []kind.Kind, progressPub *progress.Publisher) (
	[]*worker.Worker, []*jobstore.Batched, error) {
	names := cfg.Kinds
	if len(names) == 0 && !cfg.Email.Enabled() {
		names = slices.DeleteFunc(job.Kinds(), func(k string) bool { return k == job.KindEmail })
		tel.Logger.Info("worker: no email (SMTP_HOST is not set)")
	}
	selected, err := kinds.Select(all, names)
	if err != nil {
		return nil, nil, err
	}
	if slices.Contains(names, job.KindEmail) && !cfg.Email.Enabled() {
		return nil, nil, errors.New("WORKER_KINDS names " + job.KindEmail + " but SMTP_HOST is not set")
	}
	if slices.ContainsFunc(selected, func(k kind.Kind) bool { return k.Name == job.KindAnalytics }) {
		// The rollups' totals, from the workers that make them.
		b.registry.MustRegister(analytics.NewCollector(b.pool))
	}
	metrics := worker.NewMetrics(b.registry)
	var (
		workers []*worker.Worker
		batched []*jobstore.Batched
	)
	for _, k := range selected {
		// The jobs that start, or end, together share a statement or a transaction.
		c := jobstore.NewBatched(b.store.Runs(k.Spec), jobstore.DefaultBatchMax, jobstore.DefaultRunsInFlight)
		batched = append(batched, c)
		workers = append(workers, worker.New(k, broker.NewConsumer(b.conn, k.Name, "careerops-worker"), c, b.store, worker.Config{
			// Each kind keeps its own retry policy: WORKER_MAX_ATTEMPTS and WORKER_RETRY_*
			// are the cover letters' (kindDeps), not every kind's.
			Concurrency:  cfg.Concurrency,
			DrainTimeout: cfg.DrainTimeout,
			ReapInterval: cfg.ReapInterval,
			Name:         processName(),
			Telemetry:    tel,
			Metrics:      metrics,
			Progress:     progressPub,
		}))
	}
	return workers, batched, nil
}

// kindDeps are what the kinds need, as cfg sets them up: the LLM for cover letters, and
// with SMTP_HOST the email's sender, renderer and domain rate (and cover letters' outcomes
// then email the users who asked for it).
func kindDeps(cfg WorkerConfig, tel *telemetry.Telemetry, b *base, progressPub *progress.Publisher) (kinds.Deps, error) {
	model, llmWait := workerLLM(cfg, tel, b)
	var err error
	d := kinds.Deps{CoverLetter: kinds.CoverLetterDeps{
		LLM: model, Timeout: cfg.LLMTimeout, Wait: llmWait, JobsPerMinute: cfg.UserJobsPerMinute,
		Progress: progressPub, Metrics: kinds.NewLLMMetrics(b.registry), Retry: cfg.coverLetterRetry(),
	}, Retention: kinds.RetentionDeps{Store: b.store, Days: cfg.RetentionDays}, Export: kinds.ExportDeps{Store: b.store}}
	d.Analytics.Store = analytics.NewStore(b.pool)
	if d.Analytics.Prices, err = analytics.ParsePrices(cfg.LLMPrices); err != nil {
		return d, err // Validate checked it
	}
	if !cfg.Email.Enabled() {
		return d, nil
	}
	sender, err := email.NewSender(cfg.Email)
	if err != nil {
		return d, err
	}
	renderer, err := email.NewRenderer(cfg.Email)
	if err != nil {
		return d, err
	}
	d.CoverLetter.Finished = kinds.NotifyOutcome
	d.Email = kinds.EmailDeps{
		Store: b.store, Sender: sender, Renderer: renderer, Secret: []byte(cfg.JWTSecret),
		Limiter: email.NewDomainLimiter(llmbudget.NewStore(b.pool), cfg.Email.PerDomainPerMinute, emailRateWait),
		Timeout: 2 * cfg.Email.Timeout, Wait: emailRateWait,
	}
	tel.Logger.Info("worker: email on", slog.Any("smtp", cfg.Email))
	return d, nil
}

// emailRateWait is the longest a send waits in line for its recipient domain's turn before
// its job is put back for later.
const emailRateWait = 10 * time.Second

// kindNames names the kinds the workers run.
func kindNames(workers []*worker.Worker) []string {
	names := make([]string, len(workers))
	for i, w := range workers {
		names[i] = w.Kind()
	}
	return names
}

// workerLLM is the worker's LLM: the primary endpoint's client, within the shared rate budget
// if cfg sets one, behind a circuit breaker that sends calls to the fallback endpoint while
// the primary fails (or its budget has no turn soon enough), if one is configured; and the
// longest a call may wait for the budget before it starts.
func workerLLM(cfg WorkerConfig, tel *telemetry.Telemetry, b *base) (llm.Streamer, time.Duration) {
	client := llm.New(cfg.llmConfig(tel))
	var (
		primary llm.Streamer = client
		wait    time.Duration
	)
	if budget, ok := cfg.llmBudget(); ok {
		budget.Tokens, budget.Telemetry, budget.Metrics = client.MaxTokens, tel, llmbudget.NewMetrics(b.registry)
		tel.Logger.Info("worker: LLM calls within a shared rate budget", slog.String("budget", budget.Name),
			slog.Int("requests_per_minute", budget.Limits.RequestsPerMinute), slog.Int("tokens_per_minute", budget.Limits.TokensPerMinute))
		primary, wait = llmbudget.New(client, llmbudget.NewStore(b.pool), budget), budget.MaxWait
	}
	if cfg.Fallback.BaseURL == "" {
		return primary, wait
	}
	return llmroute.New(llmroute.Config{
		Primary: primary, Fallback: llm.New(cfg.fallbackLLMConfig(tel)),
		PrimaryModel: cfg.OpenAIModel, FallbackModel: cfg.fallbackModel(),
		Breaker:        llmroute.BreakerConfig{Failures: cfg.Fallback.BreakerFailures, Cooldown: cfg.Fallback.BreakerCooldown},
		AttemptTimeout: cfg.LLMTimeout,
		Telemetry:      tel,
		Metrics:        llmroute.NewMetrics(b.registry),
	}), wait
}

// fallbackModel is the fallback endpoint's model, "" without one.
func (c *WorkerConfig) fallbackModel() string {
	if c.Fallback.BaseURL == "" {
		return ""
	}
	return c.fallbackLLMConfig(nil).Model
}

// cancellations is the listener that hands a job's cancellation, sent by PostgreSQL's
// NOTIFY, to the workers: the one running it stops it. Each time it starts listening (again,
// after its connection dropped) the workers stop the jobs cancelled meanwhile.
func cancellations(b *base, workers []*worker.Worker) *pgxlisten.Listener {
	l := database.NewListener(b.pool, time.Second, func(ctx context.Context, err error) {
		if ctx.Err() == nil {
			b.tel.Logger.WarnContext(ctx, "worker: LISTEN for cancellations", slog.String("error", err.Error()))
		}
	})
	l.Handle(database.JobCancelledChannel, cancelHandler(workers))
	return l
}

// cancelHandler stops the job a notification names, and, as a backlog, those cancelled
// while nobody listened.
type cancelHandler []*worker.Worker

func (ws cancelHandler) HandleNotification(_ context.Context, n *pgconn.Notification, _ *pgx.Conn) error {
	for _, w := range ws {
		w.CancelJob(n.Payload)
	}
	return nil
}

func (ws cancelHandler) HandleBacklog(ctx context.Context, _ string, _ *pgx.Conn) error {
	var errs []error
	for _, w := range ws { // one kind's failure does not keep the others' jobs running
		errs = append(errs, w.CancelCancelled(ctx))
	}
	return errors.Join(errs...)
}

// processName names this worker process in the heartbeat table: host name and pid.
func processName() string {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	return fmt.Sprintf("%s/%d", host, os.Getpid())
}
