-- Consumers: where each group stands in each partition, and which events it has taken care of.
-- Both are written in the same transaction as the effects of the records they cover, so an
-- effect and the record of it commit together or not at all.

-- The offset of the next record a group applies in each partition. The database, not Kafka,
-- is where a consumer resumes from.
CREATE TABLE consumer_offsets (
    consumer_group TEXT NOT NULL,
    topic TEXT NOT NULL,
    partition_id BIGINT NOT NULL,
    next_offset BIGINT NOT NULL,
    -- Epoch milliseconds of the last change.
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (consumer_group, topic, partition_id)
);

-- Every event a group has applied or dead-lettered, by event_id: the deduplication key. A
-- record whose event is `applied` here is skipped; a `dead_lettered` one is applied when it
-- comes back (a replay from the dead-letter topic).
CREATE TABLE consumer_processed (
    consumer_group TEXT NOT NULL,
    event_id TEXT NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('applied', 'dead_lettered')),
    -- Where the record that settled it was read.
    topic TEXT NOT NULL,
    partition_id BIGINT NOT NULL,
    record_offset BIGINT NOT NULL,
    -- Epoch milliseconds.
    processed_at BIGINT NOT NULL,
    PRIMARY KEY (consumer_group, event_id)
);

CREATE INDEX consumer_processed_by_time ON consumer_processed (consumer_group, processed_at);
