package analytics_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/careerops/jobs/internal/analytics"
	"github.com/careerops/jobs/internal/testkit"
)

type testBundle struct {
	pool  *pgxpool.Pool
	store *analytics.Store
	user  int64
}

func setup(t *testing.T) testBundle {
	t.Helper()
	pool, _ := testkit.NewPool(t)
	b := testBundle{pool: pool, store: analytics.NewStore(pool)}
	if err := pool.QueryRow(context.Background(), `INSERT INTO users (email) VALUES ($1) RETURNING id`,
		testkit.RandomHex(4)+"@example.com").Scan(&b.user); err != nil {
		t.Fatal(err)
	}
	return b
}

// letter adds a finished cover letter of user that took took and finished at done.
func (b testBundle) letter(t *testing.T, user int64, status, model string, prompt, completion, attempts int, done time.Time, took time.Duration) {
	t.Helper()
	_, err := b.pool.Exec(context.Background(), `
		INSERT INTO cover_letter_jobs (job_id, user_id, status, job_description, cv_text, model, prompt_tokens, completion_tokens,
		                               attempts, created_at, completed_at)
		VALUES ($1, $2, $3, 'd', 'c', NULLIF($4, ''), $5, $6, $7, $8::timestamptz - $9::interval, $8)`,
		"cl-"+testkit.RandomHex(6), user, status, model, prompt, completion, attempts, done, took)
	if err != nil {
		t.Fatal(err)
	}
}

