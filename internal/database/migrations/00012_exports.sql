-- +goose Up
-- Exports of a user's data ("my data", POST /api/me/export): written by the data.export job
-- of the same id, downloaded by their owner as one JSON document or a ZIP of the letters as
-- .txt files, for 24 hours after they were asked for; then the api answers 410 and the
-- export kind's hourly task (data.export.expire) deletes the row. A user's erasure
-- (DELETE /api/me) deletes theirs (and the cascade would).
CREATE TABLE exports (
    id            TEXT PRIMARY KEY,
    user_id       BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    -- The data.export job that writes it (its id is the export's).
    job_id        TEXT NOT NULL,
    status        TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'ready')),
    json          BYTEA,
    zip           BYTEA,
    json_bytes    INT,
    zip_bytes     INT,
    cover_letters INT,
    jobs          INT,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    ready_at      TIMESTAMPTZ,
    expires_at    TIMESTAMPTZ NOT NULL DEFAULT now() + interval '24 hours'
);
-- A user's exports, newest first (the open one, erasure).
CREATE INDEX exports_user_created_idx ON exports (user_id, created_at DESC);
-- The hourly removal of expired exports.
CREATE INDEX exports_expires_idx ON exports (expires_at);

-- The ids of erased users (DELETE /api/me), and when: a message of theirs still in a queue
-- at their erasure (another service's, or one published just before) is dropped by the worker
-- rather than dead-lettered with its body (a CV, a job description). Nothing else is kept.
CREATE TABLE erased_users (
    user_id   BIGINT PRIMARY KEY,
    erased_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE erased_users;
DROP TABLE exports;
