package app

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/careerops/jobs/internal/admin"
	"github.com/careerops/jobs/internal/broker"
	"github.com/careerops/jobs/internal/database"
	"github.com/careerops/jobs/internal/depmetrics"
	"github.com/careerops/jobs/internal/jobstore"
	"github.com/careerops/jobs/internal/outbox"
	"github.com/careerops/jobs/internal/telemetry"
)

// base is what the api and the worker are built on: the pgx pool, the broker connection and
// its publisher, the job store with the outbox hand-off and relay that publish what it writes, and the
// Prometheus registry with the dependency collectors, served with the readiness checks by
// one admin handler (/healthz, /readyz, /metrics).
type base struct {
	tel       *telemetry.Telemetry
	pool      *pgxpool.Pool
	conn      *broker.Connection
	publisher *broker.Publisher
	store     *jobstore.Store
	relay     *outbox.Relay
	handoff   *outbox.Handoff
	registry  *prometheus.Registry
	admin     http.Handler
	closers   []func() // in the order they run
}

// baseConfig is what base needs of a program's configuration.
type baseConfig struct {
	name     string // the program's name towards RabbitMQ, e.g. careerops-api
	deps     Dependencies
	maxConns int32
	pprof    string
	// relayLinger is the outbox relay's wait before it looks (outbox.RelayConfig.Linger).
	relayLinger time.Duration
}

// newBase connects the program to its dependencies. The broker connection lives until
// connCtx ends or close is called. Call close when the program is done with them.
func newBase(ctx, connCtx context.Context, cfg baseConfig, tel *telemetry.Telemetry) (*base, error) {
	b := &base{tel: tel}
	b.onClose(tel.Pprof(cfg.pprof))
	pool, err := database.Connect(ctx, cfg.deps.DatabaseURL, cfg.maxConns, tel.QueryTracer())
	if err != nil {
		b.close()
		return nil, err
	}
	b.pool = pool
	b.onClose(pool.Close)

	conn, err := broker.Dial(connCtx, broker.ConnectionConfig{URL: cfg.deps.RabbitMQURL, Name: cfg.name, Logger: tel.Logger,
		CompletedMaxLength: cfg.deps.CompletedQueueMaxLength, DeclareCompleted: true})
	if err != nil {
		b.close()
		return nil, err
	}
	b.conn = conn
	b.onClose(conn.Wait)
	b.onClose(conn.Close)
	b.publisher = broker.NewPublisher(conn)
	b.onClose(b.publisher.Close)

	b.registry = prometheus.NewRegistry()
	b.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		depmetrics.New(pool, conn.Connected))
	b.admin = admin.Handler(b.registry, map[string]admin.Check{
		"database": pool.Ping,
		"broker": func(context.Context) error {
			if !conn.Connected() {
				return errors.New("not connected")
			}
			return nil
		},
	})
	b.store = jobstore.New(pool)
	b.relay = outbox.NewRelay(pool, b.publisher, outbox.RelayConfig{Linger: cfg.relayLinger, Logger: tel.Logger, Telemetry: tel,
		ServerAttributes: conn.ServerAttributes()})
	b.store.OnOutboxWrite(b.relay.Wake)
	b.handoff = outbox.NewHandoff(pool, b.publisher, outbox.HandoffConfig{Logger: tel.Logger, Telemetry: tel,
		ServerAttributes: conn.ServerAttributes()})
	b.store.HandOff(b.handoff)
	return b, nil
}

// onClose registers f to run on close, before the functions registered earlier.
func (b *base) onClose(f func()) { b.closers = append([]func(){f}, b.closers...) }

// close releases what newBase took, in the reverse order.
func (b *base) close() {
	for _, f := range b.closers {
		f()
	}
}
