-- Per product: how many restocks were applied, the last one's sequence, and their sum.
CREATE TABLE ledger (
    product_id TEXT PRIMARY KEY,
    applied BIGINT NOT NULL,
    last_sequence BIGINT NOT NULL,
    total BIGINT NOT NULL
);

-- Restocks applied out of their product's order (there must never be any).
CREATE TABLE order_violations (
    event_id TEXT PRIMARY KEY,
    product_id TEXT NOT NULL,
    expected BIGINT NOT NULL,
    got BIGINT NOT NULL
);
