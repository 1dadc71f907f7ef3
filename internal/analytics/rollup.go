package analytics

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/careerops/jobs/internal/job"
)

// DefaultMargin is how far before the last run's start a run looks again for finished jobs:
// a job's completed_at is its transaction's start, so one that committed after the last run
// read the table may carry an earlier time. Far longer than any job transaction.
const DefaultMargin = 10 * time.Minute

// Store reads and writes the rollups.
type Store struct {
	pool *pgxpool.Pool
}

// NewStore returns a Store on pool.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// RollupOptions say what a run prices and how far back it looks.
type RollupOptions struct {
	// Prices estimate the cost.
	Prices Prices
	// Margin: see DefaultMargin, its default.
	Margin time.Duration
	// Rebuild, if set, also recomputes every bucket with a job that finished since then
	// (a backfill, or new prices applied to past buckets).
	Rebuild *time.Time
}

// RollupResult is what a run did.
type RollupResult struct {
	// Since is the earliest completion time the run looked at.
	Since time.Time `json:"since"`
	// SeenUntil is the new watermark: the start of the run's transaction.
	SeenUntil time.Time `json:"seenUntil"`
	// Hours and Days are the buckets recomputed; Rows the rollup rows written.
	Hours int   `json:"hours"`
	Days  int   `json:"days"`
	Rows  int64 `json:"rows"`
}

// Rollup recomputes, whole and in one transaction, every hour and day bucket in which a job
// finished since the last run's start less the margin, and moves the watermark to this run's
// start. Runs are serialised by the watermark's row lock; running again changes nothing.
func (s *Store) Rollup(ctx context.Context, o RollupOptions) (RollupResult, error) {
	var res RollupResult
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `
			SELECT coalesce(seen_until - make_interval(secs => $1), 'epoch'), now() FROM usage_rollup_state WHERE name = 'usage' FOR UPDATE`,
			cmp.Or(o.Margin, DefaultMargin).Seconds()).Scan(&res.Since, &res.SeenUntil); err != nil {
			return fmt.Errorf("read the watermark: %w", err)
		}
		if o.Rebuild != nil && o.Rebuild.Before(res.Since) {
			res.Since = *o.Rebuild
		}
		hours, err := dirtyHours(ctx, tx, res.Since)
		if err != nil {
			return err
		}
		days := truncDays(hours)
		res.Hours, res.Days = len(hours), len(days)
		for _, g := range []struct {
			grain   string
			buckets []time.Time
		}{{GrainHour, hours}, {GrainDay, days}} {
			n, err := recompute(ctx, tx, g.grain, g.buckets, o.Prices)
			if err != nil {
				return err
			}
			res.Rows += n
		}
		_, err = tx.Exec(ctx, `UPDATE usage_rollup_state SET seen_until = now(), updated_at = now() WHERE name = 'usage'`)
		return err
	})
	if err != nil {
		return res, fmt.Errorf("analytics: rollup: %w", err)
	}
	return res, nil
}

// finishedSQL are the finished jobs of both tables from $since on, with the columns the
// rollups need (other kinds have no model or tokens).
const finishedSQL = `
	SELECT user_id, '` + job.QueueGenerate + `' AS kind, coalesce(model, '') AS model, status, created_at, completed_at,
	       coalesce(prompt_tokens, 0)::bigint AS pt, coalesce(completion_tokens, 0)::bigint AS ct, attempts
	FROM cover_letter_jobs WHERE status IN ('completed', 'failed', 'cancelled') AND completed_at >= $since
	UNION ALL
	SELECT user_id, kind, '', status, created_at, completed_at, 0, 0, attempts
	FROM jobs WHERE status IN ('completed', 'failed', 'cancelled') AND completed_at >= $since`

