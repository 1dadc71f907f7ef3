package outbox

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/attribute"

	"github.com/careerops/jobs/internal/broker"
	"github.com/careerops/jobs/internal/database"
	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/pause"
	"github.com/careerops/jobs/internal/telemetry"
)

// Publisher publishes a batch and reports, per message, nil once RabbitMQ confirmed it.
type Publisher interface {
	Publish(ctx context.Context, msgs []broker.Message) []error
}

// RelayConfig configures a Relay.
type RelayConfig struct {
	// BatchSize is the most rows published per transaction (and at most MaxBatchBytes of
	// them). Defaults to 500.
	BatchSize int
	// PollInterval is the longest the relay sleeps without a notification. Defaults to 1s.
	PollInterval time.Duration
	// RetryDelay is how long a message that RabbitMQ did not confirm waits before the next
	// try (doubled for each further attempt, up to MaxRetryDelay), and how long the relay
	// backs off when the broker or database is down. Defaults to 1s.
	RetryDelay time.Duration
	// MaxAttempts is how often RabbitMQ may refuse a row before the relay parks it (tries
	// while the broker is unreachable do not count; a row it can never take is parked at
	// once). Defaults to 10.
	MaxAttempts int
	// Linger is how long a woken relay waits before it looks while rows come often (see
	// lingerFor), so that the rows written meanwhile share its batch: one transaction and one
	// wait for RabbitMQ's confirms for them all. 0 (the default) looks at once.
	Linger time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Telemetry, if set, traces each publish as a PRODUCER span "send <queue>", a child of
	// the trace context stored with the message.
	Telemetry *telemetry.Telemetry
	// ServerAttributes name the broker on those spans.
	ServerAttributes []attribute.KeyValue
}

// Relay moves outbox rows to RabbitMQ. Several relays (one per api and worker process) may run
// against one database: each batch is claimed with FOR UPDATE SKIP LOCKED.
type Relay struct {
	pool  *pgxpool.Pool
	send  sender
	cfg   RelayConfig
	wake  chan struct{}
	woken time.Time // when Run was last woken
}

// Wake makes the relay look for due rows now: call it after committing outbox rows.
func (r *Relay) Wake() { signal(r.wake) }

// NewRelay returns a relay publishing pool's outbox through pub.
func NewRelay(pool *pgxpool.Pool, pub Publisher, cfg RelayConfig) *Relay {
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 500
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.RetryDelay <= 0 {
		cfg.RetryDelay = time.Second
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 10
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Relay{pool: pool, send: newSender(pub, cfg.Logger, cfg.Telemetry, cfg.ServerAttributes), cfg: cfg, wake: make(chan struct{}, 1)}
}

// Run relays until ctx ends. It wakes on Wake (its own process wrote rows), on a NOTIFY on
// the outbox channel (another process asks), on the due time of the next delayed row, and at
// least every PollInterval.
func (r *Relay) Run(ctx context.Context) error {
	listenDone := make(chan struct{})
	go func() {
		defer close(listenDone)
		r.listen(ctx, r.wake)
	}()
	defer func() { <-listenDone }()

	for {
		wait, err := r.drain(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			r.cfg.Logger.WarnContext(ctx, "outbox: relay failed, backing off",
				slog.String("error", err.Error()), slog.Duration("retry_in", r.cfg.RetryDelay))
			wait = r.cfg.RetryDelay
		}
		if !r.wait(ctx, wait) {
			return nil
		}
	}
}

// wait sleeps for d or until the relay is woken, and once woken lingers (lingerFor); false
// when ctx ends first.
func (r *Relay) wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	case <-r.wake:
		now := time.Now()
		linger := lingerFor(r.cfg.Linger, now.Sub(r.woken))
		r.woken = now
		return pause.For(ctx, linger) == nil
	}
}

