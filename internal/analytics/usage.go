package analytics

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/careerops/jobs/internal/job"
)

// Row is one rollup row: a bucket's finished jobs of one kind and outcome (and user and
// model when the query splits by them).
type Row struct {
	Bucket           time.Time
	UserID           int64 // 0: every user
	Kind, Model      string
	Outcome          string // the jobs' final status: completed, failed (dead-lettered) or cancelled
	Jobs             int64
	PromptTokens     int64
	CompletionTokens int64
	CostMicros       int64
	Retries          int64
	P50Ms, P95Ms     float64
}

// Usage reads the rows q selects, by bucket, user, kind, model and outcome.
func (s *Store) Usage(ctx context.Context, q Query) ([]Row, error) {
	where := `grain = $1 AND bucket >= $2 AND bucket < $3`
	args := []any{q.Grain, q.From, q.To}
	switch {
	case q.UserID != 0:
		where += ` AND user_id = $4`
		args = append(args, q.UserID)
	case q.ByUser:
		where += ` AND user_id <> 0`
	default:
		where += ` AND user_id = 0`
	}
	if q.ByModel {
		where += ` AND model <> '` + AnyModel + `'`
	} else {
		where += ` AND model = '` + AnyModel + `'`
	}
	rows, err := s.pool.Query(ctx, `
		SELECT bucket, user_id, kind, model, outcome, jobs, prompt_tokens, completion_tokens, cost_micros, retries, p50_ms, p95_ms
		FROM usage_rollups WHERE `+where+` ORDER BY bucket, user_id, kind, model, outcome`, args...)
	if err != nil {
		return nil, fmt.Errorf("analytics: read usage: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Row, error) {
		var u Row
		err := r.Scan(&u.Bucket, &u.UserID, &u.Kind, &u.Model, &u.Outcome, &u.Jobs, &u.PromptTokens, &u.CompletionTokens,
			&u.CostMicros, &u.Retries, &u.P50Ms, &u.P95Ms)
		return u, err
	})
	if err != nil {
		return nil, fmt.Errorf("analytics: read usage: %w", err)
	}
	return out, nil
}

// SeenUntil is how far the rollups have seen: jobs that finished before it (less the margin)
// are in them. The zero time: never rolled up.
func (s *Store) SeenUntil(ctx context.Context) (time.Time, error) {
	var t *time.Time
	err := s.pool.QueryRow(ctx, `SELECT seen_until FROM usage_rollup_state WHERE name = 'usage'`).Scan(&t)
	if err != nil {
		return time.Time{}, fmt.Errorf("analytics: read the watermark: %w", err)
	}
	if t == nil {
		return time.Time{}, nil
	}
	return *t, nil
}

// Total is the sum of rows (percentiles aside).
type Total struct {
	Jobs, PromptTokens, CompletionTokens, CostMicros, Retries, DeadLetters int64
}

// Add counts r in t.
func (t *Total) Add(r Row) {
	t.Jobs += r.Jobs
	t.PromptTokens += r.PromptTokens
	t.CompletionTokens += r.CompletionTokens
	t.CostMicros += r.CostMicros
	t.Retries += r.Retries
	t.DeadLetters += r.DeadLetters()
}

// DeadLetters are the row's jobs that failed for good (and were dead-lettered).
func (r Row) DeadLetters() int64 {
	if r.Outcome == string(job.StatusFailed) {
		return r.Jobs
	}
	return 0
}
