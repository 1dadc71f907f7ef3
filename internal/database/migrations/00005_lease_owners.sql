-- +goose Up
-- Worker processes send heartbeats; a job's lease names the process that holds it. A
-- redelivered message takes a job over only from a holder that stopped sending heartbeats:
-- one whose broker connection merely dropped still finishes its LLM call and stores it.
CREATE TABLE worker_processes (
    id         UUID PRIMARY KEY,
    name       TEXT NOT NULL DEFAULT '',
    started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    seen_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
ALTER TABLE cover_letter_jobs ADD COLUMN lease_owner UUID;

-- +goose Down
ALTER TABLE cover_letter_jobs DROP COLUMN lease_owner;
DROP TABLE worker_processes;