func (b testBundle) rollup(t *testing.T, o analytics.RollupOptions) analytics.RollupResult {
	t.Helper()
	if o.Prices == nil {
		o.Prices = analytics.DefaultPrices()
	}
	res, err := b.store.Rollup(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// dump is the whole rollup table as text, computed_at aside.
func (b testBundle) dump(t *testing.T) string {
	t.Helper()
	var s string
	err := b.pool.QueryRow(context.Background(), `
		SELECT coalesce(string_agg(concat_ws(' ', grain, bucket, user_id, kind, model, outcome, jobs, prompt_tokens,
		       completion_tokens, cost_micros, retries, p50_ms, p95_ms), E'\n' ORDER BY grain, bucket, user_id, kind, model, outcome), '')
		FROM usage_rollups`).Scan(&s)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (b testBundle) usage(t *testing.T, q analytics.Query) []analytics.Row {
	t.Helper()
	rows, err := b.store.Usage(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// The rollups count, price and time each hour's and day's finished jobs at every level a
// query asks for; running again, or rebuilding from long ago, changes nothing.
func TestRollupIsExactAndIdempotent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	hour := time.Now().UTC().Truncate(time.Hour).Add(-3 * time.Hour)
	for i := range 20 { // 20 letters in one hour, 1 s to 20 s from request to letter
		b.letter(t, b.user, "completed", "gpt-4o-mini", 1000, 300, 1+i%2, hour.Add(time.Duration(i)*time.Minute), time.Duration(i+1)*time.Second)
	}
	b.letter(t, b.user, "completed", "gpt-4o", 2000, 500, 1, hour.Add(30*time.Minute), time.Minute)
	b.letter(t, b.user, "failed", "", 0, 0, 3, hour.Add(40*time.Minute), 2*time.Minute)
	b.letter(t, b.user, "pending", "", 0, 0, 0, hour, 0) // not finished: not counted
	if _, err := b.pool.Exec(ctx, `INSERT INTO jobs (job_id, user_id, kind, status, args, attempts, completed_at)
		VALUES ('e-1', $1, 'notifications.email', 'completed', '{}', 1, $2)`, b.user, hour.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}

	first := b.rollup(t, analytics.RollupOptions{})
	if first.Hours != 2 || first.Days < 1 {
		t.Fatalf("first run %+v, want 2 hours", first)
	}
	want := b.dump(t)
	q := analytics.Query{Grain: analytics.GrainHour, From: hour, To: hour.Add(2 * time.Hour)}
	rows := b.usage(t, q)
	if len(rows) != 3 {
		t.Fatalf("overall rows %+v, want completed and failed letters, and the email", rows)
	}
	letters := rows[0]
	prices := analytics.DefaultPrices()
	wantCost := prices.Cost("gpt-4o-mini", 20_000, 6000) + prices.Cost("gpt-4o", 2000, 500)
	if letters.Kind != "cover-letter.generate" || letters.Outcome != "completed" || letters.Jobs != 21 ||
		letters.PromptTokens != 22_000 || letters.CompletionTokens != 6500 || letters.CostMicros != wantCost || letters.Retries != 10 {
		t.Errorf("completed letters %+v, want 21 jobs, 22000+6500 tokens, cost %d, 10 retries", letters, wantCost)
	}
	// 1 s to 20 s and one of 60 s: the 11th of 21, and 95 % of the way from the 1st to the 21st.
	if letters.P50Ms != 11_000 || letters.P95Ms != 20_000 {
		t.Errorf("p50 %v ms, p95 %v ms", letters.P50Ms, letters.P95Ms)
	}
	if failed := rows[1]; failed.Outcome != "failed" || failed.Jobs != 1 || failed.DeadLetters() != 1 || failed.Retries != 2 || failed.P50Ms != 120_000 {
		t.Errorf("failed letters %+v", failed)
	}
	byModel := b.usage(t, analytics.Query{Grain: analytics.GrainDay, From: hour.Truncate(24 * time.Hour), To: hour.Add(48 * time.Hour), ByUser: true, ByModel: true})
	models := map[string]int64{}
	for _, r := range byModel {
		if r.UserID != b.user {
			t.Errorf("row of user %d, want %d", r.UserID, b.user)
		}
		models[r.Model+"/"+r.Outcome] += r.Jobs
	}
	if models["gpt-4o-mini/completed"] != 20 || models["gpt-4o/completed"] != 1 || models["/failed"] != 1 || models["/completed"] != 1 {
		t.Errorf("jobs by model and outcome %v", models)
	}

	again := b.rollup(t, analytics.RollupOptions{})
	if got := b.dump(t); got != want {
		t.Fatalf("a second run changed the rollups:\n%s\nwant\n%s", got, want)
	}
	if !again.Since.Before(first.SeenUntil) || again.Since.Before(first.SeenUntil.Add(-analytics.DefaultMargin-time.Second)) {
		t.Errorf("second run looked from %v, want the first's start %v less the margin", again.Since, first.SeenUntil)
	}
	long := time.Now().Add(-30 * 24 * time.Hour)
	if res := b.rollup(t, analytics.RollupOptions{Rebuild: &long}); res.Hours != 2 {
		t.Errorf("rebuild %+v, want 2 hours", res)
	}
	if got := b.dump(t); got != want {
		t.Fatalf("a rebuild changed the rollups:\n%s\nwant\n%s", got, want)
	}
}

// A job whose transaction committed after a run read the tables, with a completion time
// before that run's start, lands in the next run: its whole bucket is recomputed, nothing is
// counted twice. Only new buckets are recomputed.
func TestRollupTakesLateCompletions(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	old := time.Now().UTC().Add(-5 * 24 * time.Hour)
	b.letter(t, b.user, "completed", "gpt-4o-mini", 100, 10, 1, old, time.Second)
	first := b.rollup(t, analytics.RollupOptions{})
	if first.Hours != 1 {
		t.Fatalf("first run %+v", first)
	}
	// A letter completed a moment before the run started, committed after it.
	late := first.SeenUntil.Add(-2 * time.Minute)
	b.letter(t, b.user, "completed", "gpt-4o-mini", 100, 10, 1, late, time.Second)
	b.letter(t, b.user, "completed", "gpt-4o-mini", 100, 10, 1, late.Add(time.Second), time.Second)
	second := b.rollup(t, analytics.RollupOptions{})
	if second.Hours != 1 {
		t.Fatalf("second run %+v, want the late letters' hour only", second)
	}
	total := func() (n int64) {
		t.Helper()
		for _, r := range b.usage(t, analytics.Query{Grain: analytics.GrainDay, From: old.Truncate(24 * time.Hour), To: time.Now().Add(24 * time.Hour)}) {
			n += r.Jobs
		}
		return n
	}
	if n := total(); n != 3 {
		t.Fatalf("%d jobs in the day rollups, want 3", n)
	}
	third := b.rollup(t, analytics.RollupOptions{})
	if n := total(); n != 3 || third.Hours != 1 {
		t.Fatalf("after a third run (%+v): %d jobs, want 3 (the margin sees the late hour again, recomputed whole)", third, n)
	}
	seen, err := b.store.SeenUntil(ctx)
	if err != nil || !seen.Equal(third.SeenUntil) {
		t.Fatalf("watermark %v, %v; want %v", seen, err, third.SeenUntil)
	}
}

// Two runs at once: the second waits for the first's watermark and finds nothing more.
func TestRollupRunsOneAtATime(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.letter(t, b.user, "completed", "gpt-4o-mini", 100, 10, 1, time.Now().Add(-time.Hour), time.Second)
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			_, err := b.store.Rollup(context.Background(), analytics.RollupOptions{Prices: analytics.DefaultPrices()})
			errs <- err
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	var n int64
	if err := b.pool.QueryRow(context.Background(), `SELECT sum(jobs) FROM usage_rollups WHERE user_id = 0 AND model = '*'`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("%d jobs over both grains (%v), want 2", n, err)
	}
}
