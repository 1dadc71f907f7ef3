package jobstore

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// RetentionTables are the tables whose finished jobs retention deletes: cover letters (their
// job descriptions, CVs and letters) and the jobs of the other kinds. Rollups and every other
// table are not touched.
func RetentionTables() []string { return []string{CoverLetterTable().Name, "jobs"} }

// DeleteFinished deletes at most batch finished jobs (completed, failed or cancelled) of
// table that completed more than days days ago by PostgreSQL's clock, oldest first, in one
// short transaction: rows another transaction holds are skipped (SKIP LOCKED), nothing waits.
// It returns how many it deleted; fewer than batch means none is left.
func (s *Store) DeleteFinished(ctx context.Context, table string, days, batch int) (int64, error) {
	t := pgx.Identifier{table}.Sanitize()
	tag, err := s.pool.Exec(ctx, `
		DELETE FROM `+t+` WHERE id IN (
			SELECT id FROM `+t+`
			WHERE status IN ('completed', 'failed', 'cancelled') AND completed_at < now() - make_interval(days => $1)
			ORDER BY completed_at
			LIMIT $2
			FOR UPDATE SKIP LOCKED)`, days, batch)
	if err != nil {
		return 0, fmt.Errorf("jobstore: delete finished jobs of %s: %w", table, err)
	}
	return tag.RowsAffected(), nil
}
