package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/careerops/jobs/internal/testkit"
)

// E2ESpec is one end-to-end run.
type E2ESpec struct {
	Name    string        `json:"name"`
	Latency time.Duration `json:"latency"`
	Workers int           `json:"workers"`
	Conc    int           `json:"concurrency"`
	Warm    time.Duration `json:"warm"`
	Window  time.Duration `json:"window"`
	// Rate > 0 offers that many jobs per second (open loop); 0 keeps a backlog in front of
	// the workers (saturation).
	Rate    float64 `json:"rate"`
	Profile bool    `json:"-"`
	// Peer names the system under test if not ours: "river".
	Peer string `json:"peer,omitempty"`
}

// capacity is what the workers could do at most if nothing but the LLM took time.
func (s E2ESpec) capacity() float64 {
	if s.Latency <= 0 {
		return 0
	}
	return float64(s.Workers*s.Conc) / s.Latency.Seconds()
}

// backlog is how many jobs a saturating run keeps submitted but not finished: every worker
// slot busy plus some waiting in the queue, enough to cover the feeder's reaction time (a
// 20 ms poll and a POST): at 0 s latency as many again as there are slots (at least 48), at
// longer latencies a quarter of the slots (at least 8).
func (s E2ESpec) backlog() int {
	slots := s.Workers * s.Conc
	if s.Latency <= 0 {
		return slots + max(slots, 48)
	}
	return slots + max(slots/4, 8)
}

// E2EResult is what one end-to-end run measured.
type E2EResult struct {
	Spec E2ESpec `json:"spec"`
	// Completed counts jobs completed within the window; JobsPerSec is that over the window.
	Completed  int     `json:"completed"`
	JobsPerSec float64 `json:"jobsPerSec"`
	Efficiency float64 `json:"efficiency"` // JobsPerSec ÷ capacity (latency > 0 only)
	// For the jobs created within the window: created → claimed (queue wait, includes the
	// outbox relay and RabbitMQ), created → completed (the user's wait), claimed → completed.
	QueueWait       Dist `json:"queueWait"`
	PostToDone      Dist `json:"postToCompleted"`
	ClaimToComplete Dist `json:"claimToComplete"`
	Submitted       int  `json:"submitted"` // jobs accepted over the whole run
	SubmitErrors    int  `json:"submitErrors"`
	FirstError      string
	Failed          int `json:"failed"`
	// FeederShort is the share of the window during which fewer jobs were outstanding than
	// worker slots: the workers may have waited for the api, not the other way round.
	FeederShort float64 `json:"feederShort"`
	// LLMMean is the mean LLM call (careerops_worker_llm_request_duration_seconds) in the window.
	LLMMean  time.Duration `json:"llmMean"`
	LLMCalls int           `json:"llmCalls"`
	CPU      CPUUse        `json:"cpu"`
	Drain    time.Duration `json:"drain"` // from the end of the window until every job was final
	Waits    Waits         `json:"pgWaits"`
	// Xacts is how many PostgreSQL transactions the system ran per job completed in the
	// window (every statement outside a transaction is one): a figure that the machine's load
	// does not move.
	Xacts float64 `json:"pgXactsPerJob"`
}

