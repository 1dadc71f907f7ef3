-- +goose Up
-- The jobs of every kind without a table of its own (cover letters keep cover_letter_jobs):
-- the same lifecycle columns, the kind, and its arguments and result as JSON.
CREATE TABLE jobs (
    id                  BIGSERIAL PRIMARY KEY,
    kind                TEXT NOT NULL,
    user_id             BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    job_id              TEXT NOT NULL UNIQUE,
    status              TEXT NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'processing', 'completed', 'failed', 'cancelled')),
    args                JSONB NOT NULL,
    result              JSONB,
    error_message       TEXT,
    attempts            INT NOT NULL DEFAULT 0,
    attempts_at_requeue INT NOT NULL DEFAULT 0,
    lease_token         UUID,
    lease_owner         UUID,
    lease_expires_at    TIMESTAMPTZ,
    run_after           TIMESTAMPTZ,
    traceparent         TEXT,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    started_at          TIMESTAMPTZ,
    completed_at        TIMESTAMPTZ
);
-- The reaper's and the ops page's view: a kind's open jobs.
CREATE INDEX jobs_open_idx ON jobs (kind, status, lease_expires_at) WHERE status IN ('pending', 'processing');
-- A user's jobs, newest first ("my data", erasure).
CREATE INDEX jobs_user_created_idx ON jobs (user_id, created_at DESC);
-- Counts by kind and status for the ops page.
CREATE INDEX jobs_kind_status_idx ON jobs (kind, status);

-- +goose Down
DROP TABLE jobs;
