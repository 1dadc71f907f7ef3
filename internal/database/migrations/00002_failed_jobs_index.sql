-- +goose Up
-- The operations page lists the latest failures on every refresh.
CREATE INDEX cover_letter_jobs_failed_idx ON cover_letter_jobs (updated_at DESC) WHERE status = 'failed';

-- +goose Down
DROP INDEX cover_letter_jobs_failed_idx;
