// Package depmetrics reports the state of a program's dependencies as Prometheus metrics,
// read at scrape time: PostgreSQL reachability and pool, the RabbitMQ connection, and the
// outbox backlog waiting to be published.
package depmetrics

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/careerops/jobs/internal/outbox"
)

// Collector is a prometheus.Collector over a pool and a broker connection.
type Collector struct {
	pool           *pgxpool.Pool
	brokerUp       func() bool
	databaseUp     *prometheus.Desc
	poolConns      *prometheus.Desc
	brokerConn     *prometheus.Desc
	outboxMessages *prometheus.Desc
	outboxAge      *prometheus.Desc
	outboxParked   *prometheus.Desc
}

// New returns a Collector. brokerUp reports whether the RabbitMQ connection is up.
func New(pool *pgxpool.Pool, brokerUp func() bool) *Collector {
	return &Collector{
		pool:     pool,
		brokerUp: brokerUp,
		databaseUp: prometheus.NewDesc("careerops_database_up",
			"1 if PostgreSQL answered a ping at scrape time.", nil, nil),
		poolConns: prometheus.NewDesc("careerops_database_pool_connections",
			"Connections of the pool, by state (idle, in_use).", []string{"state"}, nil),
		brokerConn: prometheus.NewDesc("careerops_broker_connection_up",
			"1 while the RabbitMQ connection is up.", nil, nil),
		outboxMessages: prometheus.NewDesc("careerops_outbox_messages",
			"Messages in the outbox: not yet confirmed by RabbitMQ, or delayed retries.", nil, nil),
		outboxAge: prometheus.NewDesc("careerops_outbox_oldest_message_age_seconds",
			"How long the oldest due outbox message has waited to be published (0 if none).", nil, nil),
		outboxParked: prometheus.NewDesc("careerops_outbox_parked_messages",
			"Outbox messages the relay gave up on (refused by RabbitMQ too often, or never publishable): replay them with careeropsctl outbox replay.", nil, nil),
	}
}

// Describe sends the metric descriptions.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.databaseUp, c.poolConns, c.brokerConn, c.outboxMessages, c.outboxAge, c.outboxParked} {
		ch <- d
	}
}

// Collect reads the current state; a database that does not answer within a second is down.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	up := 1.0
	if err := c.pool.Ping(ctx); err != nil {
		up = 0
	}
	ch <- prometheus.MustNewConstMetric(c.databaseUp, prometheus.GaugeValue, up)
	stat := c.pool.Stat()
	ch <- prometheus.MustNewConstMetric(c.poolConns, prometheus.GaugeValue, float64(stat.IdleConns()), "idle")
	ch <- prometheus.MustNewConstMetric(c.poolConns, prometheus.GaugeValue, float64(stat.AcquiredConns()), "in_use")
	brokerUp := 0.0
	if c.brokerUp() {
		brokerUp = 1
	}
	ch <- prometheus.MustNewConstMetric(c.brokerConn, prometheus.GaugeValue, brokerUp)
	if up == 1 {
		if b, err := outbox.ReadBacklog(ctx, c.pool); err == nil {
			ch <- prometheus.MustNewConstMetric(c.outboxMessages, prometheus.GaugeValue, float64(b.Waiting))
			ch <- prometheus.MustNewConstMetric(c.outboxAge, prometheus.GaugeValue, b.OldestDue.Seconds())
			ch <- prometheus.MustNewConstMetric(c.outboxParked, prometheus.GaugeValue, float64(b.Parked))
		}
	}
}
