-- +goose NO TRANSACTION
-- +goose Up
-- Scheduled tasks (internal/schedule): the tasks the workers run, as they last declared them,
-- and one row per task and slot. A slot runs once across every worker replica: the replica
-- whose INSERT of (task, slot) wins enqueues the slot's job, in the same transaction; a slot
-- whose previous job had not finished is recorded as skipped.
CREATE TABLE IF NOT EXISTS schedules (
    task       TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    cron       TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS schedule_runs (
    task         TEXT NOT NULL,
    slot         TIMESTAMPTZ NOT NULL,
    outcome      TEXT NOT NULL CHECK (outcome IN ('enqueued', 'skipped')),
    -- The slot's job (enqueued), or the unfinished job that made it skip.
    job_id       TEXT,
    -- The worker process whose INSERT won.
    scheduled_by TEXT NOT NULL DEFAULT '',
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (task, slot)
);

-- The user of system work (scheduled jobs): a user row like any other, so that jobs keep
-- their NOT NULL user; nobody signs in as it. Its id is fixed far past the sequence (2^53 - 1,
-- the largest a JavaScript client reads exactly), so no other user's id moves.
INSERT INTO users (id, email) VALUES (9007199254740991, 'system@careerops.invalid') ON CONFLICT DO NOTHING;

-- Retention (maintenance.retention) deletes finished jobs oldest first, in small batches:
-- these indexes find them without scanning the tables. Built concurrently: the tables may be
-- large and in use.
CREATE INDEX CONCURRENTLY IF NOT EXISTS cover_letter_jobs_finished_idx ON cover_letter_jobs (completed_at)
    WHERE status IN ('completed', 'failed', 'cancelled');
CREATE INDEX CONCURRENTLY IF NOT EXISTS jobs_finished_idx ON jobs (completed_at)
    WHERE status IN ('completed', 'failed', 'cancelled');

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS jobs_finished_idx;
DROP INDEX CONCURRENTLY IF EXISTS cover_letter_jobs_finished_idx;
DELETE FROM users WHERE email = 'system@careerops.invalid'
    AND NOT EXISTS (SELECT 1 FROM jobs WHERE user_id = users.id)
    AND NOT EXISTS (SELECT 1 FROM cover_letter_jobs WHERE user_id = users.id);
DROP TABLE IF EXISTS schedule_runs;
DROP TABLE IF EXISTS schedules;
