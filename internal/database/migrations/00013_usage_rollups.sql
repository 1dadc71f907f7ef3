-- +goose Up
-- Usage and cost rollups (internal/analytics, the analytics.process kind): finished jobs of
-- every kind folded per hour and per UTC day (grain), by user, kind, model and outcome (the
-- job's final status). user_id 0 is all users together and model '*' all models together:
-- percentiles do not add up, so the rows a query may ask for are computed from the jobs
-- themselves (GROUPING SETS), never merged. A bucket is recomputed whole, in one
-- transaction, whenever a job finished in it since the last run (less a margin): re-running
-- changes nothing, and a late commit lands in the next run. No foreign key to users: the
-- totals outlive retention and a user's erasure.
CREATE TABLE usage_rollups (
    grain             TEXT NOT NULL CHECK (grain IN ('hour', 'day')),
    bucket            TIMESTAMPTZ NOT NULL,
    user_id           BIGINT NOT NULL,
    kind              TEXT NOT NULL,
    model             TEXT NOT NULL,
    outcome           TEXT NOT NULL CHECK (outcome IN ('completed', 'failed', 'cancelled')),
    jobs              BIGINT NOT NULL,
    prompt_tokens     BIGINT NOT NULL,
    completion_tokens BIGINT NOT NULL,
    -- Estimated from the price table in force when the bucket was last computed, in
    -- millionths of the currency unit.
    cost_micros       BIGINT NOT NULL,
    -- Attempts after each job's first.
    retries           BIGINT NOT NULL,
    -- Time from request (created_at) to the end (completed_at), in milliseconds.
    p50_ms            DOUBLE PRECISION NOT NULL,
    p95_ms            DOUBLE PRECISION NOT NULL,
    computed_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (grain, bucket, user_id, kind, model, outcome)
);
-- A user's own usage (GET /api/me/usage); all users together (the ops charts, the metrics).
CREATE INDEX usage_rollups_user_idx ON usage_rollups (user_id, grain, bucket) WHERE user_id <> 0;
CREATE INDEX usage_rollups_all_users_idx ON usage_rollups (grain, bucket) WHERE user_id = 0;

-- How far the rollups have seen: the start of the last run's transaction (NULL: never ran).
CREATE TABLE usage_rollup_state (
    name       TEXT PRIMARY KEY,
    seen_until TIMESTAMPTZ,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
INSERT INTO usage_rollup_state (name) VALUES ('usage');

-- +goose Down
DROP TABLE usage_rollup_state;
DROP TABLE usage_rollups;
