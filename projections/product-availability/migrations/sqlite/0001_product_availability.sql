-- Product availability: each product's current price and its stock figures, the reservations
-- of the orders that moved them, and every move. Rows hold only what the events say (their
-- own timestamps, never the clock), so a view rebuilt from the topics equals the live one
-- row for row.

-- One row per product. Stock may arrive before the product.created it follows (the topics
-- are not ordered among each other): the row then exists with its figures and no catalog
-- fields until product.created fills them.
CREATE TABLE product_availability (
    product_id TEXT PRIMARY KEY,
    -- From the latest product.created (by occurred_at, then event id); NULL until one has
    -- arrived.
    sku TEXT,
    name TEXT,
    -- Epoch milliseconds: that product.created's occurred_at, and its event id.
    created_at BIGINT,
    created_event_id TEXT,
    -- The price of the latest product.created or product.price_changed (by occurred_at, then
    -- event id), the epoch milliseconds it occurred at and its event id.
    price_cents BIGINT,
    currency TEXT,
    price_at BIGINT,
    price_event_id TEXT,
    -- Sums of the moves below: received = available + reserved + sold once every event has
    -- arrived.
    received BIGINT NOT NULL,
    available BIGINT NOT NULL,
    reserved BIGINT NOT NULL,
    sold BIGINT NOT NULL,
    -- Epoch milliseconds: the latest occurred_at of the events applied to the row.
    updated_at BIGINT NOT NULL
);

-- Where each order's reservation stands, as its inventory.updated events say: what decides
-- whether a release or a sale moves stock.
CREATE TABLE product_availability_reservation (
    order_id TEXT PRIMARY KEY,
    status TEXT NOT NULL CHECK (status IN ('RESERVED', 'REJECTED', 'RELEASED', 'SOLD')),
    -- A JSON object: units by product id.
    units TEXT NOT NULL
);

-- What each inventory.updated moved for each product: recorded once, so that an event
-- applied again moves nothing.
CREATE TABLE product_availability_move (
    product_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    -- RESTOCKED, ADJUSTED, RESERVED, RELEASED or SOLD.
    change TEXT NOT NULL,
    received BIGINT NOT NULL,
    available BIGINT NOT NULL,
    reserved BIGINT NOT NULL,
    sold BIGINT NOT NULL,
    -- Epoch milliseconds.
    occurred_at BIGINT NOT NULL,
    PRIMARY KEY (product_id, event_id)
);
