package outbox

import (
	"cmp"
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/attribute"

	"github.com/careerops/jobs/internal/broker"
	"github.com/careerops/jobs/internal/telemetry"
)

// HandoffConfig configures a Handoff.
type HandoffConfig struct {
	// Hold is how long the relays leave a handed-off row alone: its writer makes it due only
	// then (available_at = now() + Hold), the time the hand-off has to publish and delete it.
	// Defaults to 5s.
	Hold time.Duration
	// DeleteAfter is how long published rows wait to be deleted together, in one statement.
	// Defaults to 50ms.
	DeleteAfter time.Duration
	// Queue is how many batches may wait to be published; Send leaves a batch past it to the
	// relays. Defaults to 256.
	Queue int
	// Logger defaults to slog.Default(); Telemetry and ServerAttributes are the Relay's.
	Logger           *slog.Logger
	Telemetry        *telemetry.Telemetry
	ServerAttributes []attribute.KeyValue
}

// Row is an outbox row and its message.
type Row struct {
	ID int64
	broker.Message
}

// Handoff publishes the rows its own process has just committed, from memory, so that they
// need no relay transaction: the writer makes a row due only after Hold and hands it over
// after the commit (Send); the hand-off publishes it and, once RabbitMQ confirmed it, deletes
// it (many rows a statement). A row RabbitMQ did not confirm is made due at once, for the
// relays to retry; a row never handed over (its process died after the commit, or the queue
// was full) is theirs once due. So every committed row is still published at least once; one
// whose hand-off took longer than Hold may be published twice, which consumers of the outbox
// already tolerate.
type Handoff struct {
	pool *pgxpool.Pool
	send sender
	cfg  HandoffConfig
	in   chan []Row
	// failing is set while RabbitMQ does not confirm: only a spell's first failure is logged.
	failing bool
}

// NewHandoff returns a hand-off publishing through pub and deleting from pool's outbox.
func NewHandoff(pool *pgxpool.Pool, pub Publisher, cfg HandoffConfig) *Handoff {
	if cfg.Hold <= 0 {
		cfg.Hold = 5 * time.Second
	}
	if cfg.DeleteAfter <= 0 {
		cfg.DeleteAfter = 50 * time.Millisecond
	}
	if cfg.Queue <= 0 {
		cfg.Queue = 256
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Handoff{pool: pool, send: newSender(pub, cfg.Logger, cfg.Telemetry, cfg.ServerAttributes), cfg: cfg,
		in: make(chan []Row, cfg.Queue)}
}

// Hold is how long after its commit a handed-off row must become due; 0 without a hand-off.
func (h *Handoff) Hold() time.Duration {
	if h == nil {
		return 0
	}
	return h.cfg.Hold
}

// Send hands over rows whose transaction has committed. It never blocks: false if the queue
// is full, and the rows are left to the relays.
func (h *Handoff) Send(rows []Row) bool {
	select {
	case h.in <- rows:
		return true
	default:
		return false
	}
}

// Run publishes the rows handed over until ctx ends, then those already handed over (Flush),
// and deletes what RabbitMQ confirmed.
func (h *Handoff) Run(ctx context.Context) error {
	var (
		published []int64
		due       <-chan time.Time // the pending deletes' timer; nil while none is pending
	)
	for {
		select {
		case rows := <-h.in:
			if len(published) == 0 {
				due = time.After(h.cfg.DeleteAfter)
			}
			published = append(published, h.publish(ctx, rows)...)
		case <-due:
			h.delete(ctx, published)
			published, due = nil, nil
		case <-ctx.Done():
			h.delete(ctx, published)
			return h.Flush(ctx)
		}
	}
}

// Flush publishes the rows handed over and not yet published and deletes them, once: for a
// clean stop after the writers stopped.
func (h *Handoff) Flush(ctx context.Context) error {
	var published []int64
	for {
		select {
		case rows := <-h.in:
			published = append(published, h.publish(ctx, rows)...)
		default:
			h.delete(ctx, published)
			return nil
		}
	}
}

// publish publishes rows and whatever else waits in the queue, up to MaxBatchBytes, and
// returns the ids of the rows RabbitMQ confirmed.
func (h *Handoff) publish(ctx context.Context, rows []Row) []int64 {
	size := 0
	for _, r := range rows {
		size += len(r.Body)
	}
gather:
	for size < MaxBatchBytes {
		select {
		case more := <-h.in:
			rows = append(rows, more...)
			for _, r := range more {
				size += len(r.Body)
			}
		default:
			break gather
		}
	}
	msgs := make([]broker.Message, len(rows))
	for i, r := range rows {
		msgs[i] = r.Message
	}
	errs := h.send.publish(ctx, msgs)
	var confirmed, failed []int64
	var firstErr error
	for i, err := range errs {
		if err == nil {
			confirmed = append(confirmed, rows[i].ID)
			continue
		}
		failed = append(failed, rows[i].ID)
		firstErr = cmp.Or(firstErr, err)
	}
	if firstErr != nil && !h.failing {
		h.cfg.Logger.WarnContext(ctx, "outbox: hand-off not confirmed; the relays will publish what it could not",
			slog.String("error", firstErr.Error()))
	}
	h.failing = firstErr != nil
	h.release(ctx, failed)
	return confirmed
}

// release makes the rows ids, which RabbitMQ did not confirm, due now: the relays retry them
// (backing off, parking what the broker refuses for good) without waiting for Hold.
func (h *Handoff) release(ctx context.Context, ids []int64) {
	h.exec(ctx, ids, `UPDATE outbox_messages SET available_at = now() WHERE id = ANY($1)`,
		"outbox: release rows the hand-off could not publish; the relays take them once due")
}

// delete deletes the published rows ids. If that fails the relays publish them again once
// due, so it is logged, not returned.
func (h *Handoff) delete(ctx context.Context, ids []int64) {
	h.exec(ctx, ids, `DELETE FROM outbox_messages WHERE id = ANY($1)`,
		"outbox: delete handed-off rows; the relays will publish them again")
}

// exec runs sql on the rows ids, even if ctx is ending; a failure is logged as what.
func (h *Handoff) exec(ctx context.Context, ids []int64, sql, what string) {
	if len(ids) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, err := h.pool.Exec(ctx, sql, ids); err != nil {
		h.cfg.Logger.WarnContext(ctx, what, slog.Int("rows", len(ids)), slog.String("error", err.Error()))
	}
}

// Held notes the rows that one transaction, run with the context of Collect, writes for a
// hand-off, to be handed over once it commits.
type Held struct {
	h      *Handoff
	rows   []Row
	relays bool // rows were written for the relays (delayed ones)
}

type heldKey struct{}

// Collect returns the context for one transaction's writes: InsertMany, given it, writes the
// messages due at once held for h and notes them in the returned Held. With h nil, InsertMany
// writes as usual.
func (h *Handoff) Collect(ctx context.Context) (context.Context, *Held) {
	held := &Held{h: h}
	if h == nil {
		return ctx, held
	}
	return context.WithValue(ctx, heldKey{}, held), held
}

// Committed hands the noted rows over; call it after the commit. It reports whether the
// relays have rows to look at (always without a hand-off): wake them then.
func (held *Held) Committed() (wakeRelays bool) {
	if held.h == nil {
		return true
	}
	if len(held.rows) > 0 {
		held.h.Send(held.rows) // refused: the relays' once due
	}
	return held.relays
}
