-- Sales: what each order sold, and the figures per product and per day that confirmed
-- orders add up to. Rows hold only what the events say (their own timestamps, never the
-- clock), so a model rebuilt from the topic equals the live one row for row.

-- One row per order, kept until both its order.created and its order.confirmed have arrived
-- (in either order; the topics are not ordered among each other), and afterwards so that a
-- redelivered or repeated event never counts the order twice.
CREATE TABLE sales_orders (
    order_id TEXT PRIMARY KEY,
    -- From order.created: a JSON array of {product_id, quantity, unit_price: {cents,
    -- currency}}; NULL until it has arrived.
    lines TEXT,
    -- From order.created: the order's total.
    total_cents BIGINT,
    currency TEXT,
    -- Epoch milliseconds: order.created's created_at.
    created_at BIGINT,
    -- The first decision in the topic: CONFIRMED (a sale) or CANCELLED (none); NULL while
    -- the order is pending. A later, contradicting decision changes nothing.
    decision TEXT CHECK (decision IN ('CONFIRMED', 'CANCELLED')),
    -- Epoch milliseconds: the decision's confirmed_at or cancelled_at.
    decided_at BIGINT,
    -- 1 once the order is placed and confirmed, and so counted in sales_daily and
    -- sales_days; 0 otherwise.
    counted BIGINT NOT NULL CHECK (counted IN (0, 1))
);

-- What confirmed orders sold of each product on each day (the UTC date of the
-- confirmation), in each currency.
CREATE TABLE sales_daily (
    product_id TEXT NOT NULL,
    -- YYYY-MM-DD.
    day TEXT NOT NULL,
    currency TEXT NOT NULL,
    -- Units sold: the sum of the lines' quantities.
    units BIGINT NOT NULL,
    -- The sum of the lines' quantity × unit price, in minor units of the currency.
    revenue_cents BIGINT NOT NULL,
    -- How many orders had the product in this currency.
    orders BIGINT NOT NULL,
    PRIMARY KEY (product_id, day, currency)
);

-- A period's figures, whatever the product.
CREATE INDEX sales_daily_by_day ON sales_daily (day, currency);

-- How many orders were confirmed each day (an order of several products counts once).
CREATE TABLE sales_days (
    -- YYYY-MM-DD.
    day TEXT PRIMARY KEY,
    orders BIGINT NOT NULL
);
