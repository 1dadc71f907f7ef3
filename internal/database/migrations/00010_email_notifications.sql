-- +goose Up
-- A user's choice to be emailed about their jobs (PATCH /api/me/notifications): off unless
-- they opt in, and turned off by the one-click unsubscribe link.
ALTER TABLE users ADD COLUMN email_notifications BOOLEAN NOT NULL DEFAULT false;

-- One row per email sent (internal/email), written in the transaction that completes the
-- notifications.email job: a redelivered or retried job finds its row and sends nothing.
-- message_id is the deterministic Message-ID "<jobId.outcome@domain>", so a duplicate sent
-- after a crash between the SMTP server's 250 and this row's commit carries the same
-- Message-ID as the first (mail clients and many servers drop it).
CREATE TABLE email_deliveries (
    message_id  TEXT PRIMARY KEY,
    job_id      TEXT NOT NULL,
    outcome     TEXT NOT NULL CHECK (outcome IN ('completed', 'failed')),
    user_id     BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    recipient   TEXT NOT NULL,
    sent_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    smtp_reply  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX email_deliveries_job_id ON email_deliveries (job_id);
CREATE INDEX email_deliveries_user_id ON email_deliveries (user_id);

-- +goose Down
DROP TABLE email_deliveries;
ALTER TABLE users DROP COLUMN email_notifications;
