package kinds

import (
	"context"
	"encoding/json"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/careerops/jobs/internal/jobstore"
	"github.com/careerops/jobs/internal/testkit"
)

// fillJobs adds n cover letters and n jobs of another kind for a new user, in SQL: of every
// ten, one pending, one finished a day ago, and eight finished (completed, failed, cancelled)
// from 100 days ago on.
func fillJobs(t testing.TB, pool *pgxpool.Pool, n int) {
	t.Helper()
	ctx := context.Background()
	var user int64
	if err := pool.QueryRow(ctx, `INSERT INTO users (email) VALUES ($1) RETURNING id`, testkit.RandomHex(4)+"@example.com").Scan(&user); err != nil {
		t.Fatal(err)
	}
	const (
		status   = `CASE WHEN g % 10 = 0 THEN 'pending' WHEN g % 10 = 2 THEN 'failed' WHEN g % 10 = 3 THEN 'cancelled' ELSE 'completed' END`
		finished = `CASE WHEN g % 10 = 0 THEN NULL WHEN g % 10 = 1 THEN now() - interval '1 day' ELSE now() - interval '100 days' + g * interval '1 second' END`
	)
	if _, err := pool.Exec(ctx, `
		INSERT INTO cover_letter_jobs (job_id, user_id, status, job_description, cv_text, cover_letter, completed_at)
		SELECT 'cl-' || g, $1, `+status+`, repeat('d', 80), repeat('c', 160), repeat('l', 320), `+finished+`
		FROM generate_series(1, $2) g`, user, n); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `
		INSERT INTO jobs (job_id, user_id, kind, status, args, completed_at)
		SELECT 'k-' || g, $1, 'test.other', `+status+`, '{}', `+finished+`
		FROM generate_series(1, $2) g`, user, n); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `ANALYZE cover_letter_jobs; ANALYZE jobs`); err != nil {
		t.Fatal(err)
	}
}

func countRows(t testing.TB, pool *pgxpool.Pool, q string) int64 {
	t.Helper()
	var n int64
	if err := pool.QueryRow(context.Background(), q).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Retention deletes, in batches, the finished jobs of both tables older than its days, and
// nothing else: pending jobs, recent ones, users and other tables (a rollup, say) stay; 0
// keeps everything. A run over its budget stops with rows left for the next.
func TestRetentionDeletesOldFinishedJobsInBatches(t *testing.T) {
	t.Parallel()
	pool, _ := testkit.NewPool(t)
	store := jobstore.New(pool)
	fillJobs(t, pool, 2500) // 2000 old finished rows in each table
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `INSERT INTO usage_rollups (grain, bucket, user_id, kind, model, outcome, jobs, prompt_tokens, completion_tokens, cost_micros, retries, p50_ms, p95_ms)
			VALUES ('day', '2026-01-01', 0, 'cover-letter.generate', '*', 'completed', 7, 0, 0, 0, 0, 1, 1);
		INSERT INTO schedule_runs (task, slot, outcome) VALUES ('a.b', now() - interval '90 days', 'skipped'),
			('a.b', now() - interval '60 days', 'skipped'), ('a.b', now() - interval '1 day', 'skipped'), ('c.d', now() - interval '99 days', 'skipped')`); err != nil {
		t.Fatal(err)
	}
	run := func(d RetentionDeps) RetentionResult {
		t.Helper()
		out, err := Retention(d).Handle(ctx, jobstore.Run{Args: json.RawMessage(`{}`)})
		if err != nil {
			t.Fatal(err)
		}
		var res RetentionResult
		if err := json.Unmarshal(out, &res); err != nil {
			t.Fatal(err)
		}
		return res
	}
	if res := run(RetentionDeps{Store: store, Days: 0}); len(res.Deleted) != 0 || res.Batches != 0 {
		t.Fatalf("RETENTION_DAYS=0 deleted %+v", res)
	}
	if n := countRows(t, pool, `SELECT count(*) FROM cover_letter_jobs`) + countRows(t, pool, `SELECT count(*) FROM jobs`); n != 5000 {
		t.Fatalf("%d rows after RETENTION_DAYS=0, want 5000", n)
	}
	if res := run(RetentionDeps{Store: store, Days: 30, Batch: 1000, Budget: time.Nanosecond}); !res.More || res.Batches > 1 {
		t.Fatalf("a run past its budget: %+v, want it stopped with more left", res)
	}
	res := run(RetentionDeps{Store: store, Days: 30, Batch: 700})
	// 2000 old rows a table (the stopped run deleted none): batches of 700, the last short.
	if got := res.Deleted["cover_letter_jobs"] + res.Deleted["jobs"]; got != 4000 || res.Batches != 6 || res.Deleted["schedule_runs"] != 2 {
		t.Fatalf("deleted %+v in %d batches, want 4000 rows in 6", res.Deleted, res.Batches)
	}
	for q, want := range map[string]int64{
		`SELECT count(*) FROM cover_letter_jobs WHERE status = 'pending'`:                       250,
		`SELECT count(*) FROM cover_letter_jobs WHERE completed_at > now() - interval '2 days'`: 250,
		`SELECT count(*) FROM jobs`: 500,
		`SELECT count(*) FROM cover_letter_jobs WHERE completed_at < now() - interval '30 days'`: 0,
		`SELECT sum(jobs) FROM usage_rollups`:                                                    7,
		`SELECT count(*) FROM users WHERE email <> 'system@careerops.invalid'`:                   1,
	} {
		if got := countRows(t, pool, q); got != want {
			t.Errorf("%s = %d, want %d", q, got, want)
		}
	}
}

