package jobstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// UserData is everything kept about one user ("my data"): what an export writes and an
// erasure deletes.
type UserData struct {
	UserID             int64
	Email              *string
	EmailNotifications bool
	CreatedAt          time.Time
	// CoverLetters are the user's cover-letter jobs, oldest first, with their job
	// descriptions, CVs and letters.
	CoverLetters []Job
	// Jobs are the user's jobs of the other kinds (emails, exports), oldest first.
	Jobs []UserJob
	// Emails are the emails sent to the user about their jobs.
	Emails []EmailDelivery
}

// UserJob is a job of a kind kept in the shared jobs table, as an export shows it.
type UserJob struct {
	Kind        string
	ID          string
	Status      string
	Args        json.RawMessage
	Result      json.RawMessage
	Error       string
	CreatedAt   time.Time
	CompletedAt *time.Time
}

// ReadUserData reads everything kept about the user, in one repeatable-read snapshot;
// ErrUnknownUser if there is no such user.
func (s *Store) ReadUserData(ctx context.Context, userID int64) (UserData, error) {
	d := UserData{UserID: userID}
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `SELECT email, email_notifications, created_at FROM users WHERE id = $1`, userID).
			Scan(&d.Email, &d.EmailNotifications, &d.CreatedAt)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrUnknownUser
		}
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT `+jobColumns+` FROM cover_letter_jobs WHERE user_id = $1 ORDER BY created_at, id`, userID)
		if err != nil {
			return err
		}
		if d.CoverLetters, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Job, error) { return scanJob(r) }); err != nil {
			return err
		}
		rows, err = tx.Query(ctx, `SELECT kind, job_id, status, args, coalesce(result, 'null'), coalesce(error_message, ''),
			created_at, completed_at FROM jobs WHERE user_id = $1 ORDER BY created_at, id`, userID)
		if err != nil {
			return err
		}
		if d.Jobs, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (UserJob, error) {
			var j UserJob
			err := r.Scan(&j.Kind, &j.ID, &j.Status, &j.Args, &j.Result, &j.Error, &j.CreatedAt, &j.CompletedAt)
			return j, err
		}); err != nil {
			return err
		}
		rows, err = tx.Query(ctx, `SELECT message_id, job_id, outcome, user_id, recipient, sent_at FROM email_deliveries
			WHERE user_id = $1 ORDER BY sent_at, message_id`, userID)
		if err != nil {
			return err
		}
		d.Emails, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (EmailDelivery, error) {
			var e EmailDelivery
			err := r.Scan(&e.MessageID, &e.JobID, &e.Outcome, &e.UserID, &e.Recipient, &e.SentAt)
			return e, err
		})
		return err
	})
	if err != nil && !errors.Is(err, ErrUnknownUser) {
		return UserData{}, fmt.Errorf("jobstore: read user %d's data: %w", userID, err)
	}
	return d, err
}
