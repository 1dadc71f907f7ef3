// Command fakeopenai serves a fake OpenAI chat-completions API that writes
// cover letters, for development, demos, tests and load tests. See package
// internal/fakeopenai.
//
// Every flag can also be set by an environment variable, FAKEOPENAI_ and the
// flag name in upper case, such as FAKEOPENAI_FAIL_RATE=0.1; flags win.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/careerops/jobs/internal/cli"
	"github.com/careerops/jobs/internal/fakeopenai"
)

const shutdownTimeout = 10 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	cli.Exit("fakeopenai", err)
}

// run serves until ctx is done, then shuts down gracefully.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var (
		cfg  fakeopenai.Config
		addr string
	)
	fs := flag.NewFlagSet("fakeopenai", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are returned, usage printed on -help only
	fs.StringVar(&addr, "addr", "127.0.0.1:8090", "listen `address`; port 0 picks a free port")
	fs.DurationVar(&cfg.Latency, "latency", 0, "latency of every completion")
	fs.Float64Var(&cfg.FailRate, "fail-rate", 0, "probability in [0, 1] of answering 500")
	fs.Float64Var(&cfg.RateLimitRate, "ratelimit-rate", 0, "probability in [0, 1] of answering 429")
	fs.DurationVar(&cfg.RetryAfter, "retry-after", time.Second, "delay advertised by 429 answers")
	fs.StringVar(&cfg.Model, "model", fakeopenai.DefaultModel, "model listed by /v1/models")
	fs.Int64Var(&cfg.Seed, "seed", 0, "seed of the random faults; 0 picks one")
	fs.Var(&cfg.Profile, "profile", "provider `profile` whose wire format and refusals to reproduce: openai, azure, vllm or ollama (default openai)")

	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		name := "FAKEOPENAI_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := getenv(name); v != "" && envErr == nil {
			if err := fs.Set(f.Name, v); err != nil {
				envErr = fmt.Errorf("invalid value %q for %s: %w", v, name, err)
			}
		}
	})
	if envErr != nil {
		return envErr
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fmt.Fprintln(stdout, "Usage: fakeopenai [flags]\n\nServes a fake OpenAI chat-completions API. Flags may also be set as FAKEOPENAI_<FLAG> environment variables.\n\nFlags:")
			fs.PrintDefaults()
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	handler, err := fakeopenai.New(cfg)
	if err != nil {
		return err
	}

	log := slog.New(slog.NewJSONHandler(stderr, nil))
	ln, err := new(net.ListenConfig).Listen(ctx, "tcp", addr)
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
	log.Info("fakeopenai: listening", "addr", ln.Addr().String(), "latency", cfg.Latency.String(),
		"failRate", cfg.FailRate, "rateLimitRate", cfg.RateLimitRate, "profile", cfg.Profile.String())

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}

	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err = srv.Shutdown(shutdownCtx)
	if err != nil {
		err = errors.Join(fmt.Errorf("shutdown: %w", err), srv.Close())
	}
	if serveErr := <-served; !errors.Is(serveErr, http.ErrServerClosed) {
		err = errors.Join(err, serveErr)
	}
	log.Info("fakeopenai: stopped", "stats", handler.Stats())
	return err
}
