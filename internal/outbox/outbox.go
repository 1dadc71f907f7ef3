// Package outbox makes publishing part of a database transaction: Insert writes a message as a
// row in the same transaction as the state change it announces, and a Relay publishes the rows
// to RabbitMQ with publisher confirms, deleting each row only once RabbitMQ has confirmed it.
// A message is therefore published at least once if and only if its transaction commits.
package outbox

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/careerops/jobs/internal/broker"
)

// DBTX is what Insert needs: a transaction, usually.
type DBTX interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// Insert adds m to the outbox, to be published not before availableAt (zero: at once).
func Insert(ctx context.Context, db DBTX, m broker.Message, availableAt time.Time) error {
	headers, err := json.Marshal(m.Headers)
	if err != nil {
		return fmt.Errorf("outbox: encode headers: %w", err)
	}
	if m.Headers == nil {
		headers = []byte("{}")
	}
	if m.Body == nil {
		m.Body = []byte{}
	}
	var at any
	if !availableAt.IsZero() {
		at = availableAt
	}
	_, err = db.Exec(ctx, `
		INSERT INTO outbox_messages (exchange, routing_key, message_id, headers, body, available_at)
		VALUES ($1, $2, $3, $4, $5, coalesce($6, now()))`,
		m.Exchange, m.RoutingKey, m.MessageID, headers, m.Body, at)
	if err != nil {
		return fmt.Errorf("outbox: insert: %w", err)
	}
	return nil
}

// Backlog counts the messages waiting to be published, and the age of the oldest due one.
func Backlog(ctx context.Context, db interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}) (count int64, oldest time.Duration, err error) {
	var seconds float64
	err = db.QueryRow(ctx, `
		SELECT count(*), coalesce(extract(epoch FROM now() - min(available_at) FILTER (WHERE available_at <= now())), 0)::float8
		FROM outbox_messages`).Scan(&count, &seconds)
	if err != nil {
		return 0, 0, fmt.Errorf("outbox: backlog: %w", err)
	}
	return count, time.Duration(seconds * float64(time.Second)), nil
}
