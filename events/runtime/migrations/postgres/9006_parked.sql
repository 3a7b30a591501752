-- Events a consumer group has set aside for their key: an event that cannot be applied yet
-- (it waits for a fact that has not arrived) is parked here in the same transaction that moves
-- its partition's position past it, and every later event of the same key queues behind it in
-- offset order, while the partition's other keys go on. The head of a key (its lowest offset)
-- is retried on a schedule; once its budget runs out it and the events queued behind it go to
-- the dead-letter topic, in order.
CREATE TABLE consumer_parked (
    consumer_group TEXT NOT NULL,
    topic TEXT NOT NULL,
    partition_id BIGINT NOT NULL,
    record_offset BIGINT NOT NULL,
    -- The key the queue is for: the record key as text ('' for a record without one).
    parked_key TEXT NOT NULL,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    -- The record as it was read, to apply or dead-letter later: key and value in base64
    -- (NULL when absent), headers as a JSON array of [name, base64 value or null].
    record_key TEXT,
    record_value TEXT,
    record_headers TEXT NOT NULL,
    -- Epoch milliseconds of the record's timestamp, if it had one.
    record_timestamp BIGINT,
    -- Why it was set aside: the handler's words, or the event it queues behind.
    reason TEXT NOT NULL,
    -- How often the handler has been tried on it.
    attempts BIGINT NOT NULL,
    -- Epoch milliseconds: when it was parked, when its budget runs out, and when the head of
    -- the key is tried next.
    parked_at BIGINT NOT NULL,
    give_up_at BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    PRIMARY KEY (consumer_group, topic, partition_id, record_offset)
);

CREATE INDEX consumer_parked_by_key
    ON consumer_parked (consumer_group, topic, partition_id, parked_key, record_offset);
