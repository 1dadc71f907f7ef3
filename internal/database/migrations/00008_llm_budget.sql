-- +goose Up
-- One row per LLM endpoint's rate budget, shared by every worker replica (internal/llmbudget).
-- Each limit is a GCRA bucket held as one instant: when the bucket would be whole again after
-- every reservation so far; a call may start once that instant is at most a minute ahead.
-- paused_until is set from a 429's Retry-After; line_at is when the last call deferred (its turn
-- too far off to wait for) will have its turn.
CREATE TABLE llm_budgets (
    name         TEXT PRIMARY KEY,
    requests_at  TIMESTAMPTZ NOT NULL DEFAULT 'epoch',
    tokens_at    TIMESTAMPTZ NOT NULL DEFAULT 'epoch',
    paused_until TIMESTAMPTZ NOT NULL DEFAULT 'epoch',
    line_at      TIMESTAMPTZ NOT NULL DEFAULT 'epoch',
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE llm_budgets;
