package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgxlisten"

	"github.com/careerops/jobs/internal/analytics"
	"github.com/careerops/jobs/internal/auth"
	"github.com/careerops/jobs/internal/cli"
	"github.com/careerops/jobs/internal/config"
	"github.com/careerops/jobs/internal/database"
	"github.com/careerops/jobs/internal/httpapi"
	"github.com/careerops/jobs/internal/jobstore"
	"github.com/careerops/jobs/internal/kinds"
	"github.com/careerops/jobs/internal/ops"
	"github.com/careerops/jobs/internal/progress"
	"github.com/careerops/jobs/internal/schedule"
	"github.com/careerops/jobs/internal/telemetry"
)

func apiProgram() program {
	return program{Program: config.Program{Name: "api", About: "The CareerOps HTTP API."}, service: "careerops-api"}
}

// API is the api program: it serves the HTTP API until ctx ends, then stops gracefully.
func API(o Options) cli.RunFunc { return runProgram(o, apiProgram(), DefaultAPIConfig, serveAPI) }

// apiRelayLinger is how long the api's outbox relay gathers before a batch while rows come
// often (outbox.RelayConfig.Linger; a row after a quiet spell goes out at once). Batched
// creates skip the relay (outbox.Handoff); its rows are the single creates' (a counted
// quota), other kinds' jobs and what a hand-off could not publish. At 287 jobs/s, when it
// published every job's message, 10 ms cut PostgreSQL transactions per job from 4.3 to 2.9
// (docs/benchmarks.md).
const apiRelayLinger = 10 * time.Millisecond

// serveAPI runs the api with cfg until ctx ends or one of its parts fails.
func serveAPI(ctx context.Context, cfg APIConfig, tel *telemetry.Telemetry, o Options) error {
	log := tel.Logger
	b, err := newBase(ctx, ctx, baseConfig{
		name: apiProgram().service, deps: cfg.Dependencies, maxConns: cfg.DatabaseMaxConns, pprof: cfg.PprofAddr,
		relayLinger: apiRelayLinger,
	}, tel)
	if err != nil {
		return err
	}
	defer b.close()

	hub, progressPub := progress.NewHub(b.conn, log), progress.NewPublisher(b.conn, log)
	streamsDone := make(chan struct{})
	creates := jobstore.NewBatcher(b.store, cfg.CreateBatchMax, jobstore.DefaultBatchesInFlight)
	users := httpapi.NewUserCache(time.Minute)
	server := httpapi.New(httpapi.Deps{
		TrustClientTraceContext: cfg.TrustClientTraceContext,
		Store:                   creates,
		Verifier:                auth.NewVerifier([]byte(cfg.JWTSecret)),
		Admin:                   b.admin,
		Registry:                b.registry,
		Telemetry:               tel,
		Streams: httpapi.Streams{Hub: hub, Done: streamsDone, Secret: []byte(cfg.JWTSecret),
			MaxPerUser: cfg.StreamsPerUser, MaxLifetime: cfg.StreamMaxLifetime},
		Notifications: b.store,
		MyData:        b.store,
		Users:         users,
		Ops:           ops.NewSource(b.conn, b.store),
		Usage:         usageSource{analytics.NewStore(b.pool), b.store},
		JaegerUIURL:   cfg.JaegerUIURL,
		DevUsers:      devUsers(cfg, b.store),
		Progress:      progressPub,
		Limits: httpapi.Limits{
			RequestsPerMinute: cfg.UserRequestsPerMinute,
			Jobs:              jobstore.Limits{JobsPerMinute: cfg.UserJobsPerMinute, TokensPerDay: cfg.UserTokensPerDay},
		},
	})
	ln, err := new(net.ListenConfig).Listen(ctx, "tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.HTTPAddr, err)
	}

	g := newGroup()
	background := g.stage(ctx)
	background.run("progress hub", func(ctx context.Context) error { hub.Run(ctx); return nil })
	background.run("progress publisher", func(ctx context.Context) error { progressPub.Run(ctx); return nil })
	background.run("outbox relay", b.relay.Run)
	background.run("create batcher", creates.Run)
	background.run("outbox hand-off", b.handoff.Run)
	background.run("erasures", func(ctx context.Context) error { _ = erasures(b, users).Listen(ctx); return nil })
	front := g.stage(ctx)
	front.run("http server", serve(fiberServer{app: server, streamsDone: streamsDone, stop: streamsDone, log: log}, ln, cfg.ShutdownTimeout))
	log.InfoContext(ctx, "api: listening", slog.String("addr", ln.Addr().String()))
	o.ready(ln.Addr().String())

	err = front.wait()
	err = errors.Join(err, background.stop())
	// The hand-off stopped with the batcher: it publishes what the batcher's last batches wrote.
	err = errors.Join(err, b.handoff.Flush(context.WithoutCancel(ctx)))
	log.InfoContext(context.WithoutCancel(ctx), "api: stopped")
	return err
}

