-- +goose NO TRANSACTION
-- +goose Up
-- Open jobs are few however many finished ones the table holds: the ops overview counts
-- them, and the reaper looks for expired leases among them, from this index rather than the
-- whole table. Built concurrently: the table may be large and in use.
CREATE INDEX CONCURRENTLY IF NOT EXISTS cover_letter_jobs_open_idx ON cover_letter_jobs (status, lease_expires_at)
    WHERE status IN ('pending', 'processing');

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS cover_letter_jobs_open_idx;