// TestRetentionOnAMillionRows measures retention on RETENTION_BENCH_ROWS rows a table (set it
// to 1000000; skipped otherwise): the time of each batch of 1000, the lock waits seen in
// pg_locks meanwhile, and the latency of concurrent writers (claim-like updates of pending
// jobs and inserts of new ones), as docs/benchmarks.md reports.
func TestRetentionOnAMillionRows(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("RETENTION_BENCH_ROWS"))
	if n == 0 {
		t.Skip("set RETENTION_BENCH_ROWS=1000000 to measure")
	}
	pool, _ := testkit.NewPool(t)
	store := jobstore.New(pool)
	start := time.Now()
	fillJobs(t, pool, n)
	t.Logf("filled %d rows a table in %s", n, time.Since(start).Round(time.Millisecond))

	ctx, stop := context.WithCancel(context.Background())
	var (
		wg          sync.WaitGroup
		waitSamples atomic.Int64 // samples of pg_locks with a lock not granted
		maxWaiting  atomic.Int64
		samples     atomic.Int64
		mu          sync.Mutex
		writes      []time.Duration
	)
	wg.Add(2)
	go func() { // lock waits, sampled every 5 ms
		defer wg.Done()
		for ctx.Err() == nil {
			var waiting int64
			if err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
				WHERE NOT l.granted AND a.datname = current_database()`).Scan(&waiting); err == nil {
				samples.Add(1)
				if waiting > 0 {
					waitSamples.Add(1)
				}
				if waiting > maxWaiting.Load() {
					maxWaiting.Store(waiting)
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	go func() { // concurrent writers: the live table goes on working
		defer wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			began := time.Now()
			_, err := pool.Exec(ctx, `UPDATE cover_letter_jobs SET updated_at = now() WHERE job_id = $1`, "cl-"+strconv.Itoa((i%(n/10))*10+10))
			if err == nil {
				_, err = pool.Exec(ctx, `INSERT INTO cover_letter_jobs (job_id, user_id, job_description, cv_text)
					SELECT 'new-' || $1::text, user_id, 'd', 'c' FROM cover_letter_jobs WHERE job_id = 'cl-10'`, strconv.Itoa(i))
			}
			if err == nil {
				mu.Lock()
				writes = append(writes, time.Since(began))
				mu.Unlock()
			}
		}
	}()

	// The writers alone first: their latency without retention, on this machine now.
	time.Sleep(20 * time.Second)
	mu.Lock()
	baseline := slices.Clone(writes)
	writes = writes[:0]
	mu.Unlock()
	slices.Sort(baseline)
	var batches []time.Duration
	var deleted int64
	began := time.Now()
	for _, table := range jobstore.RetentionTables() {
		for {
			b := time.Now()
			got, err := store.DeleteFinished(context.Background(), table, 30, DefaultRetentionBatch)
			if err != nil {
				t.Fatal(err)
			}
			batches = append(batches, time.Since(b))
			deleted += got
			if got < DefaultRetentionBatch {
				break
			}
		}
	}
	total := time.Since(began)
	stop()
	wg.Wait()
	slices.Sort(batches)
	slices.Sort(writes)
	pct := func(d []time.Duration, p float64) time.Duration { return d[min(len(d)-1, int(float64(len(d))*p))] }
	t.Logf("deleted %d rows in %d batches of %d, total %s (%.0f rows/s)", deleted, len(batches), DefaultRetentionBatch,
		total.Round(time.Millisecond), float64(deleted)/total.Seconds())
	t.Logf("batch time p50 %s p95 %s p99 %s max %s", pct(batches, 0.5), pct(batches, 0.95), pct(batches, 0.99), batches[len(batches)-1])
	t.Logf("pg_locks: %d of %d samples had a lock waiting, at most %d at once", waitSamples.Load(), samples.Load(), maxWaiting.Load())
	t.Logf("writes (update + insert) alone for 20 s, %d: p50 %s p99 %s max %s", len(baseline), pct(baseline, 0.5), pct(baseline, 0.99), baseline[len(baseline)-1])
	t.Logf("writes during retention, %d: p50 %s p99 %s max %s", len(writes), pct(writes, 0.5), pct(writes, 0.99), writes[len(writes)-1])
	if want := int64(n) / 10 * 8 * 2; deleted != want {
		t.Fatalf("deleted %d, want %d", deleted, want)
	}
}
