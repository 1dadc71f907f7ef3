package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgxlisten"

	"github.com/careerops/jobs/internal/broker"
	"github.com/careerops/jobs/internal/cli"
	"github.com/careerops/jobs/internal/config"
	"github.com/careerops/jobs/internal/database"
	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/llm"
	"github.com/careerops/jobs/internal/llmbudget"
	"github.com/careerops/jobs/internal/llmroute"
	"github.com/careerops/jobs/internal/progress"
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
		Program: config.Program{Name: "worker", About: "The CareerOps worker: consumes cover-letter.generate and calls the LLM."},
		service: "careerops-worker",
	}
}

// Worker is the worker program: it runs jobs until ctx ends, then drains.
func Worker(o Options) cli.RunFunc {
	return runProgram(o, workerProgram(), DefaultWorkerConfig, serveWorker)
}

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
	}, tel)
	if err != nil {
		return err
	}
	defer b.close()

	progressPub := progress.NewPublisher(b.conn, log)
	model, llmWait := workerLLM(cfg, tel, b)
	w := worker.New(broker.NewConsumer(b.conn, job.QueueGenerate, "careerops-worker"), b.store, model, worker.Config{
		Concurrency:    cfg.Concurrency,
		MaxAttempts:    cfg.MaxAttempts,
		RetryBaseDelay: cfg.RetryBaseDelay,
		RetryMaxDelay:  cfg.RetryMaxDelay,
		LLMTimeout:     cfg.LLMTimeout,
		LLMWait:        llmWait,
		DrainTimeout:   cfg.DrainTimeout,
		ReapInterval:   cfg.ReapInterval,
		JobsPerMinute:  cfg.UserJobsPerMinute,
		Name:           processName(),
		Telemetry:      tel,
		Metrics:        worker.NewMetrics(b.registry),
		Progress:       progressPub,
	})
	ln, err := new(net.ListenConfig).Listen(ctx, "tcp", cfg.AdminAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.AdminAddr, err)
	}

	g := newGroup()
	adminStage := g.stage(context.WithoutCancel(ctx))
	adminStage.run("admin server", serve(&http.Server{Handler: b.admin, ReadHeaderTimeout: 5 * time.Second}, ln, adminShutdownTimeout))
	log.InfoContext(ctx, "worker: admin listening", slog.String("addr", ln.Addr().String()),
		slog.Int("concurrency", cfg.Concurrency), slog.String("model", cfg.OpenAIModel),
		slog.String("fallback_model", cfg.fallbackModel()))
	o.ready(ln.Addr().String())

	// The relay publishes what the worker's transactions wrote (results, retries, dead
	// letters); it and the others here run until the jobs have drained.
	background := g.stage(context.WithoutCancel(ctx))
	background.run("outbox relay", b.relay.Run)
	background.run("cancellation listener", cancellations(b, w).Listen)
	background.run("progress publisher", func(ctx context.Context) error { progressPub.Run(ctx); return nil })

	front := g.stage(ctx)
	front.run("worker", w.Run)
	err = front.wait()
	err = errors.Join(err, background.stop())
	// Publish what the last jobs wrote; what cannot go now stays in the outbox for others.
	flushCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), flushTimeout)
	if flushErr := b.relay.Flush(flushCtx); flushErr != nil {
		log.WarnContext(flushCtx, "worker: outbox not flushed; another relay will publish it", slog.String("error", flushErr.Error()))
	}
	cancel()
	return errors.Join(err, adminStage.stop())
}

// workerLLM is the worker's LLM: the primary endpoint's client, within the shared rate budget
// if cfg sets one, behind a circuit breaker that sends calls to the fallback endpoint while
// the primary fails (or its budget has no turn soon enough), if one is configured; and the
// longest a call may wait for the budget before it starts.
func workerLLM(cfg WorkerConfig, tel *telemetry.Telemetry, b *base) (worker.LLM, time.Duration) {
	client := llm.New(cfg.llmConfig(tel))
	var (
		primary worker.LLM = client
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
// NOTIFY, to the worker running it.
func cancellations(b *base, w *worker.Worker) *pgxlisten.Listener {
	l := database.NewListener(b.pool, time.Second, func(ctx context.Context, err error) {
		if ctx.Err() == nil {
			b.tel.Logger.WarnContext(ctx, "worker: LISTEN for cancellations", slog.String("error", err.Error()))
		}
	})
	l.Handle(database.JobCancelledChannel, pgxlisten.HandlerFunc(
		func(_ context.Context, n *pgconn.Notification, _ *pgx.Conn) error {
			w.CancelJob(n.Payload)
			return nil
		}))
	return l
}

// processName names this worker process in the heartbeat table: host name and pid.
func processName() string {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	return fmt.Sprintf("%s/%d", host, os.Getpid())
}
