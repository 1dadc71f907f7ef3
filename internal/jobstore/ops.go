package jobstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/careerops/jobs/internal/job"
)

// CountByStatus counts the jobs of every user by status, every status present (0 when none).
func (s *Store) CountByStatus(ctx context.Context) (map[job.Status]int, error) {
	rows, err := s.pool.Query(ctx, `SELECT status, count(*) FROM cover_letter_jobs GROUP BY status`)
	if err != nil {
		return nil, fmt.Errorf("jobstore: count by status: %w", err)
	}
	counts := map[job.Status]int{
		job.StatusPending: 0, job.StatusProcessing: 0, job.StatusCompleted: 0, job.StatusFailed: 0, job.StatusCancelled: 0,
	}
	var (
		status job.Status
		n      int
	)
	if _, err := pgx.ForEachRow(rows, []any{&status, &n}, func() error {
		counts[status] = n
		return nil
	}); err != nil {
		return nil, fmt.Errorf("jobstore: count by status: %w", err)
	}
	return counts, nil
}

// RecentFailures returns the last limit jobs of any user that failed, the latest first.
func (s *Store) RecentFailures(ctx context.Context, limit int) ([]Job, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+jobColumns+` FROM cover_letter_jobs
		WHERE status = 'failed' ORDER BY updated_at DESC, id DESC LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("jobstore: recent failures: %w", err)
	}
	jobs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Job, error) { return scanJob(r) })
	if err != nil {
		return nil, fmt.Errorf("jobstore: recent failures: %w", err)
	}
	return jobs, nil
}

// FindOrAddUser returns the id of the user with email, creating the user if there is none.
// Concurrent calls for one email agree on one user.
func (s *Store) FindOrAddUser(ctx context.Context, email string) (int64, error) {
	for range 100 {
		var id int64
		// ON CONFLICT covers the email only: an id the sequence hands out that is already
		// taken (users first seen in other services' messages keep their own ids) is a
		// users_pkey violation, after which the next id is tried, as AddUser does.
		err := s.pool.QueryRow(ctx, `INSERT INTO users (email) VALUES ($1) ON CONFLICT (email) DO NOTHING RETURNING id`, email).Scan(&id)
		var pgErr *pgconn.PgError
		switch {
		case err == nil:
			return id, nil
		case errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == "users_pkey":
			continue
		case !errors.Is(err, pgx.ErrNoRows):
			return 0, fmt.Errorf("jobstore: find or add user: %w", err)
		}
		// The email exists. Each statement sees the rows committed before it, so this one
		// sees the user that made the insert do nothing, unless it was deleted meanwhile.
		err = s.pool.QueryRow(ctx, `SELECT id FROM users WHERE email = $1`, email).Scan(&id)
		if err == nil {
			return id, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return 0, fmt.Errorf("jobstore: find or add user: %w", err)
		}
	}
	return 0, errors.New("jobstore: find or add user: no free id")
}
