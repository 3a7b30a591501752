-- The saga tracker: every order saga's steps, and where each saga stands.
-- Rows hold only what the events say (their own timestamps, never the clock), so a tracker
-- rebuilt from the topics equals the live one row for row.

-- One row per event of a saga, from the orders, inventory and payments topics. A saga is
-- the events that share a correlation id (an event that states none is put in its order's
-- saga: the correlation id is then the order id).
CREATE TABLE saga_steps (
    correlation_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    -- The dotted event type, e.g. inventory.updated.
    event_type TEXT NOT NULL,
    -- What happened: CREATED, CONFIRMED, CANCELLED (orders); RESERVED, REJECTED, RELEASED,
    -- SOLD (inventory); COMPLETED, FAILED, REFUNDED (payments).
    step TEXT NOT NULL CHECK (step IN ('CREATED', 'CONFIRMED', 'CANCELLED', 'RESERVED',
        'REJECTED', 'RELEASED', 'SOLD', 'COMPLETED', 'FAILED', 'REFUNDED')),
    -- The service that owns the event's topic.
    service TEXT NOT NULL CHECK (service IN ('orders', 'inventory', 'payments')),
    -- The order the event is about.
    order_id TEXT NOT NULL,
    -- The event that caused this one (the envelope's causation_id), if any.
    causation_id TEXT,
    -- Epoch milliseconds: the envelope's occurred_at.
    occurred_at BIGINT NOT NULL,
    PRIMARY KEY (correlation_id, event_id)
);

-- One row per saga, recomputed from the whole set of its steps whenever one is added, so
-- it does not depend on the order the steps arrived in.
CREATE TABLE sagas (
    correlation_id TEXT PRIMARY KEY,
    -- The order of the saga's earliest step.
    order_id TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('running', 'compensating', 'confirmed', 'cancelled')),
    -- The step of the latest event (by occurred_at, then event id).
    step TEXT NOT NULL,
    -- The service that owes the saga's next step; NULL when nothing more is expected.
    waiting_for TEXT CHECK (waiting_for IN ('orders', 'inventory', 'payments')),
    -- Epoch milliseconds: the earliest and the latest occurred_at of its steps.
    started_at BIGINT NOT NULL,
    last_event_at BIGINT NOT NULL,
    -- How many steps it has.
    step_count BIGINT NOT NULL
);

-- Sagas by how long they have been quiet, all of them or those in one state.
CREATE INDEX sagas_by_last_event ON sagas (last_event_at, correlation_id);
CREATE INDEX sagas_by_state ON sagas (state, last_event_at, correlation_id);
