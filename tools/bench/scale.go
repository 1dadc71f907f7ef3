package bench

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/careerops/jobs/internal/analytics"
	"github.com/careerops/jobs/internal/apiclient"
	"github.com/careerops/jobs/internal/auth"
	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/jobstore"
	"github.com/careerops/jobs/internal/ops"
	"github.com/careerops/jobs/internal/testkit"
	"github.com/careerops/jobs/tools/loadgen"
)

// Scale is what the scale phase measured: reads against a large table, and a burst drained.
type Scale struct {
	Jobs     int           `json:"jobs"`
	Users    int           `json:"users"`
	SeedTook time.Duration `json:"seedTook"`
	Reads    []ScaleRead   `json:"reads"`
	Burst    ScaleBurst    `json:"burst"`
}

// ScaleRead is one kind of read, measured one at a time through the api (or the store), with
// the plan PostgreSQL chose for its query.
type ScaleRead struct {
	Name    string `json:"name"`
	Via     string `json:"via"`
	Latency Dist   `json:"latency"`
	Plan    string `json:"plan"` // the plan's first lines, from auto_explain
	// Slowest are the Server-Timing headers of the slowest 1 % of answers, if it has them.
	Slowest []string `json:"slowest,omitempty"`
}

// scaleSize is the scale phase's size; Quick shrinks it to try the harness.
type scaleSize struct{ jobs, users, reads, burst int }

func (c Config) scaleSize() scaleSize {
	if c.Quick {
		return scaleSize{jobs: 50_000, users: 500, reads: 50, burst: 2_000}
	}
	return scaleSize{jobs: 1_000_000, users: 10_000, reads: 400, burst: 100_000}
}

// phaseScale is BENCH_PHASES=scale (not in the default run): a million jobs across ten
// thousand users, then the reads a user and an operator make, then a burst of jobs enqueued
// and drained by four workers.
func (r *run) phaseScale(ctx context.Context) error {
	size := r.cfg.scaleSize()
	sc := &Scale{Jobs: size.jobs, Users: size.users}
	r.res.Scale = sc
	if err := r.w.reset(ctx); err != nil {
		return err
	}
	t0 := time.Now()
	firstUser, err := seedScale(ctx, r.w.pool, size, r.say)
	if err != nil {
		return r.fail("scale seed", err)
	}
	sc.SeedTook = time.Since(t0)
	r.say("scale: %d jobs of %d users seeded in %s", size.jobs, size.users, sc.SeedTook.Round(time.Second))
	reads, err := r.scaleReads(ctx, firstUser, size)
	if err != nil {
		return r.fail("scale reads", err)
	}
	sc.Reads = reads
	for _, rd := range reads {
		fmt.Fprintln(r.cfg.Stdout, rd.line())
	}
	if err := r.scaleBurst(ctx, size.burst, &sc.Burst); err != nil {
		return r.fail("scale burst", err)
	}
	fmt.Fprintln(r.cfg.Stdout, sc.Burst.line())
	return nil
}

