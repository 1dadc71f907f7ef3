package analytics_test

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/careerops/jobs/internal/analytics"
)

// TestRollupOnAMillionJobs measures the rollups on ANALYTICS_BENCH_JOBS finished cover letters
// (set it to 1000000; skipped otherwise) of 1000 users over 30 days, and a tenth as many jobs
// of another kind: the first run (a backfill of every bucket), a run that finds nothing new,
// and a scheduled-like run after 1000 letters finished in the last 5 minutes (it recomputes
// the current hour and day whole), as docs/benchmarks.md reports.
func TestRollupOnAMillionJobs(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("ANALYTICS_BENCH_JOBS"))
	if n == 0 {
		t.Skip("set ANALYTICS_BENCH_JOBS=1000000 to measure")
	}
	b := setup(t)
	ctx := context.Background()
	began := time.Now()
	if _, err := b.pool.Exec(ctx, `INSERT INTO users (email) SELECT 'bench-' || g || '@example.com' FROM generate_series(1, 1000) g`); err != nil {
		t.Fatal(err)
	}
	seed := func(from, count int, span string) {
		t.Helper()
		if _, err := b.pool.Exec(ctx, `
			INSERT INTO cover_letter_jobs (job_id, user_id, status, job_description, cv_text, model, prompt_tokens, completion_tokens,
			                               attempts, created_at, completed_at)
			SELECT 'bench-' || g, u.id, CASE WHEN g % 50 = 0 THEN 'failed' WHEN g % 97 = 0 THEN 'cancelled' ELSE 'completed' END,
			       'd', 'c', CASE WHEN g % 3 = 0 THEN 'gpt-4o' ELSE 'gpt-4o-mini' END, 800 + g % 700, 200 + g % 300, 1 + (g % 9 = 0)::int,
			       t - make_interval(secs => 2 + g % 30), t
			FROM generate_series($1::int, $1::int + $2::int - 1) g
			CROSS JOIN LATERAL (SELECT now() - ((g::bigint * 7919) % 100003) / 100003.0 * $3::interval AS t) x
			JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS i FROM users WHERE email LIKE 'bench-%') u ON u.i = g % 1000`,
			from, count, span); err != nil {
			t.Fatal(err)
		}
	}
	seed(1, n, "30 days")
	if _, err := b.pool.Exec(ctx, `
		INSERT INTO jobs (job_id, user_id, kind, status, args, attempts, created_at, completed_at)
		SELECT 'bench-k-' || g, $1, 'notifications.email', 'completed', '{}', 1, t - interval '1 second', t
		FROM generate_series(1, $2::int) g, LATERAL (SELECT now() - ((g::bigint * 7919) % 100003) / 100003.0 * interval '30 days' AS t) x`, b.user, n/10); err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"cover_letter_jobs", "jobs"} {
		if _, err := b.pool.Exec(ctx, `VACUUM ANALYZE `+table); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("seeded %d letters and %d other jobs in %s", n, n/10, time.Since(began).Round(time.Millisecond))

	timed := func(what string) analytics.RollupResult {
		t.Helper()
		began := time.Now()
		res := b.rollup(t, analytics.RollupOptions{})
		t.Logf("%s: %s (%d hours, %d days, %d rows)", what, time.Since(began).Round(time.Millisecond), res.Hours, res.Days, res.Rows)
		return res
	}
	timed("first run (backfill)")
	timed("second run, nothing new but the margin's last 10 minutes")
	seed(n+1, 1000, "5 minutes")
	timed("a scheduled run after 1000 new letters")
	var rows int64
	if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM usage_rollups`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	var total int64
	if err := b.pool.QueryRow(ctx, `SELECT sum(jobs) FROM usage_rollups WHERE grain = 'day' AND user_id = 0 AND model = '*'`).Scan(&total); err != nil {
		t.Fatal(err)
	}
	t.Logf("usage_rollups holds %d rows", rows)
	if want := int64(n + 1000 + n/10); total != want {
		t.Fatalf("%d jobs rolled up, want %d", total, want)
	}
	q := analytics.Query{Grain: analytics.GrainDay, From: time.Now().Add(-30 * 24 * time.Hour).Truncate(24 * time.Hour), To: time.Now().Add(24 * time.Hour)}
	for _, by := range []struct{ user, model bool }{{false, false}, {true, true}} {
		q.ByUser, q.ByModel = by.user, by.model
		began := time.Now()
		got := b.usage(t, q)
		t.Logf("GET /api/ops/usage over 30 days, by user %v and model %v: %d rows in %s", by.user, by.model, len(got), time.Since(began).Round(time.Millisecond))
	}
}