// fiberServer is the api's HTTP server as a part of its group (see serve).
type fiberServer struct {
	app         *fiber.App
	streamsDone chan<- struct{}
	stop        <-chan struct{} // streamsDone, read: the shutdown began
	log         *slog.Logger
}

func (s fiberServer) Serve(ln net.Listener) error {
	return s.app.Listener(httpapi.CloseUnusedOnStop(ln, s.stop))
}

// Shutdown ends the event streams (or the shutdown would wait for them), then shuts the
// server down gracefully. Requests still running at the deadline are logged, not failed.
func (s fiberServer) Shutdown(ctx context.Context) error {
	s.log.InfoContext(ctx, "api: shutting down")
	close(s.streamsDone)
	if err := s.app.ShutdownWithContext(ctx); err != nil {
		s.log.WarnContext(ctx, "api: shutdown", slog.String("error", err.Error()))
	}
	return nil
}

// usageSource reads the rollups and the users' tokens of the day.
type usageSource struct {
	*analytics.Store
	jobs *jobstore.Store
}

func (u usageSource) TokensToday(ctx context.Context, userID int64) (int64, time.Time, error) {
	return u.jobs.TokensToday(ctx, userID)
}

// Refresh enqueues an analytics.process job as the system user, its arguments checked as the
// worker checks them.
func (u usageSource) Refresh(ctx context.Context, args json.RawMessage) (string, error) {
	k := kinds.Analytics(kinds.AnalyticsDeps{})
	checked, err := k.Decode(args)
	if err != nil {
		return "", err
	}
	system, err := schedule.SystemUser(ctx, u.jobs.Pool())
	if err != nil {
		return "", err
	}
	return u.jobs.Runs(k.Spec).EnqueueNow(ctx, jobstore.NewRun{UserID: system, Args: checked})
}

// devUsers enables the dev token endpoint only when asked.
func devUsers(cfg APIConfig, store *jobstore.Store) httpapi.DevUsers {
	if !cfg.DevTokenEndpoint {
		return nil
	}
	return store
}

// erasures is the listener that makes this replica forget a user erased on any replica
// (NOTIFY on database.UserErasedChannel), so that their tokens stop working at once; on
// every (re)connection it forgets everyone, since an erasure may have been missed meanwhile.
func erasures(b *base, users *httpapi.UserCache) *pgxlisten.Listener {
	l := database.NewListener(b.pool, time.Second, func(ctx context.Context, err error) {
		if ctx.Err() == nil {
			b.tel.Logger.WarnContext(ctx, "api: LISTEN for erasures", slog.String("error", err.Error()))
		}
	})
	l.Handle(database.UserErasedChannel, erasureHandler{users})
	return l
}

// erasureHandler forgets each erased user, and everyone when the listener (re)connects.
type erasureHandler struct{ users *httpapi.UserCache }

func (h erasureHandler) HandleNotification(_ context.Context, n *pgconn.Notification, _ *pgx.Conn) error {
	if id, err := strconv.ParseInt(n.Payload, 10, 64); err == nil {
		h.users.Forget(id)
	}
	return nil
}

func (h erasureHandler) HandleBacklog(context.Context, string, *pgx.Conn) error {
	h.users.Reset()
	return nil
}
