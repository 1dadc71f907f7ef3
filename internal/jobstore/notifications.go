package jobstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// ErrNoEmailAddress means a user asked for email but none is on file for them (users first
// seen in other services' messages have none).
var ErrNoEmailAddress = errors.New("no email address on file")

// Notifications is a user's choice of notifications.
type Notifications struct {
	// Email is true when the user wants an email when a job of theirs completes or fails.
	Email bool
	// Address is where emails go; nil when none is on file.
	Address *string
}

// Notifications returns userID's choice; ErrUnknownUser if there is no such user.
func (s *Store) Notifications(ctx context.Context, userID int64) (Notifications, error) {
	var n Notifications
	err := s.pool.QueryRow(ctx, `SELECT email_notifications, email FROM users WHERE id = $1`, userID).Scan(&n.Email, &n.Address)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return n, ErrUnknownUser
	case err != nil:
		return n, fmt.Errorf("jobstore: read notifications: %w", err)
	}
	return n, nil
}

// SetEmailNotifications turns userID's emails on or off and returns the choice now stored.
// Turning them on without an address on file is ErrNoEmailAddress; an unknown user is
// ErrUnknownUser. Turning them off always works (the unsubscribe link).
func (s *Store) SetEmailNotifications(ctx context.Context, userID int64, on bool) (Notifications, error) {
	var n Notifications
	err := s.pool.QueryRow(ctx, `
		UPDATE users SET email_notifications = $2
		WHERE id = $1 AND (NOT $2 OR email IS NOT NULL)
		RETURNING email_notifications, email`, userID, on).Scan(&n.Email, &n.Address)
	if !errors.Is(err, pgx.ErrNoRows) {
		if err != nil {
			return n, fmt.Errorf("jobstore: set notifications: %w", err)
		}
		return n, nil
	}
	exists, err := s.UserExists(ctx, userID)
	switch {
	case err != nil:
		return n, err
	case !exists:
		return n, ErrUnknownUser
	}
	return n, ErrNoEmailAddress
}

// EmailRecipients are the addresses to email about a job, by user, of those of users who have
// opted in and have an address; in q, a job's transaction, to decide in the same transaction
// as the outcome.
func EmailRecipients(ctx context.Context, q Querier, users []int64) (map[int64]string, error) {
	rows, err := q.Query(ctx, `SELECT id, email FROM users WHERE id = ANY($1) AND email_notifications AND email IS NOT NULL`, users)
	if err != nil {
		return nil, fmt.Errorf("jobstore: email recipients: %w", err)
	}
	addresses := make(map[int64]string)
	var (
		id      int64
		address string
	)
	if _, err := pgx.ForEachRow(rows, []any{&id, &address}, func() error { addresses[id] = address; return nil }); err != nil {
		return nil, fmt.Errorf("jobstore: email recipients: %w", err)
	}
	return addresses, nil
}

// Querier runs a query: a pool, a connection or a transaction.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// EmailDelivery is a record of one email sent (table email_deliveries).
type EmailDelivery struct {
	MessageID string // the deterministic Message-ID: the key
	JobID     string
	Outcome   string // completed or failed
	UserID    int64
	Recipient string
	SMTPReply string
	SentAt    time.Time
}

// EmailDelivered returns the record of the email with messageID; ok is false if it was never
// recorded as sent.
func EmailDelivered(ctx context.Context, q Querier, messageID string) (d EmailDelivery, ok bool, err error) {
	err = q.QueryRow(ctx, `SELECT message_id, job_id, outcome, user_id, recipient, smtp_reply, sent_at
		FROM email_deliveries WHERE message_id = $1`, messageID).
		Scan(&d.MessageID, &d.JobID, &d.Outcome, &d.UserID, &d.Recipient, &d.SMTPReply, &d.SentAt)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return d, false, nil
	case err != nil:
		return d, false, fmt.Errorf("jobstore: email delivery: %w", err)
	}
	return d, true, nil
}

// RecordEmailDelivery records that d was sent, in q (the email job's completing
// transaction); recorded is false if a record of d.MessageID was there already (a duplicate
// send: see docs/architecture.md, "Email").
func RecordEmailDelivery(ctx context.Context, q Querier, d EmailDelivery) (recorded bool, err error) {
	tag, err := q.Exec(ctx, `
		INSERT INTO email_deliveries (message_id, job_id, outcome, user_id, recipient, smtp_reply)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (message_id) DO NOTHING`,
		d.MessageID, d.JobID, d.Outcome, d.UserID, d.Recipient, d.SMTPReply)
	if err != nil {
		return false, fmt.Errorf("jobstore: record email delivery: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}
