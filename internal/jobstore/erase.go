package jobstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/careerops/jobs/internal/database"
	"github.com/careerops/jobs/internal/job"
)

// Erasure is what erasing a user removed, by table (and the open jobs it cancelled first).
type Erasure struct {
	Cancelled []string         // the ids of the open jobs cancelled (their workers told to stop)
	Deleted   map[string]int64 // rows deleted, by table
}

// ErrErasedUser means a message names a user who was erased: it is dropped, not
// dead-lettered (its body holds their data). It is an ErrUnknownUser.
var ErrErasedUser = fmt.Errorf("%w: erased", ErrUnknownUser)

// ErrSystemUser means the user is the one system work runs as: it cannot be erased.
var ErrSystemUser = errors.New("the system user cannot be erased")

// erasedTables are the tables that keep a user's data, in the order an erasure deletes from
// them (the user's row last): each has a user_id. A table added with a user's data gets its
// line here. In usage_rollups only the user's own rows go: the rows of all users together
// (user_id 0) keep the anonymous totals.
var erasedTables = []string{"cover_letter_jobs", "jobs", "exports", "email_deliveries", "usage_rollups"}

// EraseUser deletes everything kept about the user, in one transaction: their open jobs of
// every kind are cancelled (a worker running one is told to stop, as DELETE
// /api/cover-letter/:jobId does), their messages not yet published are dropped from the
// outbox, their jobs, letters, exports, email records and their user row are deleted, and
// database.UserErasedChannel announces it so that every api replica forgets the user at
// once; their id is kept in erased_users, so that a message of theirs still queued is
// dropped (ErrErasedUser). The user's row is locked first: a job being created for them commits before (and is
// deleted) or fails after, as for a user who never existed; after the erasure nothing can be
// created for them, by the API or by a message. ErrUnknownUser if there is no such user,
// ErrSystemUser for the user of scheduled work.
func (s *Store) EraseUser(ctx context.Context, userID int64) (Erasure, error) {
	e := Erasure{Deleted: map[string]int64{}}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var email *string
		err := tx.QueryRow(ctx, `SELECT email FROM users WHERE id = $1 FOR UPDATE`, userID).Scan(&email)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return ErrUnknownUser
		case err != nil:
			return err
		case email != nil && *email == job.SystemUserEmail:
			return ErrSystemUser
		}
		for _, table := range RetentionTables() { // the tables of jobs: cover letters' and the shared one
			rows, err := tx.Query(ctx, `UPDATE `+table+` SET `+cancelSet+`
				WHERE user_id = $1 AND status IN ('pending', 'processing') RETURNING job_id`, userID)
			if err != nil {
				return err
			}
			ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				return err
			}
			e.Cancelled = append(e.Cancelled, ids...)
		}
		if err := notifyCancelled(ctx, tx, e.Cancelled); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM outbox_messages WHERE headers->>$2 IN (
			SELECT job_id FROM cover_letter_jobs WHERE user_id = $1 UNION ALL SELECT job_id FROM jobs WHERE user_id = $1)`,
			userID, job.HeaderJobID)
		if err != nil {
			return err
		}
		e.Deleted["outbox_messages"] = tag.RowsAffected()
		for _, table := range append(erasedTables, "users") {
			column := "user_id"
			if table == "users" {
				column = "id"
			}
			tag, err := tx.Exec(ctx, `DELETE FROM `+table+` WHERE `+column+` = $1`, userID)
			if err != nil {
				return fmt.Errorf("delete from %s: %w", table, err)
			}
			e.Deleted[table] = tag.RowsAffected()
		}
		if _, err := tx.Exec(ctx, `INSERT INTO erased_users (user_id) VALUES ($1) ON CONFLICT DO NOTHING`, userID); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `SELECT pg_notify($1, $2)`, database.UserErasedChannel, strconv.FormatInt(userID, 10))
		return err
	})
	if err != nil && !errors.Is(err, ErrUnknownUser) && !errors.Is(err, ErrSystemUser) {
		return Erasure{}, fmt.Errorf("jobstore: erase user %d: %w", userID, err)
	}
	return e, err
}