// seedScale adds size.users users and size.jobs finished jobs spread over 30 days (1 in 50
// failed, 1 in 97 cancelled, the rest completed with a letter), and returns the first user's
// id (the users' ids follow each other).
func seedScale(ctx context.Context, pool *pgxpool.Pool, size scaleSize, say func(string, ...any)) (int64, error) {
	var first int64
	if err := pool.QueryRow(ctx, `
		WITH added AS (INSERT INTO users (email) SELECT 'scale-' || g || '@bench.example' FROM generate_series(1, $1) g RETURNING id)
		SELECT min(id) FROM added`, size.users).Scan(&first); err != nil {
		return 0, err
	}
	const chunk = 100_000
	spacing := 30 * 24 * time.Hour / time.Duration(size.jobs)
	for lo := 1; lo <= size.jobs; lo += chunk {
		hi := min(lo+chunk-1, size.jobs)
		if _, err := pool.Exec(ctx, `
			INSERT INTO cover_letter_jobs (job_id, user_id, status, job_description, cv_text, tone, cover_letter,
			    error_message, attempts, prompt_tokens, completion_tokens, model, created_at, updated_at, started_at, completed_at)
			SELECT 'scale-' || g, $3 + g % $4,
			       CASE WHEN g % 50 = 0 THEN 'failed' WHEN g % 97 = 0 THEN 'cancelled' ELSE 'completed' END,
			       'Senior Go Engineer #' || g || ' at Acme Corp. We need Kubernetes and PostgreSQL.',
			       'Jane Doe. Eight years building Go services with PostgreSQL.', 'professional',
			       CASE WHEN g % 50 <> 0 AND g % 97 <> 0 THEN repeat('Dear Acme, I would like to join your team. ', 12) END,
			       CASE WHEN g % 50 = 0 THEN 'llm: HTTP 500: upstream failed' END,
			       1, 310, 420, 'fake-gpt', at, at + interval '2 seconds', at + interval '10 milliseconds', at + interval '2 seconds'
			FROM generate_series($1::int, $2::int) g, LATERAL (SELECT now() - g * make_interval(secs => $5)) AS t(at)`,
			lo, hi, first, size.users, spacing.Seconds()); err != nil {
			return 0, err
		}
		say("scale: seeded %d of %d jobs", hi, size.jobs)
	}
	if _, err := pool.Exec(ctx, `VACUUM ANALYZE users, cover_letter_jobs`); err != nil {
		return 0, err
	}
	// A month of history would have been rolled up as it happened (analytics.process, every
	// 5 minutes): do it once now, untimed, or the first scheduled run backfills the month in
	// the middle of the burst's drain.
	_, err := analytics.NewStore(pool).Rollup(ctx, analytics.RollupOptions{Prices: analytics.DefaultPrices()})
	return first, err
}

func (rd ScaleRead) line() string {
	return fmt.Sprintf("scale read %s (%s): n=%d p50=%sms p99=%sms max=%sms plan=%s", rd.Name, rd.Via, rd.Latency.N,
		ms(rd.Latency.P50), ms(rd.Latency.P99), ms(rd.Latency.Max), planSummary(rd.Plan))
}

// planSummary is the top node of the costliest statement's plan in an auto_explain log,
// with that statement's time: "Index Scan using … on cover_letter_jobs, 0.087 ms".
func planSummary(log string) string {
	best, bestMS := "?", -1.0
	for _, chunk := range strings.Split(log, "duration: ")[1:] {
		var took float64
		if _, err := fmt.Sscanf(chunk, "%g ms", &took); err != nil || took <= bestMS {
			continue
		}
		for _, l := range strings.Split(chunk, "\n") {
			if node, _, ok := strings.Cut(strings.TrimSpace(l), "  (cost="); ok {
				best, bestMS = fmt.Sprintf("%s, %.3f ms", node, took), took
				break
			}
		}
	}
	return best
}

