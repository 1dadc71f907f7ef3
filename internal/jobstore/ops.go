package jobstore

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/careerops/jobs/internal/job"
)

// StatusCounts are the jobs of every user by status, every status present (0 when none).
type StatusCounts struct {
	Counts map[job.Status]int
	// Estimated are the statuses whose counts are the planner's estimate, not a count.
	Estimated []job.Status
}

// exactCountRows is the table size (by the planner's statistics) up to which every status is
// counted: a few milliseconds of scan.
const exactCountRows = 20_000

// CountByStatus counts the jobs by status. Open jobs (pending, processing) and failed ones
// are counted from partial indexes, whatever the table's size; on a table of more than
// exactCountRows rows, completed and cancelled ones, which only grow, are estimated from the
// planner's statistics (as fresh as the last ANALYZE), since counting them would read the
// whole table.
func (s *Store) CountByStatus(ctx context.Context) (StatusCounts, error) {
	var (
		rows  float64
		vals  []string
		freqs []float32
	)
	if err := s.pool.QueryRow(ctx, `
		SELECT c.reltuples, coalesce(st.most_common_vals::text, '{}')::text[], coalesce(st.most_common_freqs, '{}')
		FROM pg_class c
		LEFT JOIN pg_stats st ON st.schemaname = c.relnamespace::regnamespace::text AND st.tablename = c.relname AND st.attname = 'status'
		WHERE c.oid = 'cover_letter_jobs'::regclass`).Scan(&rows, &vals, &freqs); err != nil {
		return StatusCounts{}, fmt.Errorf("jobstore: count by status: %w", err)
	}
	query := `SELECT status, count(*) FROM cover_letter_jobs GROUP BY status`
	out := StatusCounts{Counts: map[job.Status]int{
		job.StatusPending: 0, job.StatusProcessing: 0, job.StatusCompleted: 0, job.StatusFailed: 0, job.StatusCancelled: 0,
	}}
	if rows > exactCountRows {
		query = `SELECT status, count(*) FROM cover_letter_jobs WHERE status IN ('pending', 'processing') GROUP BY status
			UNION ALL SELECT 'failed', count(*) FROM cover_letter_jobs WHERE status = 'failed'`
		out.Estimated = []job.Status{job.StatusCompleted, job.StatusCancelled}
		for st, n := range estimateCounts(rows, vals, freqs, out.Estimated) {
			out.Counts[st] = n
		}
	}
	counted, err := s.pool.Query(ctx, query)
	if err != nil {
		return StatusCounts{}, fmt.Errorf("jobstore: count by status: %w", err)
	}
	var (
		status job.Status
		n      int
	)
	if _, err := pgx.ForEachRow(counted, []any{&status, &n}, func() error {
		out.Counts[status] = n
		return nil
	}); err != nil {
		return StatusCounts{}, fmt.Errorf("jobstore: count by status: %w", err)
	}
	return out, nil
}

// estimateCounts estimates the rows of each of statuses from a table's row count and the
// most common values of its status column with their frequencies (0 for a status not among
// them: rarer than any that is).
func estimateCounts(rows float64, vals []string, freqs []float32, statuses []job.Status) map[job.Status]int {
	out := make(map[job.Status]int, len(statuses))
	for _, st := range statuses {
		out[st] = 0
		for i, v := range vals {
			if v == string(st) && i < len(freqs) {
				out[st] = int(math.Round(rows * float64(freqs[i])))
			}
		}
	}
	return out
}

// RecentFailures returns the last limit jobs of any user that failed, the latest first.
func (s *Store) RecentFailures(ctx context.Context, limit int) ([]Job, error) {
	return s.queryJobs(ctx, "recent failures", `SELECT `+jobColumns+` FROM cover_letter_jobs
		WHERE status = 'failed' ORDER BY updated_at DESC, id DESC LIMIT $1`, limit)
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

// CountKinds counts the jobs of the kinds kept in the shared jobs table, by kind and status
// (the statuses a kind has no job in are left out).
func (s *Store) CountKinds(ctx context.Context) (map[string]map[job.Status]int, error) {
	rows, err := s.pool.Query(ctx, `SELECT kind, status, count(*) FROM jobs GROUP BY kind, status`)
	if err != nil {
		return nil, fmt.Errorf("jobstore: count kinds: %w", err)
	}
	out := map[string]map[job.Status]int{}
	var (
		kind   string
		status job.Status
		n      int
	)
	_, err = pgx.ForEachRow(rows, []any{&kind, &status, &n}, func() error {
		if out[kind] == nil {
			out[kind] = map[job.Status]int{}
		}
		out[kind][status] = n
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("jobstore: count kinds: %w", err)
	}
	return out, nil
}
