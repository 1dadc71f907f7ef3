// Package outbox makes publishing part of a database transaction: Insert writes a message as a
// row in the same transaction as the state change it announces, and a Relay publishes the rows
// to RabbitMQ with publisher confirms, deleting each row only once RabbitMQ has confirmed it.
// A message is therefore published at least once if and only if its transaction commits.
package outbox

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/careerops/jobs/internal/broker"
	"github.com/careerops/jobs/internal/database"
	"github.com/careerops/jobs/internal/job"
)

// DBTX is what Insert needs: a transaction, usually.
type DBTX interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Bounds on what Insert stores of a message's headers, so that every row can be published
// (broker.MaxHeaderFrameBytes) and none can bloat a log line or the DLQ.
const (
	// MaxHeaderValueBytes clips each header value (W3C tracestate is at most 512).
	MaxHeaderValueBytes = job.MaxErrorBytes
	// MaxHeaderBytes bounds all headers together; past it, headers are dropped, ours and the
	// trace context last.
	MaxHeaderBytes = 16 << 10
)

// Insert adds m to the outbox, to be published not before availableAt (zero: at once). Its
// headers are made safe first (SafeHeaders).
func Insert(ctx context.Context, db DBTX, m broker.Message, availableAt time.Time) error {
	return InsertMany(ctx, db, []broker.Message{m}, availableAt)
}

