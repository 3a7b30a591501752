-- A partition's owner that cannot make progress (it waits out a database, registry or handler
-- failure) says here that it is alive, so that the other members of its group do not take
-- the standstill for a partition nobody owns and force the group to rebalance.
CREATE TABLE consumer_heartbeats (
    consumer_group TEXT NOT NULL,
    topic TEXT NOT NULL,
    partition_id BIGINT NOT NULL,
    -- Epoch milliseconds of the owner's last sign of life.
    beat_at BIGINT NOT NULL,
    PRIMARY KEY (consumer_group, topic, partition_id)
);
