package analytics

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// Collector exposes the rollups' totals, all users together, as Prometheus counters read at
// scrape time: every replica that registers it reports the same values (aggregate with max,
// not sum). They grow as the rollups take in finished jobs, every few minutes.
type Collector struct {
	pool                                   *pgxpool.Pool
	jobs, tokens, cost, retries, seenUntil *prometheus.Desc
}

// NewCollector returns a Collector on pool.
func NewCollector(pool *pgxpool.Pool) *Collector {
	return &Collector{
		pool: pool,
		jobs: prometheus.NewDesc("careerops_usage_jobs_total",
			"Finished jobs in the usage rollups, by kind, model and outcome (completed, failed: dead-lettered, cancelled).",
			[]string{"kind", "model", "outcome"}, nil),
		tokens: prometheus.NewDesc("careerops_usage_tokens_total",
			"LLM tokens of the finished jobs in the usage rollups, by kind, model and type (prompt, completion).",
			[]string{"kind", "model", "type"}, nil),
		cost: prometheus.NewDesc("careerops_usage_cost_micros_total",
			"Estimated cost of the finished jobs in the usage rollups (LLM_PRICES), in millionths of the currency unit, by kind and model.",
			[]string{"kind", "model"}, nil),
		retries: prometheus.NewDesc("careerops_usage_retries_total",
			"Attempts after the first of the finished jobs in the usage rollups, by kind and model.",
			[]string{"kind", "model"}, nil),
		seenUntil: prometheus.NewDesc("careerops_usage_rollup_seen_until_timestamp_seconds",
			"Start of the last analytics.process run: jobs that finished before it are in the rollups (0: never ran).", nil, nil),
	}
}

// Describe sends the metric descriptions.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.jobs, c.tokens, c.cost, c.retries, c.seenUntil} {
		ch <- d
	}
}

// Collect reads the totals; a database that does not answer within two seconds yields none.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var seen *time.Time
	if err := c.pool.QueryRow(ctx, `SELECT seen_until FROM usage_rollup_state WHERE name = 'usage'`).Scan(&seen); err != nil {
		return
	}
	ts := 0.0
	if seen != nil {
		ts = float64(seen.UnixMilli()) / 1000
	}
	ch <- prometheus.MustNewConstMetric(c.seenUntil, prometheus.GaugeValue, ts)
	rows, err := c.pool.Query(ctx, `
		SELECT kind, model, outcome, sum(jobs), sum(prompt_tokens), sum(completion_tokens), sum(cost_micros), sum(retries)
		FROM usage_rollups WHERE grain = 'day' AND user_id = 0 AND model <> '`+AnyModel+`'
		GROUP BY kind, model, outcome`)
	if err != nil {
		return
	}
	type key struct{ kind, model string }
	var cost, retries = map[key]float64{}, map[key]float64{}
	var tokens = map[key][2]float64{}
	var kind, model, outcome string
	var jobs, pt, ct, cm, re float64
	_, err = pgx.ForEachRow(rows, []any{&kind, &model, &outcome, &jobs, &pt, &ct, &cm, &re}, func() error {
		ch <- prometheus.MustNewConstMetric(c.jobs, prometheus.CounterValue, jobs, kind, model, outcome)
		k := key{kind, model}
		t := tokens[k]
		tokens[k] = [2]float64{t[0] + pt, t[1] + ct}
		cost[k] += cm
		retries[k] += re
		return nil
	})
	if err != nil {
		return
	}
	for k, t := range tokens {
		ch <- prometheus.MustNewConstMetric(c.tokens, prometheus.CounterValue, t[0], k.kind, k.model, "prompt")
		ch <- prometheus.MustNewConstMetric(c.tokens, prometheus.CounterValue, t[1], k.kind, k.model, "completion")
		ch <- prometheus.MustNewConstMetric(c.cost, prometheus.CounterValue, cost[k], k.kind, k.model)
		ch <- prometheus.MustNewConstMetric(c.retries, prometheus.CounterValue, retries[k], k.kind, k.model)
	}
}