// scaleReads times, one request at a time, a job's status, a user's first page, a deep page,
// the quota check of a counted create, and the ops overview; then records each query's plan.
func (r *run) scaleReads(ctx context.Context, firstUser int64, size scaleSize) ([]ScaleRead, error) {
	client := apiclient.New(r.sys.apiURL, loadgen.NewHTTPClient(4))
	secret := []byte(jwtSecret)
	admin, err := auth.Issue(secret, firstUser, time.Hour, time.Now(), auth.AsAdmin())
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(1, 2))
	user := func() (int64, string) {
		id := firstUser + int64(rng.IntN(size.users))
		token, _ := auth.Issue(secret, id, time.Hour, time.Now())
		return id, token
	}
	store := jobstore.New(r.w.pool)
	var deepToken, deepCursor string // the deep page's user and cursor, reached untimed
	reads := []scaleRead{
		{name: "status", via: "GET /api/cover-letter/status/:id", op: func() (string, error) {
			g := 1 + rng.IntN(size.jobs)
			token, _ := auth.Issue(secret, firstUser+int64(g%size.users), time.Hour, time.Now())
			_, err := client.Status(ctx, token, fmt.Sprintf("scale-%d", g))
			return "", err
		}},
		{name: "list first page", via: "GET /api/cover-letter/jobs?limit=20", op: func() (string, error) {
			_, token := user()
			_, err := client.List(ctx, token, apiclient.ListQuery{Limit: 20})
			return "", err
		}},
		{name: "list deep page", via: "GET /api/cover-letter/jobs?limit=20&cursor= (page 5)", before: func() error {
			_, deepToken = user()
			q := apiclient.ListQuery{Limit: 20}
			for range 4 {
				p, err := client.List(ctx, deepToken, q)
				if err != nil || p.NextCursor == "" {
					return fmt.Errorf("a user with fewer than 5 pages: %w", err)
				}
				q.Cursor = p.NextCursor
			}
			deepCursor = q.Cursor
			return nil
		}, op: func() (string, error) {
			_, err := client.List(ctx, deepToken, apiclient.ListQuery{Limit: 20, Cursor: deepCursor})
			return "", err
		}},
		{name: "quota check", via: "jobstore.Create with USER_JOBS_PER_MINUTE and USER_TOKENS_PER_DAY", op: func() (string, error) {
			id, _ := user()
			_, _, err := store.Create(ctx, jobstore.NewJob{ID: "quota-" + randomID(rng), UserID: id, JobDescription: "x", CVText: "y",
				Tone: job.ToneConcise, Limits: jobstore.Limits{JobsPerMinute: 1_000_000, TokensPerDay: 1_000_000_000}})
			return "", err
		}},
		{name: "ops overview", via: "GET /api/ops/overview", op: func() (string, error) {
			r, err := client.Do(ctx, http.MethodGet, "/api/ops/overview", admin, nil)
			if err != nil {
				return "", err
			}
			if r.Status != http.StatusOK {
				return "", fmt.Errorf("ops overview answered %d: %s", r.Status, r.Body)
			}
			return r.Header.Get("Server-Timing"), nil
		}},
	}
	out := make([]ScaleRead, 0, len(reads))
	for _, rd := range reads {
		read, err := rd.time(size.reads)
		if err != nil {
			return nil, err
		}
		out = append(out, read)
	}
	if err := r.scalePlans(ctx, firstUser, out); err != nil {
		return nil, err
	}
	return out, nil
}

// scaleRead is one read of the scale phase: before (if any) runs untimed before each op; op
// returns the answer's Server-Timing, if it has one.
type scaleRead struct {
	name, via string
	before    func() error
	op        func() (timing string, err error)
}

// time runs the read n times, one at a time.
func (rd scaleRead) time(n int) (ScaleRead, error) {
	lat, timings := make([]time.Duration, 0, n), make([]string, 0, n)
	for range n {
		if rd.before != nil {
			if err := rd.before(); err != nil {
				return ScaleRead{}, fmt.Errorf("%s: %w", rd.name, err)
			}
		}
		t := time.Now()
		timing, err := rd.op()
		if err != nil {
			return ScaleRead{}, fmt.Errorf("%s: %w", rd.name, err)
		}
		lat, timings = append(lat, time.Since(t)), append(timings, timing)
	}
	return ScaleRead{Name: rd.name, Via: rd.via, Latency: Summarise(lat), Slowest: slowest(lat, timings)}, nil
}

// slowest are the Server-Timing headers of the slowest 1 % of answers (at least one), the
// slowest first, each after its latency: where their time went.
func slowest(lat []time.Duration, timings []string) []string {
	order := make([]int, len(lat))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return cmp.Compare(lat[b], lat[a]) })
	var out []string
	for _, i := range order[:min(len(order), max(1, len(order)/100))] {
		if timings[i] != "" {
			out = append(out, fmt.Sprintf("%s ms: %s", ms(lat[i]), timings[i]))
		}
	}
	return out
}

func randomID(rng *rand.Rand) string { return fmt.Sprintf("%016x", rng.Uint64()) }

