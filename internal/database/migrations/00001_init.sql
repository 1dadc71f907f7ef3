-- +goose Up
CREATE TABLE users (
    id         BIGSERIAL PRIMARY KEY,
    -- NULL for users first seen through a message published by another service.
    email      TEXT UNIQUE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE cover_letter_jobs (
    id                BIGSERIAL PRIMARY KEY,
    user_id           BIGINT NOT NULL REFERENCES users(id),
    job_id            TEXT NOT NULL UNIQUE,
    status            TEXT NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'processing', 'completed', 'failed', 'cancelled')),
    job_description   TEXT NOT NULL,
    cv_text           TEXT NOT NULL,
    tone              TEXT NOT NULL DEFAULT 'professional',
    cover_letter      TEXT,
    error_message     TEXT,
    attempts          INT NOT NULL DEFAULT 0,
    -- attempts at the last DLQ requeue: the retry budget counts attempts since then.
    attempts_at_requeue INT NOT NULL DEFAULT 0,
    prompt_tokens     INT,
    completion_tokens INT,
    model             TEXT,
    idempotency_key   TEXT,
    request_hash      TEXT,
    -- The worker holding the job and until when; a redelivery after expiry may take it over.
    lease_token       UUID,
    lease_expires_at  TIMESTAMPTZ,
    -- The earliest time a retry may run (backoff).
    run_after         TIMESTAMPTZ,
    -- W3C trace context of the request that created the job.
    traceparent       TEXT,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    started_at        TIMESTAMPTZ,
    completed_at      TIMESTAMPTZ
);

-- The list query: a user's jobs, newest first, optionally by status (keyset paging).
CREATE INDEX cover_letter_jobs_user_created_idx ON cover_letter_jobs (user_id, created_at DESC, id DESC);
CREATE INDEX cover_letter_jobs_user_status_created_idx ON cover_letter_jobs (user_id, status, created_at DESC, id DESC);
CREATE UNIQUE INDEX cover_letter_jobs_idempotency_idx ON cover_letter_jobs (user_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- Transactional outbox: every message the system publishes is first a row here, written in
-- the same transaction as the state change it announces; a relay publishes it with
-- publisher confirms and then deletes it.
CREATE TABLE outbox_messages (
    id           BIGSERIAL PRIMARY KEY,
    exchange     TEXT NOT NULL DEFAULT '',
    routing_key  TEXT NOT NULL,
    message_id   TEXT NOT NULL,
    headers      JSONB NOT NULL DEFAULT '{}',
    body         BYTEA NOT NULL,
    available_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    publish_attempts INT NOT NULL DEFAULT 0,
    last_error   TEXT,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX outbox_messages_available_idx ON outbox_messages (available_at, id);

-- Wake the relays when rows arrive (delivered once per transaction, at commit).
-- +goose StatementBegin
CREATE FUNCTION outbox_messages_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('outbox_messages', '');
    RETURN NULL;
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER outbox_messages_notify AFTER INSERT ON outbox_messages
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_messages_notify();

-- +goose Down
DROP TABLE outbox_messages;
DROP FUNCTION outbox_messages_notify;
DROP TABLE cover_letter_jobs;
DROP TABLE users;
