package jobstore

import (
	"context"
	"fmt"
	"time"
)

// SpendStreamToken records the use of a stream token, which stays recorded until it could no
// longer be accepted anyway. It reports false if the token was used before, by any replica.
func (s *Store) SpendStreamToken(ctx context.Context, tokenID string, spendableUntil time.Time) (bool, error) {
	tag, err := s.pool.Exec(ctx, `
		WITH stale AS (DELETE FROM stream_token_uses WHERE spendable_until < now() - interval '1 minute')
		INSERT INTO stream_token_uses (token_id, spendable_until) VALUES ($1, $2)
		ON CONFLICT (token_id) DO NOTHING`, tokenID, spendableUntil)
	if err != nil {
		return false, fmt.Errorf("jobstore: spend stream token: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}
