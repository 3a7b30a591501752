-- Read-model versions: which database holds each version of a projection, which one is live
-- (answers queries), and which one the running query API actually serves. Version 1 lives in
-- the projection's own database (this one); a rebuild builds version N in a database of its
-- own and is promoted once it has caught up. Only a projection's main database uses these.

CREATE TABLE projection_versions (
    projection TEXT NOT NULL,
    version BIGINT NOT NULL,
    -- Where the version's tables and consumer offsets are.
    database_url TEXT NOT NULL,
    -- building: being rebuilt; live: answers queries; retired: replaced, kept until dropped;
    -- dropped: its tables are gone.
    state TEXT NOT NULL CHECK (state IN ('building', 'live', 'retired', 'dropped')),
    -- Epoch milliseconds the rebuild started reading from; NULL for the beginning.
    from_millis BIGINT,
    -- Epoch milliseconds.
    created_at BIGINT NOT NULL,
    promoted_at BIGINT,
    PRIMARY KEY (projection, version)
);

-- The version the running query API serves, written by it after it has switched.
CREATE TABLE projection_served (
    projection TEXT PRIMARY KEY,
    version BIGINT NOT NULL,
    -- Epoch milliseconds.
    served_at BIGINT NOT NULL
);