// lingerFor is how long a relay woken sinceLast after its previous wake lingers: linger while
// rows come within two lingers of each other, when the wait gathers more of them; none when
// they come seldom, when it would only delay the row that woke it.
func lingerFor(linger, sinceLast time.Duration) time.Duration {
	if sinceLast <= 2*linger {
		return linger
	}
	return 0
}

// Flush publishes every row due now, once: for a clean stop after Run.
func (r *Relay) Flush(ctx context.Context) error {
	_, err := r.drain(ctx)
	return err
}

// drain publishes due rows until none are left and returns how long to sleep before the next
// delayed row is due (at most PollInterval).
func (r *Relay) drain(ctx context.Context) (time.Duration, error) {
	for {
		full, untilNext, err := r.publishBatch(ctx)
		if err != nil {
			return 0, err
		}
		if !full {
			if untilNext == nil {
				return r.cfg.PollInterval, nil
			}
			return min(max(time.Duration(*untilNext*float64(time.Second)), time.Millisecond), r.cfg.PollInterval), nil
		}
	}
}

// untilNextSQL is how many seconds remain until the next row is due (NULL: none). The batch's
// transaction asks it last (by the clock: the transaction began before the publish), so that
// an idle relay needs no transaction more.
const untilNextSQL = `SELECT extract(epoch FROM min(available_at) - clock_timestamp())::float8 FROM outbox_messages WHERE parked_at IS NULL`

