package llmbudget

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Store keeps budgets in PostgreSQL, in the table llm_budgets: one row per budget, shared by
// every worker replica. Each change is one short transaction that locks the row, so
// concurrent reservers go one after another and never take more than the limits allow; the
// clock is the database's, the same for every replica.
type Store struct {
	pool *pgxpool.Pool
}

// NewStore returns a Store on pool.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Reserve takes one request of tokens from the budget name. The call may start after wait;
// ok is false when that would be longer than maxWait: then no turn was taken, and wait says
// when to come back (see reserve).
func (s *Store) Reserve(ctx context.Context, name string, lim Limits, tokens int, maxWait time.Duration) (wait time.Duration, ok bool, err error) {
	err = s.update(ctx, name, func(st State, now time.Time) State {
		var next State
		next, wait, ok = reserve(st, lim, tokens, now, maxWait)
		return next
	})
	if err != nil {
		return 0, false, fmt.Errorf("llmbudget: reserve from %q: %w", name, err)
	}
	return wait, ok, nil
}

// Settle applies what a reserved call turned out to cost, and what the provider said, to the
// budget name.
func (s *Store) Settle(ctx context.Context, name string, lim Limits, o Outcome) error {
	err := s.update(ctx, name, func(st State, now time.Time) State {
		return settle(st, lim, o, now)
	})
	if err != nil {
		return fmt.Errorf("llmbudget: settle %q: %w", name, err)
	}
	return nil
}

// update runs change on the row of name, locked (and created if missing), and stores its
// result.
func (s *Store) update(ctx context.Context, name string, change func(State, time.Time) State) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var (
			st  State
			now time.Time
		)
		// The upsert locks the row: reservers of one budget wait here for each other.
		err := tx.QueryRow(ctx, `
			INSERT INTO llm_budgets AS b (name) VALUES ($1)
			ON CONFLICT (name) DO UPDATE SET name = b.name
			RETURNING b.requests_at, b.tokens_at, b.paused_until, b.line_at, clock_timestamp()`, name).
			Scan(&st.RequestsAt, &st.TokensAt, &st.PausedUntil, &st.LineAt, &now)
		if err != nil {
			return err
		}
		next := change(st, now)
		if next == st {
			return nil
		}
		_, err = tx.Exec(ctx, `
			UPDATE llm_budgets SET requests_at = $2, tokens_at = $3, paused_until = $4, line_at = $5, updated_at = $6
			WHERE name = $1`, name, next.RequestsAt, next.TokensAt, next.PausedUntil, next.LineAt, now)
		return err
	})
}