func (r E2EResult) line() string {
	kind := "e2e"
	if r.Spec.Rate > 0 {
		kind = "free"
	}
	if r.Spec.Peer != "" {
		kind = r.Spec.Peer + " e2e"
	}
	s := fmt.Sprintf("%-4s %-22s jobs/s=%s", kind, r.Spec.Name, rate(r.JobsPerSec))
	if r.Spec.Latency > 0 && r.Spec.Rate == 0 {
		s += fmt.Sprintf(" efficiency=%.2f (capacity %s/s)", r.Efficiency, rate(r.Spec.capacity()))
	}
	if r.Spec.Rate > 0 {
		s += fmt.Sprintf(" offered=%s/s", rate(r.Spec.Rate))
	}
	s += fmt.Sprintf(" queue_wait p50=%sms p99=%sms post→completed p50=%sms p99=%sms llm_mean=%sms claim→complete_mean=%sms completed=%d submitted=%d failed=%d submit_errors=%d feeder_short=%.0f%% cpu_busy=%.0f%% window=%s %s",
		ms(r.QueueWait.P50), ms(r.QueueWait.P99), ms(r.PostToDone.P50), ms(r.PostToDone.P99), ms(r.LLMMean),
		ms(r.ClaimToComplete.Mean), r.Completed, r.Submitted, r.Failed, r.SubmitErrors, 100*r.FeederShort,
		r.CPU.BusyPct(), r.Spec.Window, r.CPU.perOp(r.Completed))
	s += fmt.Sprintf(" pg_xacts/job=%.2f %s", r.Xacts, r.Waits.String())
	if r.FirstError != "" {
		s += " first_error=" + r.FirstError
	}
	return s
}

// e2eRun is one end-to-end run under way: its counters are shared by the feeders and the
// poller.
type e2eRun struct {
	s      *system
	st     stack // the system under test
	spec   E2ESpec
	res    *E2EResult
	poster *poster
	start  time.Time
	t0, t1 time.Time // the window

	accepted, done, failed  atomic.Int64
	issued                  atomic.Int64 // accepted + in flight
	submitErrs              atomic.Int64
	shortTicks, windowTicks atomic.Int64
	errOnce                 sync.Once
	xacts                   int64 // PostgreSQL transactions in the window (-1: unknown)
}

// runE2E starts the workers of spec.Peer's system (ours for ""), feeds jobs through its api,
// measures the window, waits until every job is final and stops the workers.
func runE2E(ctx context.Context, s *system, spec E2ESpec) (E2EResult, error) {
	res := E2EResult{Spec: spec}
	st := s.stackOf(spec.Peer)
	if err := st.db.reset(ctx); err != nil {
		return res, err
	}
	if s.fake == nil || s.fakeLat != spec.Latency {
		if err := s.startFake(ctx, spec.Latency); err != nil {
			return res, err
		}
	}
	if err := s.startWorkers(ctx, st, spec.Workers, spec.Conc, spec.Profile); err != nil {
		_ = s.stopWorkers() // the start's error says more
		return res, err
	}
	defer func() { _ = s.stopWorkers() }() // logged by stopWorkers' caller at the end; the run's figures stand

	r := &e2eRun{s: s, st: st, spec: spec, res: &res, poster: newPoster(st.apiURL, s.w.tokens, 32), start: time.Now()}
	r.t0, r.t1 = r.start.Add(spec.Warm), r.start.Add(spec.Warm+spec.Window)
	stopFeed := make(chan struct{})
	pollDone := make(chan struct{})
	go r.poll(ctx, stopFeed, pollDone)
	var feeders sync.WaitGroup
	if spec.Rate <= 0 {
		r.saturate(ctx, &feeders)
	} else {
		r.openLoop(ctx, &feeders)
	}
	c0, c1, llm, err := r.measure(ctx)
	feeders.Wait()
	close(stopFeed)
	<-pollDone
	if err != nil {
		return res, err
	}
	if err := r.drain(ctx); err != nil {
		return res, err
	}
	r.finish(llm, c0, c1)
	err = res.fromDB(ctx, st.db, r.t0, r.t1)
	if r.xacts >= 0 && res.Completed > 0 {
		res.Xacts = float64(r.xacts) / float64(res.Completed)
	}
	return res, err
}

func (r *e2eRun) submit(ctx context.Context) {
	if _, _, err := r.poster.post(ctx); err != nil {
		r.submitErrs.Add(1)
		r.issued.Add(-1)
		r.errOnce.Do(func() { r.res.FirstError = err.Error() })
		return
	}
	r.accepted.Add(1)
}