// scalePlans runs each read's store query once on a connection with auto_explain, and keeps
// the plan PostgreSQL chose (all of them in scale-plans.txt).
func (r *run) scalePlans(ctx context.Context, firstUser int64, reads []ScaleRead) error {
	cfg, err := pgxpool.ParseConfig(r.w.dbURL)
	if err != nil {
		return err
	}
	cfg.MaxConns = 1
	plans := &testkit.Plans{}
	plans.Explain(cfg)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	store := jobstore.New(pool)
	take := func() string { return strings.Join(plans.Take(), "\n") }
	user := firstUser + 7
	steps := map[string]func() error{
		"status": func() error { _, err := store.Get(ctx, user, "scale-7"); return err },
		"list first page": func() error {
			_, _, err := store.List(ctx, jobstore.ListParams{UserID: user, Limit: 20})
			return err
		},
		"list deep page": func() error {
			var c *jobstore.Cursor
			for range 4 { // pages 1 to 4, their plans dropped
				var err error
				if _, c, err = store.List(ctx, jobstore.ListParams{UserID: user, Limit: 20, After: c}); err != nil || c == nil {
					return fmt.Errorf("user %d has fewer than 5 pages: %w", user, err)
				}
			}
			_ = take()
			_, _, err := store.List(ctx, jobstore.ListParams{UserID: user, Limit: 20, After: c})
			return err
		},
		"quota check": func() error {
			_, _, err := store.Create(ctx, jobstore.NewJob{ID: "plan-quota", UserID: user, JobDescription: "x", CVText: "y",
				Tone: job.ToneConcise, Limits: jobstore.Limits{JobsPerMinute: 1_000_000, TokensPerDay: 1_000_000_000}})
			return err
		},
		"ops overview": func() error { // its PostgreSQL part (the schedules aside)
			_, err := ops.NewSource(nil, store).Tables(ctx, 20)
			return err
		},
	}
	var all strings.Builder
	for i := range reads {
		_ = take() // the connection's own set-up
		if err := steps[reads[i].Name](); err != nil {
			return fmt.Errorf("plan of %s: %w", reads[i].Name, err)
		}
		plan := take()
		reads[i].Plan = plan
		fmt.Fprintf(&all, "## %s (%s)\n\n%s\n\n", reads[i].Name, reads[i].Via, plan)
	}
	return os.WriteFile(filepath.Join(r.cfg.OutDir, "scale-plans.txt"), []byte(all.String()), 0o644)
}

// ScaleBurst is a burst of jobs enqueued through the api with no worker running, then
// drained by four workers at 0 s LLM latency, sampled every half second.
type ScaleBurst struct {
	Jobs          int           `json:"jobs"`
	EnqueueTook   time.Duration `json:"enqueueTook"`
	EnqueuePerSec float64       `json:"enqueuePerSec"`
	PublishedTook time.Duration `json:"publishedTook"` // start → outbox empty
	DrainFrom     time.Duration `json:"drainFrom"`     // start → every worker ready
	DrainTook     time.Duration `json:"drainTook"`
	DrainPerSec   float64       `json:"drainPerSec"`
	// RateFirst and RateLast are the drain rate over its first and last quarter: flat if
	// equal.
	RateFirst float64          `json:"rateFirst"`
	RateLast  float64          `json:"rateLast"`
	MaxRSS    map[string]int64 `json:"maxRss"`
	Samples   []BurstSample    `json:"samples"`
}

// BurstSample is the state of the system at one instant of the burst.
type BurstSample struct {
	At     time.Duration    `json:"at"`
	Outbox int64            `json:"outbox"`
	Queue  int              `json:"queue"` // ready messages in cover-letter.generate, as RabbitMQ reports it
	Open   int64            `json:"open"`  // jobs pending or processing: what is left to drain
	RSS    map[string]int64 `json:"rss"`
}

func (b ScaleBurst) line() string {
	return fmt.Sprintf("scale burst: jobs=%d enqueue=%s (%s/s) published=%s drain=%s (%s/s) drain_rate_first_quarter=%s/s last_quarter=%s/s max_rss_mb=%v",
		b.Jobs, b.EnqueueTook.Round(time.Millisecond), rate(b.EnqueuePerSec), b.PublishedTook.Round(time.Millisecond),
		b.DrainTook.Round(time.Millisecond), rate(b.DrainPerSec), rate(b.RateFirst), rate(b.RateLast), mbMap(b.MaxRSS))
}

func mbMap(m map[string]int64) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, k+":"+mb(m[k]))
	}
	return strings.Join(parts, ",")
}