// dirtyHours are the hours (UTC) in which a job finished since since, ascending.
func dirtyHours(ctx context.Context, tx pgx.Tx, since time.Time) ([]time.Time, error) {
	rows, err := tx.Query(ctx, `SELECT DISTINCT date_trunc('hour', completed_at, 'UTC') FROM (`+
		bind(finishedSQL, "$since", "$1")+`) f ORDER BY 1`, since)
	if err != nil {
		return nil, fmt.Errorf("find the hours to recompute: %w", err)
	}
	hours, err := pgx.CollectRows(rows, pgx.RowTo[time.Time])
	if err != nil {
		return nil, fmt.Errorf("find the hours to recompute: %w", err)
	}
	return hours, nil
}

// truncDays are the UTC days of hours, ascending and distinct.
func truncDays(hours []time.Time) []time.Time {
	days := make([]time.Time, 0, len(hours)/24+1)
	for _, h := range hours {
		d := time.Date(h.UTC().Year(), h.UTC().Month(), h.UTC().Day(), 0, 0, 0, 0, time.UTC)
		if len(days) == 0 || !days[len(days)-1].Equal(d) {
			days = append(days, d)
		}
	}
	return slices.Clip(days)
}

// recomputeSQL writes a grain's rows for the buckets $2 (the first is $3) from the jobs, at
// the levels a query may ask for (always by kind and outcome): by model, and overall; and for
// days also by user and model, and by user (per user and hour there would be about a row
// per job).
func recomputeSQL(grain string) string {
	sets := `(bucket, uid, kind, model, outcome), (bucket, uid, kind, outcome)` // uid: NULL by the hour
	if grain == GrainDay {
		sets += `, (bucket, kind, model, outcome), (bucket, kind, outcome)`
	}
	return recomputeHead + sets + `)`
}

var recomputeHead = `
	INSERT INTO usage_rollups (grain, bucket, user_id, kind, model, outcome, jobs, prompt_tokens, completion_tokens,
	                           cost_micros, retries, p50_ms, p95_ms)
	WITH prices AS (SELECT * FROM unnest($4::text[], $5::bigint[], $6::bigint[]) AS p(model, input, output)),
	src AS (
		SELECT date_trunc($1, f.completed_at, 'UTC') AS bucket, CASE WHEN $1 = '` + GrainDay + `' THEN f.user_id END AS uid, f.kind, f.model, f.status AS outcome, f.pt, f.ct,
		       greatest(f.attempts - 1, 0) AS retries,
		       (extract(epoch FROM f.completed_at - f.created_at) * 1000)::float8 AS ms,
		       f.pt::numeric * coalesce(p.input, d.input, 0) + f.ct::numeric * coalesce(p.output, d.output, 0) AS cost
		FROM (` + bind(finishedSQL, "$since", "$3") + `) f
		LEFT JOIN prices p ON p.model = f.model
		LEFT JOIN prices d ON d.model = '` + AnyModel + `')
	SELECT $1, bucket, coalesce(uid, 0), kind, coalesce(model, '` + AnyModel + `'), outcome, count(*), sum(pt), sum(ct),
	       round(sum(cost) / 1000000), sum(retries),
	       percentile_cont(0.5) WITHIN GROUP (ORDER BY ms), percentile_cont(0.95) WITHIN GROUP (ORDER BY ms)
	FROM src WHERE bucket = ANY($2)
	GROUP BY GROUPING SETS (`

// recompute replaces a grain's rows of buckets (ascending) with rows computed from the jobs,
// and returns how many it wrote.
func recompute(ctx context.Context, tx pgx.Tx, grain string, buckets []time.Time, prices Prices) (int64, error) {
	if len(buckets) == 0 {
		return 0, nil
	}
	if _, err := tx.Exec(ctx, `DELETE FROM usage_rollups WHERE grain = $1 AND bucket = ANY($2)`, grain, buckets); err != nil {
		return 0, fmt.Errorf("clear the %s buckets: %w", grain, err)
	}
	models, input, output := prices.columns()
	tag, err := tx.Exec(ctx, recomputeSQL(grain), grain, buckets, buckets[0], models, input, output)
	if err != nil {
		return 0, fmt.Errorf("recompute the %s buckets: %w", grain, err)
	}
	return tag.RowsAffected(), nil
}

// bind puts a positional parameter in place of a named one in q.
func bind(q, name, param string) string { return strings.ReplaceAll(q, name, param) }
