package apicmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/careerops/jobs/internal/auth"
	"github.com/careerops/jobs/internal/broker"
	"github.com/careerops/jobs/internal/cli"
	"github.com/careerops/jobs/internal/database"
	"github.com/careerops/jobs/internal/depmetrics"
	"github.com/careerops/jobs/internal/httpapi"
	"github.com/careerops/jobs/internal/jobstore"
	"github.com/careerops/jobs/internal/ops"
	"github.com/careerops/jobs/internal/outbox"
	"github.com/careerops/jobs/internal/progress"
	"github.com/careerops/jobs/internal/telemetry"
)

// ErrUsage is returned for bad flags; main exits 2.
var ErrUsage = cli.ErrUsage

// Run is the api program: parse flags, read the environment, serve until ctx ends.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg Config
	if help, err := cli.Configure("api", "The CareerOps HTTP API.", args, stdout, &cfg); help || err != nil {
		return err
	}
	tel, err := telemetry.FromEnv(ctx, "careerops-api", cfg.LogLevel, stderr)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	defer tel.Close()
	return Serve(ctx, cfg, tel, nil)
}

// Serve runs the api with cfg until ctx ends. If ready is not nil it receives the listen
// address once the server accepts connections.
func Serve(ctx context.Context, cfg Config, tel *telemetry.Telemetry, ready chan<- string) error {
	log := tel.Logger
	defer tel.Pprof(cfg.PprofAddr)()
	pool, err := database.Connect(ctx, cfg.DatabaseURL, cfg.DatabaseMaxConns, tel.QueryTracer())
	if err != nil {
		return err
	}
	defer pool.Close()

	conn, err := broker.Dial(ctx, broker.ConnectionConfig{URL: cfg.RabbitMQURL, Name: "careerops-api", Logger: log})
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

	hub, progressPub := progress.NewHub(conn, log), progress.NewPublisher(conn, log)
	streamsDone := make(chan struct{})
	store := jobstore.New(pool)
	relay := outbox.NewRelay(pool, publisher, outbox.RelayConfig{Logger: log, Telemetry: tel, ServerAttributes: conn.ServerAttributes()})
	store.OnOutboxWrite(relay.Wake)
	app := httpapi.New(httpapi.Deps{
		Store:    store,
		Verifier: auth.NewVerifier([]byte(cfg.JWTSecret)),
		Ready: map[string]httpapi.Checker{
			"database": httpapi.CheckFunc(pool.Ping),
			"broker": httpapi.CheckFunc(func(context.Context) error {
				if !conn.Connected() {
					return errors.New("not connected")
				}
				return nil
			}),
		},
		Registry:    reg,
		Telemetry:   tel,
		Streams:     httpapi.Streams{Hub: hub, Done: streamsDone, Secret: []byte(cfg.JWTSecret)},
		Ops:         ops.NewSource(conn, store),
		JaegerUIURL: cfg.JaegerUIURL,
		DevUsers:    devUsers(cfg, store),
		Progress:    progressPub,
		Limits: httpapi.Limits{
			RequestsPerMinute: cfg.UserRequestsPerMinute,
			Jobs:              jobstore.Limits{JobsPerMinute: cfg.UserJobsPerMinute, TokensPerDay: cfg.UserTokensPerDay},
		},
	})

	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.HTTPAddr, err)
	}

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); hub.Run(runCtx) }()
	go func() { defer wg.Done(); progressPub.Run(runCtx) }()
	go func() { defer wg.Done(); _ = relay.Run(runCtx) }()

	serveErr := make(chan error, 1)
	go func() { serveErr <- app.Listener(ln) }()
	log.InfoContext(ctx, "api: listening", slog.String("addr", ln.Addr().String()))
	if ready != nil {
		ready <- ln.Addr().String()
	}

	select {
	case err = <-serveErr:
		err = fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
		log.InfoContext(ctx, "api: shutting down")
		close(streamsDone) // end the event streams, or Shutdown would wait for them
		if shutdownErr := app.ShutdownWithTimeout(cfg.ShutdownTimeout); shutdownErr != nil {
			log.WarnContext(ctx, "api: shutdown", slog.String("error", shutdownErr.Error()))
		}
		err = nil
	}
	stop()
	wg.Wait()
	log.InfoContext(context.WithoutCancel(ctx), "api: stopped")
	return err
}

// devUsers enables the dev token endpoint only when asked.
func devUsers(cfg Config, store *jobstore.Store) httpapi.DevUsers {
	if !cfg.DevTokenEndpoint {
		return nil
	}
	return store
}
