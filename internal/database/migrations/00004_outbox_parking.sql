-- +goose Up
-- A row the broker keeps refusing (or can never take) is parked after a number of attempts
-- instead of being retried forever; an operator replays it (careeropsctl outbox replay).
ALTER TABLE outbox_messages ADD COLUMN parked_at TIMESTAMPTZ;
DROP INDEX outbox_messages_available_idx;
CREATE INDEX outbox_messages_due_idx ON outbox_messages (available_at, id) WHERE parked_at IS NULL;
CREATE INDEX outbox_messages_parked_idx ON outbox_messages (parked_at, id) WHERE parked_at IS NOT NULL;

-- +goose Down
DROP INDEX outbox_messages_parked_idx;
DROP INDEX outbox_messages_due_idx;
CREATE INDEX outbox_messages_available_idx ON outbox_messages (available_at, id);
ALTER TABLE outbox_messages DROP COLUMN parked_at;
