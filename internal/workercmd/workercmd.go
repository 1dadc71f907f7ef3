package workercmd

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgxlisten"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/careerops/jobs/internal/broker"
	"github.com/careerops/jobs/internal/cli"
	"github.com/careerops/jobs/internal/database"
	"github.com/careerops/jobs/internal/depmetrics"
	"github.com/careerops/jobs/internal/jobstore"
	"github.com/careerops/jobs/internal/llm"
	"github.com/careerops/jobs/internal/outbox"
	"github.com/careerops/jobs/internal/progress"
	"github.com/careerops/jobs/internal/telemetry"
	"github.com/careerops/jobs/internal/worker"
)

// ErrUsage is returned for bad flags; main exits 2.
var ErrUsage = cli.ErrUsage

// Run is the worker program: parse flags, read the environment, work until ctx ends.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg Config
	if help, err := cli.Configure("worker", "The CareerOps worker: consumes cover-letter.generate and calls the LLM.", args, stdout, &cfg); help || err != nil {
		return err
	}
	tel, err := telemetry.FromEnv(ctx, "careerops-worker", cfg.LogLevel, stderr)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	defer tel.Close()
	return Serve(ctx, cfg, tel, nil)
}

// Serve runs the worker with cfg until ctx ends, then drains. If ready is not nil it receives
// the admin address once it listens.
func Serve(ctx context.Context, cfg Config, tel *telemetry.Telemetry, ready chan<- string) error {
	log := tel.Logger
	defer tel.Pprof(cfg.PprofAddr)()
	maxConns := cfg.DatabaseMaxConns
	if maxConns <= 0 {
		maxConns = int32(cfg.Concurrency) + 4
	}
	pool, err := database.Connect(ctx, cfg.DatabaseURL, maxConns, tel.QueryTracer())
	if err != nil {
		return err
	}
	defer pool.Close()

	// The connection outlives ctx: draining jobs still ack after SIGTERM.
	connCtx, closeConn := context.WithCancel(context.WithoutCancel(ctx))
	defer closeConn()
	conn, err := broker.Dial(connCtx, broker.ConnectionConfig{URL: cfg.RabbitMQURL, Name: "careerops-worker", Logger: log})
	if err != nil {
		return err
	}
	defer conn.Wait()
	defer conn.Close()
	publisher := broker.NewPublisher(conn)
	defer publisher.Close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		depmetrics.New(pool, conn.Connected))
	store := jobstore.New(pool)
	relay := outbox.NewRelay(pool, publisher, outbox.RelayConfig{Logger: log, Telemetry: tel, ServerAttributes: conn.ServerAttributes()})
	store.OnOutboxWrite(relay.Wake)
	progressPub := progress.NewPublisher(conn, log)
	w := worker.New(conn, store, llm.New(cfg.LLMConfig(tel)), worker.Config{
		Concurrency:    cfg.Concurrency,
		MaxAttempts:    cfg.MaxAttempts,
		RetryBaseDelay: cfg.RetryBaseDelay,
		RetryMaxDelay:  cfg.RetryMaxDelay,
		LLMTimeout:     cfg.LLMTimeout,
		DrainTimeout:   cfg.DrainTimeout,
		ReapInterval:   cfg.ReapInterval,
		Telemetry:      tel,
		Metrics:        worker.NewMetrics(reg),
		Progress:       progressPub,
	})

	ln, err := net.Listen("tcp", cfg.AdminAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.AdminAddr, err)
	}
	admin := &http.Server{Handler: adminMux(reg, pool.Ping, conn.Connected), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = admin.Serve(ln) }()
	log.InfoContext(ctx, "worker: admin listening", slog.String("addr", ln.Addr().String()),
		slog.Int("concurrency", cfg.Concurrency), slog.String("model", cfg.OpenAIModel))
	if ready != nil {
		ready <- ln.Addr().String()
	}

	// The relay publishes what the worker's transactions wrote (results, retries, dead
	// letters); it runs until the jobs have drained.
	relayCtx, stopRelay := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = relay.Run(relayCtx)
	}()

	// Cancellations reach the worker running the job through PostgreSQL's NOTIFY.
	cancellations := database.NewListener(pool, time.Second, func(ctx context.Context, err error) {
		if ctx.Err() == nil {
			log.WarnContext(ctx, "worker: LISTEN for cancellations", slog.String("error", err.Error()))
		}
	})
	cancellations.Handle(database.JobCancelledChannel, pgxlisten.HandlerFunc(
		func(_ context.Context, n *pgconn.Notification, _ *pgx.Conn) error {
			w.CancelJob(n.Payload)
			return nil
		}))
	wg.Add(2)
	go func() { defer wg.Done(); _ = cancellations.Listen(relayCtx) }()
	go func() { defer wg.Done(); progressPub.Run(relayCtx) }()

	err = w.Run(ctx)

	stopRelay()
	wg.Wait()
	// Publish what the last jobs wrote; what cannot go now stays in the outbox for others.
	flushCtx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	if flushErr := relay.Flush(flushCtx); flushErr != nil {
		log.WarnContext(flushCtx, "worker: outbox not flushed; another relay will publish it", slog.String("error", flushErr.Error()))
	}
	cancel()
	shutdownCtx, cancelShutdown := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancelShutdown()
	_ = admin.Shutdown(shutdownCtx)
	return err
}

func adminMux(reg *prometheus.Registry, pingDB func(context.Context) error, brokerUp func() bool) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"ok"}`)
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		db, mq := "ok", "ok"
		if pingDB(ctx) != nil {
			db = "unavailable"
		}
		if !brokerUp() {
			mq = "unavailable"
		}
		w.Header().Set("Content-Type", "application/json")
		if db != "ok" || mq != "ok" {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		fmt.Fprintf(w, `{"ready":%t,"checks":{"database":%q,"broker":%q}}`, db == "ok" && mq == "ok", db, mq)
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return mux
}
