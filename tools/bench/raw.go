package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/careerops/jobs/internal/database"
	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/tools/loadgen"
)

// rawMode is what one raw operation does.
type rawMode string

const (
	rawFull     rawMode = "insert+publish" // INSERT the job row (autocommit), then publish with a confirm
	rawInsert   rawMode = "insert"         // the INSERT alone
	rawPublish  rawMode = "publish"        // the confirmed publish alone
	rawProgress rawMode = "progress"       // a transient publish to the progress topic exchange, no confirm, one goroutine
)

// rawQueue is the quorum queue the raw limit publishes to (declared like the generate queue).
const rawQueue = "bench.raw-limit"

// RawResult is one raw-limit run.
type RawResult struct {
	Mode        rawMode       `json:"mode"`
	Concurrency int           `json:"concurrency"`
	Window      time.Duration `json:"window"`
	Ops         int           `json:"ops"`
	OpsPerSec   float64       `json:"opsPerSec"`
	Latency     Dist          `json:"latency"`
	Errors      int           `json:"errors"`
	FirstError  string        `json:"firstError,omitempty"`
	CPU         CPUUse        `json:"cpu"`
}

func (r RawResult) line() string {
	s := fmt.Sprintf("raw %-14s c=%-3d ops/s=%s p50=%sms p99=%sms errors=%d ops=%d window=%s %s",
		r.Mode, r.Concurrency, rate(r.OpsPerSec), ms(r.Latency.P50), ms(r.Latency.P99), r.Errors, r.Ops,
		r.Window.Round(time.Millisecond), r.CPU.perOp(r.Ops))
	if r.FirstError != "" {
		s += " first_error=" + r.FirstError
	}
	return s
}

// rawBody is a generate message as the api writes it, for realistic sizes.
func rawBody(id string, userID int64, i int) []byte {
	req := loadgen.DefaultBody(i)
	b, _ := json.Marshal(job.GenerateMessage{JobID: id, UserID: userID, JobDescription: req.JobDescription,
		CVText: req.CVText, Tone: job.Tone(req.Tone), CreatedAt: time.Now()})
	return b
}