// finals counts the completed and failed jobs.
func (r *e2eRun) finals(ctx context.Context) (completed, failed int64, err error) {
	err = r.st.db.pool.QueryRow(ctx, r.st.db.finals).Scan(&completed, &failed)
	return completed, failed, err
}

// poll counts the final jobs every 20 ms, and whether the backlog ran short, until stop.
func (r *e2eRun) poll(ctx context.Context, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-stop:
			return
		case <-t.C:
		}
		c, f, err := r.finals(ctx)
		if err != nil {
			continue // the next tick asks again
		}
		r.done.Store(c + f)
		r.failed.Store(f)
		if now := time.Now(); now.After(r.t0) && now.Before(r.t1) {
			r.windowTicks.Add(1)
			if r.accepted.Load()-c-f < int64(r.spec.Workers*r.spec.Conc) {
				r.shortTicks.Add(1)
			}
		}
	}
}

// saturate keeps the backlog outstanding until the window ends.
func (r *e2eRun) saturate(ctx context.Context, feeders *sync.WaitGroup) {
	backlog := int64(r.spec.backlog())
	for range 16 {
		feeders.Add(1)
		go func() {
			defer feeders.Done()
			for time.Now().Before(r.t1) && ctx.Err() == nil {
				if r.issued.Add(1)-r.done.Load() > backlog {
					r.issued.Add(-1)
					time.Sleep(2 * time.Millisecond)
					continue
				}
				r.submit(ctx)
			}
		}()
	}
}

// openLoop offers spec.Rate jobs per second until the window ends.
func (r *e2eRun) openLoop(ctx context.Context, feeders *sync.WaitGroup) {
	next := make(chan struct{})
	for range 32 {
		feeders.Add(1)
		go func() {
			defer feeders.Done()
			for range next {
				r.issued.Add(1)
				r.submit(ctx)
			}
		}()
	}
	go func() {
		defer close(next)
		for i := 0; ; i++ {
			due := r.start.Add(time.Duration(float64(i) / r.spec.Rate * float64(time.Second)))
			if !due.Before(r.t1) || ctx.Err() != nil {
				return
			}
			time.Sleep(time.Until(due))
			next <- struct{}{}
		}
	}()
}

// llmDelta is the workers' LLM histogram's sum and count at the start and end of the window.
type llmDelta struct {
	sum0, sum1 float64
	n0, n1     uint64
}

// measure samples the window: CPU, RSS, LLM calls, PostgreSQL waits and the profiles.
func (r *e2eRun) measure(ctx context.Context) (c0, c1 cpuSnap, llm llmDelta, err error) {
	s := r.s
	rssStop := make(chan struct{})
	go s.sampleRSS(r.st, rssStop)
	time.Sleep(time.Until(r.t0))
	llm.sum0, llm.n0 = s.llmSumCount(ctx, r.st)
	c0 = snapCPU(s.componentsOf(r.st))
	x0 := xacts(ctx, r.st.db.pool)
	stopWaits := sampleWaits(ctx, r.st.db.pool)
	profWG := r.profile(ctx)
	time.Sleep(time.Until(r.t1))
	c1 = snapCPU(s.componentsOf(r.st))
	r.xacts = xacts(ctx, r.st.db.pool) - x0
	if x0 < 0 {
		r.xacts = -1
	}
	r.res.Waits = stopWaits()
	llm.sum1, llm.n1 = s.llmSumCount(ctx, r.st)
	close(rssStop)
	profWG.Wait()
	return c0, c1, llm, ctx.Err()
}

