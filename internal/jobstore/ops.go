package jobstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

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

// exactCountCap is, on a larger table, how many open or failed jobs of one status are counted
// at most (a fraction of a millisecond through their partial indexes; 5,000 took 1.2 ms of
// the overview on the bench's million-job table); past it, the count shown is the planner's
// estimate, so a deep backlog or a pile of failures does not slow the ops page.
const exactCountCap = 1_000

// CountByStatus counts the jobs by status. On a table of more than exactCountRows rows (by
// the planner's statistics, as fresh as the last ANALYZE), open jobs (pending, processing) and
// failed ones are counted from partial indexes up to exactCountCap each, and estimated past
// it; completed and cancelled ones, which only grow, are always estimated, since counting them
// would read the whole table. One statement: it reads the statistics and counts what they
// allow.
func (s *Store) CountByStatus(ctx context.Context) (StatusCounts, error) {
	return readAlone(ctx, s.pool, QueueCountByStatus)
}

// readAlone sends one queued read as a batch of its own.
func readAlone[T any](ctx context.Context, pool *pgxpool.Pool, queue func(*pgx.Batch, *T)) (T, error) {
	var out T
	b := &pgx.Batch{}
	queue(b, &out)
	return out, pool.SendBatch(ctx, b).Close()
}

// QueueCountByStatus queues CountByStatus's statement in b; *out is set as b's results are read.
func QueueCountByStatus(b *pgx.Batch, out *StatusCounts) {
	b.Queue(`
		SELECT c.reltuples, coalesce(st.most_common_vals::text, '{}')::text[], coalesce(st.most_common_freqs, '{}'),
		       CASE WHEN c.reltuples <= $1
		            THEN (SELECT coalesce(jsonb_object_agg(status, n), '{}') FROM (SELECT status, count(*) AS n FROM cover_letter_jobs GROUP BY status) AS every)
		            ELSE jsonb_build_object(
		                'pending', (SELECT count(*) FROM (SELECT FROM cover_letter_jobs WHERE status = 'pending' LIMIT $2) AS capped),
		                'processing', (SELECT count(*) FROM (SELECT FROM cover_letter_jobs WHERE status = 'processing' LIMIT $2) AS capped),
		                'failed', (SELECT count(*) FROM (SELECT FROM cover_letter_jobs WHERE status = 'failed' LIMIT $2) AS capped))
		       END
		FROM pg_class c
		LEFT JOIN pg_stats st ON st.schemaname = c.relnamespace::regnamespace::text AND st.tablename = c.relname AND st.attname = 'status'
		WHERE c.oid = 'cover_letter_jobs'::regclass`, exactCountRows, exactCountCap+1).QueryRow(func(row pgx.Row) error {
		var (
			rows    float64
			vals    []string
			freqs   []float32
			counted map[job.Status]int
		)
		if err := row.Scan(&rows, &vals, &freqs, &counted); err != nil {
			return fmt.Errorf("jobstore: count by status: %w", err)
		}
		if rows <= exactCountRows { // every status counted
			*out = StatusCounts{Counts: map[job.Status]int{}}
			for _, st := range job.Statuses() {
				out.Counts[st] = counted[st]
			}
			return nil
		}
		*out = shownCounts(counted, estimateCounts(rows, vals, freqs, job.Statuses()), exactCountCap)
		return nil
	})
}

// shownCounts are the counts to show for every status: a status counted up to limit is its
// count; one counted past limit (at least limit+1) or not counted is the estimate (never below
// what was counted), listed as estimated.
func shownCounts(counted, estimates map[job.Status]int, limit int) StatusCounts {
	out := StatusCounts{Counts: map[job.Status]int{}}
	for _, st := range job.Statuses() {
		if n, ok := counted[st]; ok && n <= limit {
			out.Counts[st] = n
			continue
		}
		out.Counts[st] = max(estimates[st], counted[st])
		out.Estimated = append(out.Estimated, st)
	}
	return out
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

// Failure is a failed job as the ops overview lists it.
type Failure struct {
	ID          string
	UserID      int64
	Error       string
	TraceParent string
	UpdatedAt   time.Time
}

// RecentFailures returns the last limit jobs of any user that failed, the latest first, without
// their texts (a CV, a job description and a letter can be 100 kB each, stored out of line).
func (s *Store) RecentFailures(ctx context.Context, limit int) ([]Failure, error) {
	return readAlone(ctx, s.pool, func(b *pgx.Batch, out *[]Failure) { QueueRecentFailures(b, limit, out) })
}

// QueueRecentFailures queues RecentFailures's statement in b; *out is set as b's results are read.
func QueueRecentFailures(b *pgx.Batch, limit int, out *[]Failure) {
	b.Queue(`SELECT job_id, user_id, coalesce(error_message, ''), coalesce(traceparent, ''), updated_at
		FROM cover_letter_jobs WHERE status = 'failed' ORDER BY updated_at DESC, id DESC LIMIT $1`, limit).Query(func(rows pgx.Rows) error {
		failures, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Failure])
		if err != nil {
			return fmt.Errorf("jobstore: recent failures: %w", err)
		}
		*out = failures
		return nil
	})
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
	return readAlone(ctx, s.pool, QueueCountKinds)
}

// QueueCountKinds queues CountKinds's statement in b; *out is set as b's results are read.
func QueueCountKinds(b *pgx.Batch, out *map[string]map[job.Status]int) {
	b.Queue(`SELECT kind, status, count(*) FROM jobs GROUP BY kind, status`).Query(func(rows pgx.Rows) error {
		kinds := map[string]map[job.Status]int{}
		var (
			kind   string
			status job.Status
			n      int
		)
		_, err := pgx.ForEachRow(rows, []any{&kind, &status, &n}, func() error {
			if kinds[kind] == nil {
				kinds[kind] = map[job.Status]int{}
			}
			kinds[kind][status] = n
			return nil
		})
		if err != nil {
			return fmt.Errorf("jobstore: count kinds: %w", err)
		}
		*out = kinds
		return nil
	})
}
