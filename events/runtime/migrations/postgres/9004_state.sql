-- A service's current state, one row per aggregate (kind + id), as JSON, with an optimistic
-- version: every change is a conditional update, so two decisions on one aggregate cannot
-- both commit. Changed in the same transaction as the journal append of its events.
CREATE TABLE aggregate_state (
    kind       TEXT   NOT NULL,
    id         TEXT   NOT NULL,
    version    BIGINT NOT NULL,
    state      TEXT   NOT NULL,
    -- Epoch milliseconds.
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (kind, id)
);

-- Values that must be unique across aggregates (an email, a SKU): the owner holds the claim.
CREATE TABLE unique_claims (
    kind  TEXT NOT NULL,
    value TEXT NOT NULL,
    owner TEXT NOT NULL,
    PRIMARY KEY (kind, value)
);

-- Work due at a time (a saga deadline, a pending charge): one row per kind + id.
CREATE TABLE timers (
    kind   TEXT   NOT NULL,
    id     TEXT   NOT NULL,
    -- Epoch milliseconds.
    due_at BIGINT NOT NULL,
    PRIMARY KEY (kind, id)
);

CREATE INDEX timers_due ON timers (kind, due_at);