// profile fetches CPU profiles of a worker and the api over the window, if asked.
func (r *e2eRun) profile(ctx context.Context) *sync.WaitGroup {
	s, spec := r.s, r.spec
	var wg sync.WaitGroup
	if !spec.Profile || !s.pprof {
		return &wg
	}
	secs := max(int(spec.Window.Seconds())-1, 1)
	for _, target := range []struct{ who, addr string }{{"worker", s.workers[0].pprof}, {"api", s.apiPprof}} {
		if target.addr == "" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			path := filepath.Join(s.profDir, fmt.Sprintf("e2e-%s-%s.pb.gz", strings.NewReplacer(" ", "-", "@", "", "%", "").Replace(spec.Name), target.who))
			if err := fetchProfile(ctx, target.addr, secs, path); err != nil {
				fmt.Fprintf(s.cfg.Stderr, "bench: profile %s: %v\n", path, err)
			}
		}()
	}
	return &wg
}

// drain waits until every accepted job is final.
func (r *e2eRun) drain(ctx context.Context) error {
	var c, f int64
	var err error
	_ = testkit.WaitUntil(ctx, 90*time.Second+3*r.spec.Latency, 10*time.Millisecond, func() bool {
		c, f, err = r.finals(ctx)
		return err != nil || c+f >= r.accepted.Load()
	})
	switch {
	case err != nil:
		return err
	case c+f < r.accepted.Load():
		return fmt.Errorf("%s: %d of %d jobs final %s after the window", r.spec.Name, c+f, r.accepted.Load(), time.Since(r.t1).Round(time.Second))
	}
	r.res.Failed = int(f)
	r.res.Drain = time.Since(r.t1)
	return nil
}

// finish fills in the counters' figures.
func (r *e2eRun) finish(llm llmDelta, c0, c1 cpuSnap) {
	res := r.res
	res.Submitted = int(r.accepted.Load())
	res.SubmitErrors = int(r.submitErrs.Load())
	if n := r.windowTicks.Load(); n > 0 && r.spec.Rate <= 0 {
		res.FeederShort = float64(r.shortTicks.Load()) / float64(n)
	}
	if llm.n1 > llm.n0 {
		res.LLMCalls = int(llm.n1 - llm.n0)
		res.LLMMean = time.Duration((llm.sum1 - llm.sum0) / float64(llm.n1-llm.n0) * float64(time.Second))
	}
	res.CPU = cpuBetween(c0, c1)
}

// llmSumCount sums our workers' LLM call histograms (successful calls); the River peer's
// workers have none.
func (s *system) llmSumCount(ctx context.Context, st stack) (float64, uint64) {
	var (
		sum   float64
		count uint64
	)
	if st.peer != "" {
		return 0, 0
	}
	for _, wp := range s.workers {
		v, n, err := histSumCount(ctx, wp.admin+"/metrics", "careerops_worker_llm_request_duration_seconds", map[string]string{"outcome": "ok"})
		if err == nil {
			sum += v
			count += n
		}
	}
	return sum, count
}

// fromDB computes the throughput and the latencies from the jobs' timestamps in db.
func (r *E2EResult) fromDB(ctx context.Context, db jobsDB, t0, t1 time.Time) error {
	rows, err := db.pool.Query(ctx, db.times)
	if err != nil {
		return err
	}
	defer rows.Close()
	var waits, totals, claims []time.Duration
	for rows.Next() {
		var (
			created            time.Time
			started, completed *time.Time
		)
		if err := rows.Scan(&created, &started, &completed); err != nil {
			return err
		}
		if completed == nil || started == nil {
			continue
		}
		if !completed.Before(t0) && completed.Before(t1) {
			r.Completed++
		}
		if !created.Before(t0) && created.Before(t1) {
			waits = append(waits, started.Sub(created))
			totals = append(totals, completed.Sub(created))
			claims = append(claims, completed.Sub(*started))
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	r.JobsPerSec = float64(r.Completed) / t1.Sub(t0).Seconds()
	if c := r.Spec.capacity(); c > 0 {
		r.Efficiency = r.JobsPerSec / c
	}
	r.QueueWait, r.PostToDone, r.ClaimToComplete = Summarise(waits), Summarise(totals), Summarise(claims)
	return nil
}