// InsertMany adds msgs to the outbox in one statement, as Insert does each. Given the context
// of a hand-off's Collect, messages due at once are held for the hand-off instead.
func InsertMany(ctx context.Context, db DBTX, msgs []broker.Message, availableAt time.Time) error {
	cols, err := ColumnsOf(msgs)
	if err != nil {
		return err
	}
	held, _ := ctx.Value(heldKey{}).(*Held)
	if held == nil || !availableAt.IsZero() {
		return insert(ctx, db, cols, availableAt, held)
	}
	rows, err := db.Query(ctx, `
		INSERT INTO outbox_messages (exchange, routing_key, message_id, headers, body, available_at)
		SELECT e, k, id, h, b, now() + make_interval(secs => $6)
		FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[], $5::bytea[]) WITH ORDINALITY AS m(e, k, id, h, b, n)
		ORDER BY n
		RETURNING id`,
		cols.Exchanges, cols.RoutingKeys, cols.MessageIDs, cols.Headers, cols.Bodies, held.h.Hold().Seconds())
	if err != nil {
		return fmt.Errorf("outbox: insert: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return fmt.Errorf("outbox: insert: %w", err)
	}
	if len(ids) != len(msgs) {
		return fmt.Errorf("outbox: insert: %d rows for %d messages", len(ids), len(msgs))
	}
	slices.Sort(ids) // the sequence numbers the rows in the order inserted: msgs' order
	for i, id := range ids {
		held.rows = append(held.rows, Row{ID: id, Message: msgs[i]})
	}
	return nil
}

// insert is InsertMany for rows the relays publish; it notes them in held, if any.
func insert(ctx context.Context, db DBTX, cols Columns, availableAt time.Time, held *Held) error {
	var at any
	if !availableAt.IsZero() {
		at = availableAt
	}
	_, err := db.Exec(ctx, `
		INSERT INTO outbox_messages (exchange, routing_key, message_id, headers, body, available_at)
		SELECT e, k, id, h, b, coalesce($6, now())
		FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[], $5::bytea[]) AS m(e, k, id, h, b)`,
		cols.Exchanges, cols.RoutingKeys, cols.MessageIDs, cols.Headers, cols.Bodies, at)
	if err != nil {
		return fmt.Errorf("outbox: insert: %w", err)
	}
	if held != nil {
		held.relays = true
	}
	return nil
}

// Columns are messages as outbox_messages stores them, a column each, for an INSERT from
// unnest($1::text[], $2::text[], $3::text[], $4::jsonb[], $5::bytea[]) into (exchange,
// routing_key, message_id, headers, body): InsertMany's, or one that writes the rows the
// messages announce in the same statement.
type Columns struct {
	Exchanges, RoutingKeys, MessageIDs, Headers []string
	Bodies                                      [][]byte
}

// ColumnsOf returns msgs' Columns, their headers made safe first (SafeHeaders).
func ColumnsOf(msgs []broker.Message) (Columns, error) {
	n := len(msgs)
	c := Columns{make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([][]byte, n)}
	for i, m := range msgs {
		h, err := json.Marshal(SafeHeaders(m.Headers))
		if err != nil {
			return Columns{}, fmt.Errorf("outbox: encode headers: %w", err)
		}
		c.Exchanges[i], c.RoutingKeys[i], c.MessageIDs[i], c.Headers[i], c.Bodies[i] = m.Exchange, m.RoutingKey, m.MessageID, string(h), m.Body
		if m.Body == nil {
			c.Bodies[i] = []byte{}
		}
	}
	return c, nil
}

// SafeHeaders returns headers that can be stored and published whatever their source (a
// foreign message's headers end up in dead letters): names and values cleaned of NUL and
// invalid UTF-8, names clipped to 255 bytes, values to MaxHeaderValueBytes, and, past
// MaxHeaderBytes in all, headers dropped: others' first, then ours, the trace context last.
func SafeHeaders(headers map[string]string) map[string]string {
	out := make(map[string]string, len(headers))
	keys := slices.SortedFunc(maps.Keys(headers), func(a, b string) int {
		return cmp.Or(cmp.Compare(keepRank(a), keepRank(b)), cmp.Compare(a, b))
	})
	size := 0
	for _, k := range keys {
		name, value := job.SafeText(k, 255), job.SafeText(headers[k], MaxHeaderValueBytes)
		if size += len(name) + len(value) + 8; size > MaxHeaderBytes {
			break
		}
		out[name] = value
	}
	return out
}

// keepRank orders headers by how much they matter: the trace context, then ours, then others.
func keepRank(name string) int {
	switch {
	case name == "traceparent" || name == "tracestate":
		return 0
	case strings.HasPrefix(name, "x-careerops-"):
		return 1
	}
	return 2
}

// Backlog is the state of the outbox.
type Backlog struct {
	// Waiting counts the rows waiting to be published, Parked those an operator must replay.
	Waiting, Parked int64
	// OldestDue is how long the oldest due row has waited (0: none is due).
	OldestDue time.Duration
}

// ReadBacklog reads the outbox's Backlog.
func ReadBacklog(ctx context.Context, db Querier) (Backlog, error) {
	var b Backlog
	return b, scanBacklog(db.QueryRow(ctx, backlogSQL), &b)
}

// QueueBacklog queues ReadBacklog's statement in batch; *b is set as batch's results are read.
func QueueBacklog(batch *pgx.Batch, b *Backlog) {
	batch.Queue(backlogSQL).QueryRow(func(row pgx.Row) error { return scanBacklog(row, b) })
}

const backlogSQL = `
	SELECT count(*) FILTER (WHERE parked_at IS NULL), count(*) FILTER (WHERE parked_at IS NOT NULL),
	       coalesce(extract(epoch FROM now() - min(available_at) FILTER (WHERE parked_at IS NULL AND available_at <= now())), 0)::float8
	FROM outbox_messages`

func scanBacklog(row pgx.Row, b *Backlog) error {
	var seconds float64
	if err := row.Scan(&b.Waiting, &b.Parked, &seconds); err != nil {
		return fmt.Errorf("outbox: backlog: %w", err)
	}
	b.OldestDue = time.Duration(seconds * float64(time.Second))
	return nil
}

// Querier runs queries: a pool, a connection or a transaction.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// ParkedRow is a message the relay gave up on.
type ParkedRow struct {
	ID                   int64
	Exchange, RoutingKey string
	MessageID, LastError string
	Attempts             int
	CreatedAt, ParkedAt  time.Time
}

// ListParked lists up to limit parked rows, oldest first.
func ListParked(ctx context.Context, db Querier, limit int) ([]ParkedRow, error) {
	rows, err := db.Query(ctx, `
		SELECT id, exchange, routing_key, message_id, coalesce(last_error, ''), publish_attempts, created_at, parked_at
		FROM outbox_messages WHERE parked_at IS NOT NULL ORDER BY parked_at, id LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("outbox: list parked: %w", err)
	}
	parked, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ParkedRow, error) {
		var p ParkedRow
		err := r.Scan(&p.ID, &p.Exchange, &p.RoutingKey, &p.MessageID, &p.LastError, &p.Attempts, &p.CreatedAt, &p.ParkedAt)
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("outbox: list parked: %w", err)
	}
	return parked, nil
}

// Replay puts the parked row id (0: every parked row) back in line with a fresh attempt budget
// and wakes the relays of every process. It returns how many rows it replayed.
func Replay(ctx context.Context, db Querier, id int64) (int64, error) {
	tag, err := db.Exec(ctx, `
		UPDATE outbox_messages SET parked_at = NULL, publish_attempts = 0, available_at = now()
		WHERE parked_at IS NOT NULL AND ($1 = 0 OR id = $1)`, id)
	if err != nil {
		return 0, fmt.Errorf("outbox: replay: %w", err)
	}
	if tag.RowsAffected() > 0 {
		if _, err := db.Exec(ctx, `SELECT pg_notify($1, '')`, database.NotifyChannel); err != nil {
			return tag.RowsAffected(), fmt.Errorf("outbox: wake the relays: %w", err)
		}
	}
	return tag.RowsAffected(), nil
}
