-- +goose Up
-- A stream token opens its job's event stream once: the first opening records its id here,
-- on whichever api replica, and a second is refused. Rows outlive the token's expiry only a
-- little; each new record prunes the stale ones.
CREATE TABLE stream_token_uses (
    token_id        TEXT PRIMARY KEY,
    spendable_until TIMESTAMPTZ NOT NULL
);
CREATE INDEX stream_token_uses_until_idx ON stream_token_uses (spendable_until);

-- +goose Down
DROP TABLE stream_token_uses;
