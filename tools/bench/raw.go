package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
	rawProgress rawMode = "progress"       // a transient, mandatory publish to the progress topic exchange (returned: nothing is bound), no confirm, one goroutine
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
	conn, setup, err := rawChannel(w, "careerops-bench-raw")
	if err != nil {
		return res, err
	}
	defer conn.Close()
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

	win := newWindow(warm, window)
	edges := win.edges(ctx, w.pool, comps, false)
	l := win.run(ctx, conc, func(g, i int) (int, error) {
		return 0, rawOp(ctx, mode, pool, chans[g], uuid.NewString(), w.userIDs[(g+i)%len(w.userIDs)], g*1_000_000+i)
	}, func(err error) bool { return errors.Is(err, amqp.ErrClosed) })
	a, b, _ := edges()
	res.Window = window
	res.Ops = len(l.lats)
	res.OpsPerSec = float64(len(l.lats)) / window.Seconds()
	res.Latency = Summarise(l.lats)
	res.Errors = l.errs
	if l.firstErr != nil {
		res.FirstError = l.firstErr.Error()
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

// rawChannel connects to the bench's vhost as name and returns a channel on which rawQueue
// is declared (like the generate queue).
func rawChannel(w *world, name string) (*amqp.Connection, *amqp.Channel, error) {
	conn, err := amqp.DialConfig(w.amqpURL, amqp.Config{Dial: amqp.DefaultDial(5 * time.Second), Properties: amqp.Table{"connection_name": name}})
	if err != nil {
		return nil, nil, err
	}
	ch, err := conn.Channel()
	if err == nil {
		_, err = ch.QueueDeclare(rawQueue, true, false, false, false, amqp.Table{amqp.QueueTypeArg: amqp.QueueTypeQuorum})
	}
	if err != nil {
		_ = conn.Close()
		return nil, nil, fmt.Errorf("declare %s: %w", rawQueue, err)
	}
	return conn, ch, nil
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
		if err := ch.PublishWithContext(ctx, job.ExchangeProgress, id, true, false, amqp.Publishing{
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
