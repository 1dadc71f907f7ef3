package bench

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
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
	Concurrency int `json:"concurrency"`
	// Users is how many users sent the requests (0: all the bench's).
	Users    int           `json:"users,omitempty"`
	Window   time.Duration `json:"window"`
	Accepted int           `json:"accepted"` // 202s answered within the window
	PerSec   float64       `json:"acceptedPerSec"`
	Latency  Dist          `json:"latency"`
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
	// Peer names the system under test if not ours: "river" (its figures have no outbox).
	Peer string `json:"peer,omitempty"`
}

func (r APIResult) line() string {
	name := "api enqueue"
	switch {
	case r.Experiment != "":
		name = "experiment " + r.Experiment + ":"
	case r.Peer != "":
		name = r.Peer + " enqueue"
	case r.Users > 0:
		name = fmt.Sprintf("api enqueue (%d users)", r.Users)
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

// runAPILoad keeps conc requests in flight to st's api for warm+window, from the first users
// of w's (0: all of them), and measures the answers that came within the window; then, for
// ours, it times the outbox drain.
func runAPILoad(ctx context.Context, w *world, st stack, conc, users int, warm, window time.Duration, comps []component) (APIResult, error) {
	res := APIResult{Concurrency: conc, Users: users, Window: window, Answers: map[int]int{}, Peer: st.peer}
	tokens := w.tokens
	if users > 0 {
		tokens = tokens[:min(users, len(tokens))]
	}
	p := newPoster(st.apiURL, tokens, conc)
	win := newWindow(warm, window)
	edges := win.edges(ctx, st.db.pool, comps, true)
	loadDone := make(chan struct{})
	outboxMax := make(chan int64, 1)
	if st.peer == "" {
		go func() { outboxMax <- w.outboxMax(ctx, loadDone) }()
	} else {
		outboxMax <- 0
	}
	l := win.run(ctx, conc, func(int, int) (int, error) {
		status, _, err := p.post(ctx)
		return status, err
	}, nil)
	lastAnswer := time.Now()
	close(loadDone)
	a, b, waits := edges()
	res.Waits, res.Answers, res.OutboxMax = waits, l.keys, <-outboxMax
	if st.peer == "" {
		var err error
		if res.OutboxDrain, err = w.outboxDrain(ctx, lastAnswer); err != nil {
			return res, err
		}
	}
	res.Accepted = len(l.lats)
	res.PerSec = float64(len(l.lats)) / window.Seconds()
	res.Latency = Summarise(l.lats)
	for code, n := range res.Answers {
		res.TotalSent += n
		if code != http.StatusAccepted {
			res.Errors += n
		}
	}
	if l.firstErr != nil {
		res.FirstError = l.firstErr.Error()
	}
	res.CPU = cpuBetween(a, b)
	if st.peer == "" {
		res.Published, _ = w.queueDepth("cover-letter.generate")
	} else { // River's queue is its table
		_ = st.db.pool.QueryRow(ctx, `SELECT count(*) FROM river_job`).Scan(&res.Published) // 0 if it fails: the line shows it
	}
	return res, nil
}

// outboxMax is the largest outbox backlog seen every 50 ms until done.
func (w *world) outboxMax(ctx context.Context, done <-chan struct{}) int64 {
	var most int64
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-done:
			return most
		case <-t.C:
		}
		var n int64
		if err := w.pool.QueryRow(ctx, `SELECT count(*) FROM outbox_messages`).Scan(&n); err == nil {
			most = max(most, n)
		}
	}
}

// outboxDrain waits until every accepted job's message is confirmed by RabbitMQ (the outbox
// is empty) and returns how long that took from since.
func (w *world) outboxDrain(ctx context.Context, since time.Time) (time.Duration, error) {
	var n int64
	var err error
	_ = testkit.WaitUntil(ctx, 2*time.Minute-time.Since(since), 2*time.Millisecond, func() bool {
		err = w.pool.QueryRow(ctx, `SELECT count(*) FROM outbox_messages`).Scan(&n)
		return err != nil || n == 0
	})
	switch {
	case err != nil:
		return 0, err
	case n != 0:
		return 0, fmt.Errorf("outbox still holds %d messages 2 min after the load", n)
	}
	return time.Since(since), nil
}
