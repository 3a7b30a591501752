-- The journal: every event this component appends, in commit order, and the outbox state of
-- each (published_at stays NULL until the broker has acknowledged the event).
CREATE TABLE event_journal (
    -- Global order of appends; the relay publishes in this order.
    position     INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id     TEXT    NOT NULL UNIQUE,
    aggregate_id TEXT    NOT NULL,
    -- 1, 2, 3… per aggregate: the aggregate's version after this event.
    sequence     BIGINT  NOT NULL,
    event_type   TEXT    NOT NULL,
    -- Full topic name, prefix included.
    topic        TEXT    NOT NULL,
    -- The event with its envelope as one flat JSON object (the shape kcat users write).
    event_json   TEXT    NOT NULL,
    -- Epoch milliseconds: when the event happened, when it was appended, when the broker
    -- acknowledged it.
    occurred_at  BIGINT  NOT NULL,
    recorded_at  BIGINT  NOT NULL,
    published_at BIGINT,
    UNIQUE (aggregate_id, sequence)
);

-- What the relay still has to publish; small, as published rows leave it.
CREATE INDEX event_journal_unpublished ON event_journal (position) WHERE published_at IS NULL;