// scaleBurst enqueues n jobs through the api at concurrency 64 with no worker running, waits
// for the outbox to empty, then drains the queue with 4 workers × 16 at 0 s latency.
func (r *run) scaleBurst(ctx context.Context, n int, b *ScaleBurst) error {
	b.Jobs = n
	stop := make(chan struct{})
	sampled := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(sampled)
		r.sampleBurst(ctx, start, stop, b)
	}()
	defer func() {
		close(stop)
		<-sampled
		r.writeBurstPlots(b)
	}()
	p := newPoster(r.sys.apiURL, r.w.tokens, 64)
	var (
		wg    sync.WaitGroup
		left  = int64(n)
		mu    sync.Mutex
		first error
	)
	for range 64 {
		wg.Go(func() {
			for {
				mu.Lock()
				if left == 0 || first != nil {
					mu.Unlock()
					return
				}
				left--
				mu.Unlock()
				if _, _, err := p.post(ctx); err != nil {
					mu.Lock()
					first = cmpErr(first, err)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if first != nil {
		return first
	}
	b.EnqueueTook = time.Since(start)
	b.EnqueuePerSec = float64(n) / b.EnqueueTook.Seconds()
	if _, err := r.w.outboxDrain(ctx, time.Now()); err != nil {
		return err
	}
	b.PublishedTook = time.Since(start)
	if err := r.sys.startFake(ctx, 0); err != nil {
		return err
	}
	st := r.sys.stackOf("")
	st.idle = nil // they start on a full queue: their resident sets are not idle ones
	if err := r.sys.startWorkers(ctx, st, 4, 16, false); err != nil {
		return err
	}
	defer func() { _ = r.sys.stopWorkers() }()
	drainStart := time.Now() // all four ready (the first ones began a little before)
	b.DrainFrom = time.Since(start)
	for { // until every job has finished (RabbitMQ's count of a deep quorum queue lags)
		var open int
		if err := r.w.pool.QueryRow(ctx, `SELECT count(*) FROM cover_letter_jobs WHERE status IN ('pending', 'processing')`).Scan(&open); err != nil {
			return err
		}
		if open == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	b.DrainTook = time.Since(drainStart)
	b.DrainPerSec = float64(n) / b.DrainTook.Seconds()
	return nil
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// sampleBurst records the outbox, the queue and every process's resident set every 500 ms
// until stop, then works out the drain rate of its first and last quarters.
func (r *run) sampleBurst(ctx context.Context, start time.Time, stop <-chan struct{}, b *ScaleBurst) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	b.MaxRSS = map[string]int64{}
	for {
		s := BurstSample{At: time.Since(start), RSS: map[string]int64{}}
		_ = r.w.pool.QueryRow(ctx, `SELECT count(*) FROM outbox_messages`).Scan(&s.Outbox)
		s.Queue, _ = r.w.queueDepth(job.QueueGenerate)
		_ = r.w.pool.QueryRow(ctx, `SELECT count(*) FROM cover_letter_jobs WHERE status IN ('pending', 'processing')`).Scan(&s.Open)
		for name, pid := range r.burstPIDs() {
			if rss, err := rssBytes(pid); err == nil {
				s.RSS[name] = rss
				b.MaxRSS[name] = max(b.MaxRSS[name], rss)
			}
		}
		b.Samples = append(b.Samples, s)
		select {
		case <-stop:
			b.RateFirst, b.RateLast = drainQuarters(b.Samples, b.DrainFrom)
			return
		case <-t.C:
		}
	}
}

// burstPIDs are the processes whose resident sets the burst follows.
func (r *run) burstPIDs() map[string]int {
	pids := map[string]int{"rabbitmq": r.w.mqPID}
	if r.sys.api != nil {
		pids["api"] = r.sys.api.Pid()
	}
	if r.sys.fake != nil && !r.sys.fake.Exited() {
		pids["fakeopenai"] = r.sys.fake.Pid()
	}
	for i, wp := range r.sys.workers {
		pids[fmt.Sprintf("worker-%d", i+1)] = wp.Pid()
	}
	return pids
}

// drainQuarters is the rate at which jobs finished over the first and the last quarter of
// the drain (the samples after drainFrom with jobs still open).
func drainQuarters(samples []BurstSample, drainFrom time.Duration) (first, last float64) {
	var d []BurstSample
	for _, s := range samples {
		if s.At >= drainFrom && (len(d) == 0 || d[len(d)-1].Open > 0) {
			d = append(d, s)
		}
	}
	if len(d) < 5 {
		return 0, 0
	}
	q := len(d) / 4
	rateOf := func(a, b BurstSample) float64 { return float64(a.Open-b.Open) / (b.At - a.At).Seconds() }
	return rateOf(d[0], d[q]), rateOf(d[len(d)-1-q], d[len(d)-1])
}