// publishBatch publishes one batch of due rows in one transaction and returns whether it was
// full (more may be due) and the seconds until the next row left is due.
func (r *Relay) publishBatch(ctx context.Context) (bool, *float64, error) {
	tx, err := r.pool.Begin(ctx)
	if err != nil {
		return false, nil, fmt.Errorf("outbox: begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit

	var untilNext *float64
	ids, msgs, full, err := r.selectBatch(ctx, tx)
	if err != nil {
		return false, nil, err
	}
	if len(msgs) == 0 {
		if err := tx.QueryRow(ctx, untilNextSQL).Scan(&untilNext); err != nil {
			return false, nil, fmt.Errorf("outbox: next due row: %w", err)
		}
		return false, untilNext, tx.Commit(ctx)
	}
	errs := r.send.publish(ctx, msgs)
	// Even if ctx is ending, record what RabbitMQ confirmed so it is not published again.
	finishCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := r.record(finishCtx, tx, ids, errs, &untilNext); err != nil {
		return false, nil, err
	}
	failed, firstErr := 0, error(nil)
	for _, err := range errs {
		if err != nil {
			failed++
			firstErr = cmp.Or(firstErr, err)
		}
	}
	if firstErr != nil {
		return false, nil, fmt.Errorf("outbox: %d of %d messages not confirmed: %w", failed, len(msgs), firstErr)
	}
	return full, untilNext, nil
}

// MaxBatchBytes bounds the messages of one batch (bodies and headers), so that a relay's
// memory does not grow with BatchSize times the largest message: the rows past it stay for
// the next batch.
const MaxBatchBytes = 4 << 20

// selectBatch locks up to BatchSize due rows, oldest first, skipping rows other relays hold,
// and returns those within MaxBatchBytes (at least one) and whether the batch is full.
func (r *Relay) selectBatch(ctx context.Context, tx pgx.Tx) (ids []int64, msgs []broker.Message, full bool, err error) {
	rows, err := tx.Query(ctx, `
		SELECT id, exchange, routing_key, message_id, headers, body
		FROM outbox_messages
		WHERE parked_at IS NULL AND available_at <= now()
		ORDER BY available_at, id
		LIMIT $1
		FOR UPDATE SKIP LOCKED`, r.cfg.BatchSize)
	if err != nil {
		return nil, nil, false, fmt.Errorf("outbox: select batch: %w", err)
	}
	defer rows.Close() // reads and drops the rows past MaxBatchBytes
	size := 0
	for rows.Next() {
		var (
			id      int64
			m       broker.Message
			headers []byte
		)
		if err := rows.Scan(&id, &m.Exchange, &m.RoutingKey, &m.MessageID, &headers, &m.Body); err != nil {
			return nil, nil, false, fmt.Errorf("outbox: scan: %w", err)
		}
		if size += len(headers) + len(m.Body); size > MaxBatchBytes && len(msgs) > 0 {
			return ids, msgs, true, nil
		}
		if err := json.Unmarshal(headers, &m.Headers); err != nil {
			return nil, nil, false, fmt.Errorf("outbox: row %d headers: %w", id, err)
		}
		ids = append(ids, id)
		msgs = append(msgs, m)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, false, fmt.Errorf("outbox: select batch: %w", err)
	}
	return ids, msgs, len(msgs) == r.cfg.BatchSize, nil
}

// record deletes the confirmed rows and schedules the others again, reads the seconds until
// the next row is due into untilNext, then commits. A row the broker can never take, or has
// refused MaxAttempts times, is parked; a try that found the broker unreachable does not count.
func (r *Relay) record(ctx context.Context, tx pgx.Tx, ids []int64, errs []error, untilNext **float64) error {
	batch := &pgx.Batch{}
	var done []int64
	for i, err := range errs {
		switch {
		case err == nil:
			done = append(done, ids[i])
		case errors.Is(err, broker.ErrUnavailable):
			batch.Queue(`UPDATE outbox_messages SET last_error = $2, available_at = now() + make_interval(secs => $3)
				WHERE id = $1`, ids[i], job.SafeText(err.Error(), job.MaxErrorBytes), r.cfg.RetryDelay.Seconds())
		default:
			parkNow := errors.Is(err, broker.ErrRefused)
			batch.Queue(`
				UPDATE outbox_messages
				SET publish_attempts = publish_attempts + 1, last_error = $2,
				    available_at = now() + make_interval(secs => least($3 * 2 ^ publish_attempts, $4)),
				    parked_at = CASE WHEN $5 OR publish_attempts + 1 >= $6 THEN now() END
				WHERE id = $1`, ids[i], job.SafeText(err.Error(), job.MaxErrorBytes), r.cfg.RetryDelay.Seconds(),
				maxRetryDelay.Seconds(), parkNow, r.cfg.MaxAttempts)
		}
	}
	if len(done) > 0 {
		batch.Queue(`DELETE FROM outbox_messages WHERE id = ANY($1)`, done)
	}
	batch.Queue(untilNextSQL).QueryRow(func(row pgx.Row) error { return row.Scan(untilNext) })
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		return fmt.Errorf("outbox: record published rows: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("outbox: commit: %w", err)
	}
	return nil
}

// maxRetryDelay caps the wait between two tries of a row RabbitMQ refused.
const maxRetryDelay = 5 * time.Minute

// listen signals wake on every outbox NOTIFY, and on every (re)connection, since rows may
// have arrived while it was not listening.
func (r *Relay) listen(ctx context.Context, wake chan<- struct{}) {
	l := database.NewListener(r.pool, r.cfg.RetryDelay, func(ctx context.Context, err error) {
		if ctx.Err() == nil {
			r.cfg.Logger.WarnContext(ctx, "outbox: LISTEN connection", slog.String("error", err.Error()))
		}
	})
	l.Handle(database.NotifyChannel, wakeHandler(wake))
	_ = l.Listen(ctx) // returns when ctx ends
}

// wakeHandler signals wake for each notification and for the backlog.
type wakeHandler chan<- struct{}

func (w wakeHandler) HandleNotification(context.Context, *pgconn.Notification, *pgx.Conn) error {
	signal(w)
	return nil
}

func (w wakeHandler) HandleBacklog(context.Context, string, *pgx.Conn) error {
	signal(w)
	return nil
}

func signal(wake chan<- struct{}) {
	select {
	case wake <- struct{}{}:
	default:
	}
}
