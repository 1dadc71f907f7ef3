package riverpeer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/careerops/jobs/internal/auth"
	"github.com/careerops/jobs/internal/cli"
	"github.com/careerops/jobs/internal/config"
	"github.com/careerops/jobs/internal/database"
	"github.com/careerops/jobs/internal/llm"
	"github.com/careerops/jobs/internal/telemetry"
)

// Config is the peer's settings; DefaultConfig holds the defaults.
type Config struct {
	DatabaseURL      string `env:"DATABASE_URL,required" help:"The peer's PostgreSQL database (migrated by the bench: Migrate)."`
	DatabaseMaxConns int32  `env:"DATABASE_MAX_CONNS" help:"Bounds the database pool; 0: WORKER_CONCURRENCY + 4 for the worker, 16 for the api (as ours)."`
	JWTSecret        string `env:"JWT_SECRET" help:"api: the HS256 secret of the user tokens."`
	HTTPAddr         string `env:"HTTP_ADDR" help:"api: where POST /api/cover-letter and /readyz are served."`
	AdminAddr        string `env:"ADMIN_ADDR" help:"worker: where /readyz is served."`
	Concurrency      int    `env:"WORKER_CONCURRENCY" help:"worker: River's MaxWorkers in the default queue."`
	OpenAIBaseURL    string `env:"OPENAI_BASE_URL" help:"worker: the OpenAI-compatible API."`
	OpenAIAPIKey     string `env:"OPENAI_API_KEY" help:"worker: its key."`
	OpenAIModel      string `env:"OPENAI_MODEL" help:"worker: the model."`
	mode             string
}

// DefaultConfig is the peer's defaults: our api's and worker's where they have one.
func DefaultConfig() Config {
	return Config{HTTPAddr: "127.0.0.1:8080", AdminAddr: "127.0.0.1:9090", Concurrency: 8,
		OpenAIBaseURL: "http://127.0.0.1:8090/v1", OpenAIModel: "gpt-4o-mini"}
}

// Validate reports the first setting the mode cannot run with.
func (c Config) Validate() error {
	switch {
	case c.mode == "api" && len(c.JWTSecret) < auth.MinSecretBytes:
		return fmt.Errorf("JWT_SECRET must be at least %d bytes", auth.MinSecretBytes)
	case c.mode == "worker" && c.Concurrency < 1:
		return errors.New("WORKER_CONCURRENCY must be at least 1")
	}
	return nil
}

// maxConns is the pool's size.
func (c Config) maxConns() int32 {
	switch {
	case c.DatabaseMaxConns > 0:
		return c.DatabaseMaxConns
	case c.mode == "worker":
		return int32(c.Concurrency + 4) //nolint:gosec // a worker count
	}
	return 16
}

// Run is the riverpeer program: "riverpeer api" or "riverpeer worker", until ctx ends.
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "api" && args[0] != "worker") {
		return fmt.Errorf("%w: riverpeer api|worker (--help after the mode lists the settings)", cli.ErrUsage)
	}
	cfg := DefaultConfig()
	cfg.mode = args[0]
	p := config.Program{Name: "riverpeer " + cfg.mode, About: "The bench's River peer: our api's POST /api/cover-letter or our worker's job, on River."}
	if help, err := config.Parse(p, args[1:], getenv, stdout, &cfg); help || err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	pool, err := database.Connect(ctx, cfg.DatabaseURL, cfg.maxConns(), nil)
	if err != nil {
		return err
	}
	defer pool.Close()
	if cfg.mode == "api" {
		return runAPI(ctx, cfg, pool, log)
	}
	return runWorker(ctx, cfg, pool, log)
}

func runAPI(ctx context.Context, cfg Config, pool *pgxpool.Pool, log *slog.Logger) error {
	a, err := NewAPI(pool, []byte(cfg.JWTSecret), log)
	if err != nil {
		return err
	}
	ln, err := new(net.ListenConfig).Listen(ctx, "tcp", cfg.HTTPAddr)
	if err != nil {
		return err
	}
	app := a.App()
	served := make(chan error, 1)
	go func() { served <- app.Listener(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	return app.ShutdownWithTimeout(10 * time.Second)
}

func runWorker(ctx context.Context, cfg Config, pool *pgxpool.Pool, log *slog.Logger) error {
	model := llm.New(llm.Config{BaseURL: cfg.OpenAIBaseURL, APIKey: cfg.OpenAIAPIKey, Model: cfg.OpenAIModel,
		Telemetry: telemetry.New(log, noop.NewTracerProvider())})
	client, err := NewWorker(pool, model, cfg.Concurrency, log)
	if err != nil {
		return err
	}
	if err := client.Start(ctx); err != nil {
		return err
	}
	ln, err := new(net.ListenConfig).Listen(ctx, "tcp", cfg.AdminAddr)
	if err != nil {
		return errors.Join(err, client.Stop(context.WithoutCancel(ctx)))
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }() // ends with Shutdown below
	<-ctx.Done()
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	return errors.Join(client.Stop(stopCtx), srv.Shutdown(stopCtx))
}
