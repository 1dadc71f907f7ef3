package app

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/careerops/jobs/internal/cli"
	"github.com/careerops/jobs/internal/config"
	"github.com/careerops/jobs/internal/fakeopenai"
)

// fakeShutdownTimeout bounds fakeopenai's graceful stop.
const fakeShutdownTimeout = 10 * time.Second

// FakeOpenAIConfig is fakeopenai's configuration: flags, each also read from the variable
// FAKEOPENAI_ and the flag's name in upper case; flags win.
type FakeOpenAIConfig struct {
	// Addr is the listen address; port 0 picks a free port.
	Addr string `env:"FAKEOPENAI_ADDR" flag:"addr" help:"Listen address; port 0 picks a free port."`
	fakeopenai.Config
}

// DefaultFakeOpenAIConfig is fakeopenai's configuration before the environment and flags.
func DefaultFakeOpenAIConfig() FakeOpenAIConfig {
	return FakeOpenAIConfig{
		Addr:   "127.0.0.1:8090",
		Config: fakeopenai.Config{RetryAfter: fakeopenai.DefaultRetryAfter, Model: fakeopenai.DefaultModel},
	}
}

// FakeOpenAI is the fakeopenai program: it serves a fake OpenAI chat-completions API until
// ctx ends, then stops gracefully.
func FakeOpenAI(o Options) cli.RunFunc {
	return func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
		cfg := DefaultFakeOpenAIConfig()
		p := config.Program{Name: "fakeopenai", About: "Serves a fake OpenAI chat-completions API that writes cover letters."}
		if help, err := config.Parse(p, args, getenv, stdout, &cfg); help || err != nil {
			return err
		}
		handler, err := fakeopenai.New(cfg.Config)
		if err != nil {
			return err
		}
		log := slog.New(slog.NewJSONHandler(stderr, nil))
		ln, err := new(net.ListenConfig).Listen(ctx, "tcp", cfg.Addr)
		if err != nil {
			return err
		}
		srv := &http.Server{
			Handler:           handler,
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       time.Minute,
			IdleTimeout:       2 * time.Minute,
			// No WriteTimeout: injected latency and streams may take any time.
			ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		}
		log.InfoContext(ctx, "fakeopenai: listening", slog.String("addr", ln.Addr().String()), slog.String("latency", cfg.Latency.String()),
			slog.Float64("failRate", cfg.FailRate), slog.Float64("rateLimitRate", cfg.RateLimitRate))
		o.ready(ln.Addr().String())

		server := newGroup().stage(ctx)
		server.run("http server", serve(srv, ln, fakeShutdownTimeout))
		err = server.wait()
		log.InfoContext(context.WithoutCancel(ctx), "fakeopenai: stopped", slog.Any("stats", handler.Stats()))
		return err
	}
}
