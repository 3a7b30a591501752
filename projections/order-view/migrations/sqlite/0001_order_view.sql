-- The order view: every order as readers see it, and the events that made up its saga.
-- Rows hold only what the events say (their own timestamps, never the clock), so a view
-- rebuilt from the topics equals the live one row for row.

-- One row per order. A status change may arrive before the order.created it follows (the
-- topics are not ordered among each other): the row then exists with its status and no
-- creation fields until order.created fills them.
CREATE TABLE order_view (
    order_id TEXT PRIMARY KEY,
    -- From order.created; NULL until it has arrived.
    user_id TEXT,
    -- A decided order (CONFIRMED or CANCELLED) never goes back to PENDING.
    status TEXT NOT NULL CHECK (status IN ('PENDING', 'CONFIRMED', 'CANCELLED')),
    -- Why it was cancelled (order.cancelled's reason).
    reason TEXT,
    -- From order.created.
    total_cents BIGINT,
    currency TEXT,
    -- The payment order.confirmed names.
    payment_id TEXT,
    -- From order.created: a JSON array of {product_id, quantity, unit_price: {cents, currency}}.
    lines TEXT,
    -- Epoch milliseconds: order.created's created_at.
    created_at BIGINT,
    -- Epoch milliseconds: the occurred_at of the latest event that changed the row.
    updated_at BIGINT NOT NULL
);

-- A customer's orders, newest first.
CREATE INDEX order_view_by_user ON order_view (user_id, created_at DESC, order_id);

-- Every event about an order, from the orders, inventory and payments topics.
CREATE TABLE order_timeline (
    order_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    -- The dotted event type, e.g. inventory.updated.
    event_type TEXT NOT NULL,
    -- What happened: CREATED, RESERVED, COMPLETED, CONFIRMED, …
    step TEXT NOT NULL,
    -- The service that owns the event's topic: orders, inventory or payments.
    service TEXT NOT NULL,
    -- Epoch milliseconds.
    occurred_at BIGINT NOT NULL,
    PRIMARY KEY (order_id, event_id)
);