// runRaw does the minimal work of an enqueue directly with pgx and amqp091-go, at conc
// goroutines for warm+window, and measures the operations that ended within the window.
func runRaw(ctx context.Context, w *world, mode rawMode, conc int, warm, window time.Duration, comps []component) (RawResult, error) {
	res := RawResult{Mode: mode, Concurrency: conc}
	pool, err := database.Connect(ctx, w.dbURL, int32(max(conc, 2)), nil)
	if err != nil {
		return res, err
	}
	defer pool.Close()
	conn, err := amqp.DialConfig(w.amqpURL, amqp.Config{Dial: amqp.DefaultDial(5 * time.Second), Properties: amqp.Table{"connection_name": "careerops-bench-raw"}})
	if err != nil {
		return res, err
	}
	defer conn.Close()
	setup, err := conn.Channel()
	if err != nil {
		return res, err
	}
	if _, err := setup.QueueDeclare(rawQueue, true, false, false, false, amqp.Table{amqp.QueueTypeArg: amqp.QueueTypeQuorum}); err != nil {
		return res, fmt.Errorf("declare %s: %w", rawQueue, err)
	}
	if _, err := setup.QueuePurge(rawQueue, false); err != nil {
		return res, err
	}
	_ = setup.Close()

	// Everything is opened before the clock starts.
	chans := make([]*amqp.Channel, conc)
	for i := range chans {
		if chans[i], err = conn.Channel(); err != nil {
			return res, err
		}
		if mode != rawProgress {
			if err := chans[i].Confirm(false); err != nil {
				return res, err
			}
		}
	}
	if mode != rawPublish && mode != rawProgress {
		if err := warmPool(ctx, pool, conc); err != nil {
			return res, err
		}
	}

	start := time.Now()
	t0, t1 := start.Add(warm), start.Add(warm+window)
	type sample struct {
		end time.Time
		lat time.Duration
	}
	var (
		mu       sync.Mutex
		samples  []sample
		errs     int
		firstErr error
		snaps    = make(chan cpuSnap, 2)
		wg       sync.WaitGroup
	)
	go func() { // CPU at the window's edges
		time.Sleep(time.Until(t0))
		snaps <- snapCPU(comps)
		time.Sleep(time.Until(t1))
		snaps <- snapCPU(comps)
	}()
	for g := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ch := chans[g]
			var local []sample
			for i := 0; time.Now().Before(t1) && ctx.Err() == nil; i++ {
				id := uuid.NewString()
				userID := w.userIDs[(g+i)%len(w.userIDs)]
				s := time.Now()
				err := rawOp(ctx, mode, pool, ch, id, userID, g*1_000_000+i)
				e := time.Now()
				if err != nil {
					mu.Lock()
					errs++
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					if errors.Is(err, amqp.ErrClosed) {
						return
					}
					continue
				}
				local = append(local, sample{e, e.Sub(s)})
			}
			mu.Lock()
			samples = append(samples, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	a, b := <-snaps, <-snaps
	var lats []time.Duration
	for _, s := range samples {
		if !s.end.Before(t0) && !s.end.After(t1) {
			lats = append(lats, s.lat)
		}
	}
	res.Window = window
	res.Ops = len(lats)
	res.OpsPerSec = float64(len(lats)) / window.Seconds()
	res.Latency = Summarise(lats)
	res.Errors = errs
	if firstErr != nil {
		res.FirstError = firstErr.Error()
	}
	res.CPU = cpuBetween(a, b)
	for _, ch := range chans {
		_ = ch.Close()
	}
	if ch, err := conn.Channel(); err == nil {
		_, _ = ch.QueueDelete(rawQueue, false, false, false)
		_ = ch.Close()
	}
	if mode != rawPublish && mode != rawProgress {
		_, _ = w.pool.Exec(ctx, `TRUNCATE cover_letter_jobs`)
	}
	return res, nil
}

// warmPool opens n connections before the clock starts.
func warmPool(ctx context.Context, pool *pgxpool.Pool, n int) error {
	conns := make([]*pgxpool.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Release()
		}
	}()
	for range n {
		c, err := pool.Acquire(ctx)
		if err != nil {
			return err
		}
		conns = append(conns, c)
	}
	return nil
}

func rawOp(ctx context.Context, mode rawMode, pool *pgxpool.Pool, ch *amqp.Channel, id string, userID int64, i int) error {
	req := loadgen.DefaultBody(i)
	if mode == rawFull || mode == rawInsert {
		if _, err := pool.Exec(ctx, `
			INSERT INTO cover_letter_jobs (job_id, user_id, job_description, cv_text, tone, traceparent)
			VALUES ($1, $2, $3, $4, $5, $6)`,
			id, userID, req.JobDescription, req.CVText, toneOrDefault(req.Tone),
			"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"); err != nil {
			return fmt.Errorf("insert: %w", err)
		}
	}
	switch mode {
	case rawFull, rawPublish:
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", rawQueue, false, false, amqp.Publishing{
			ContentType:  "application/json",
			DeliveryMode: amqp.Persistent,
			MessageId:    id + "/0",
			Timestamp:    time.Now(),
			Headers: amqp.Table{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
				job.HeaderJobID: id, job.HeaderDueAt: time.Now().UTC().Format(time.RFC3339Nano)},
			Body: rawBody(id, userID, i),
		})
		if err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		ok, err := dc.WaitContext(ctx)
		if err != nil {
			return fmt.Errorf("confirm: %w", err)
		}
		if !ok {
			return errors.New("publish nacked")
		}
	case rawProgress:
		body, _ := json.Marshal(map[string]any{"type": "delta", "jobId": id, "attempt": 1, "index": i, "text": " three words here"})
		if err := ch.PublishWithContext(ctx, job.ExchangeProgress, id, false, false, amqp.Publishing{
			ContentType: "application/json", DeliveryMode: amqp.Transient, Expiration: "60000", Body: body,
		}); err != nil {
			return fmt.Errorf("publish: %w", err)
		}
	}
	return nil
}

func toneOrDefault(t string) string {
	if t == "" {
		return string(job.ToneProfessional)
	}
	return t
}
