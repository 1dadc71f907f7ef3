package bench

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/careerops/jobs/internal/apiclient"
	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/testkit"
	"github.com/careerops/jobs/tools/loadgen"
)

// poster sends POST /api/cover-letter as a careful client does (an Idempotency-Key per job),
// spreading jobs over the bench's users, and never retries: every answer but 202 counts as
// an error.
type poster struct {
	api    *apiclient.Client
	tokens []string
	prefix string
	next   atomic.Int64
}

func newPoster(base string, tokens []string, conns int) *poster {
	return &poster{api: apiclient.New(base, loadgen.NewHTTPClient(conns)), tokens: tokens, prefix: "bench-" + testkit.RandomHex(4)}
}

// post submits one job and returns the HTTP status (0: transport error) and the job id.
func (p *poster) post(ctx context.Context) (int, string, error) {
	i := int(p.next.Add(1))
	b := loadgen.DefaultBody(i)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	created, err := p.api.Create(ctx, p.tokens[i%len(p.tokens)],
		job.CreateRequest{JobDescription: b.JobDescription, CVText: b.CVText, Tone: job.Tone(b.Tone)}, p.prefix+"-"+strconv.Itoa(i))
	switch {
	case err != nil:
		return apiclient.StatusOf(err), "", err
	case created.Replayed: // a key is never sent twice: a 200 is an error here
		return http.StatusOK, "", fmt.Errorf("200 (a replay) for a new Idempotency-Key")
	}
	return http.StatusAccepted, created.JobID, nil
}

// APIResult is one API enqueue run.
type APIResult struct {
	Concurrency int           `json:"concurrency"`
	Window      time.Duration `json:"window"`
	Accepted    int           `json:"accepted"` // 202s answered within the window
	PerSec      float64       `json:"acceptedPerSec"`
	Latency     Dist          `json:"latency"`
	// Errors counts every answer but 202 over the whole run (warm-up included).
	Errors     int         `json:"errors"`
	Answers    map[int]int `json:"answers"`
	FirstError string      `json:"firstError,omitempty"`
	TotalSent  int         `json:"totalSent"`
	// OutboxMax is the largest outbox backlog seen during the load (sampled every 50 ms);
	// OutboxDrain the time from the last answer until the outbox was empty.
	OutboxMax   int64         `json:"outboxMax"`
	OutboxDrain time.Duration `json:"outboxDrain"`
	// Published is the generate queue's depth once drained: every accepted job's message.
	Published int     `json:"published"`
	CPU       CPUUse  `json:"cpu"`
	RatioRaw  float64 `json:"ratioToRaw"`
	Waits     Waits   `json:"pgWaits"`
	// Experiment names a change made to the bench database for this run only ("" for none).
	Experiment string `json:"experiment,omitempty"`
}

func (r APIResult) line() string {
	name := "api enqueue"
	if r.Experiment != "" {
		name = "experiment " + r.Experiment + ":"
	}
	s := fmt.Sprintf("%s c=%-3d accepted/s=%s p50=%sms p99=%sms p99.9=%sms errors=%d ratio_to_raw=%.2f outbox_drain=%sms outbox_max=%d published=%d/%d window=%s %s",
		name, r.Concurrency, rate(r.PerSec), ms(r.Latency.P50), ms(r.Latency.P99), ms(r.Latency.P999), r.Errors, r.RatioRaw,
		ms(r.OutboxDrain), r.OutboxMax, r.Published, r.Answers[http.StatusAccepted], r.Window, r.CPU.perOp(r.Accepted))
	s += " " + r.Waits.String()
	if r.FirstError != "" {
		s += " first_error=" + r.FirstError
	}
	return s
}

// runAPILoad keeps conc requests in flight for warm+window and measures the answers that
// came within the window; then it times the outbox drain.
func runAPILoad(ctx context.Context, w *world, apiURL string, conc int, warm, window time.Duration, comps []component) (APIResult, error) {
	res := APIResult{Concurrency: conc, Window: window, Answers: map[int]int{}}
	p := newPoster(apiURL, w.tokens, conc)
	start := time.Now()
	t0, t1 := start.Add(warm), start.Add(warm+window)
	type sample struct {
		end time.Time
		lat time.Duration
	}
	var (
		mu       sync.Mutex
		samples  []sample
		firstErr error
		wg       sync.WaitGroup
		snaps    = make(chan cpuSnap, 2)
	)
	waitsDone := make(chan Waits, 1)
	go func() {
		time.Sleep(time.Until(t0))
		stopWaits := w.sampleWaits(ctx)
		snaps <- snapCPU(comps)
		time.Sleep(time.Until(t1))
		snaps <- snapCPU(comps)
		waitsDone <- stopWaits()
	}()
	loadDone := make(chan struct{})
	var outboxMax atomic.Int64
	go func() { // the outbox backlog during the load
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-loadDone:
				return
			case <-t.C:
			}
			var n int64
			if err := w.pool.QueryRow(ctx, `SELECT count(*) FROM outbox_messages`).Scan(&n); err == nil && n > outboxMax.Load() {
				outboxMax.Store(n)
			}
		}
	}()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var local []sample
			answers := map[int]int{}
			for time.Now().Before(t1) && ctx.Err() == nil {
				s := time.Now()
				status, _, err := p.post(ctx)
				e := time.Now()
				answers[status]++
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					continue
				}
				local = append(local, sample{e, e.Sub(s)})
			}
			mu.Lock()
			samples = append(samples, local...)
			for k, v := range answers {
				res.Answers[k] += v
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	lastAnswer := time.Now()
	close(loadDone)
	a, b := <-snaps, <-snaps
	res.Waits = <-waitsDone

	// The outbox drain: until every accepted job's message is confirmed by RabbitMQ.
	deadline := lastAnswer.Add(2 * time.Minute)
	for {
		var n int64
		if err := w.pool.QueryRow(ctx, `SELECT count(*) FROM outbox_messages`).Scan(&n); err != nil {
			return res, err
		}
		if n == 0 {
			res.OutboxDrain = time.Since(lastAnswer)
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return res, fmt.Errorf("outbox still holds %d messages 2 min after the load", n)
		}
		time.Sleep(2 * time.Millisecond)
	}
	res.OutboxMax = outboxMax.Load()

	var lats []time.Duration
	for _, s := range samples {
		if !s.end.Before(t0) && !s.end.After(t1) {
			lats = append(lats, s.lat)
		}
	}
	res.Accepted = len(lats)
	res.PerSec = float64(len(lats)) / window.Seconds()
	res.Latency = Summarise(lats)
	for code, n := range res.Answers {
		res.TotalSent += n
		if code != http.StatusAccepted {
			res.Errors += n
		}
	}
	if firstErr != nil {
		res.FirstError = firstErr.Error()
	}
	res.CPU = cpuBetween(a, b)
	res.Published, _ = w.queueDepth("cover-letter.generate")
	return res, nil
}
