-- Schemas are kept forever, even after every version using them is permanently deleted, so
-- that an id is never handed out twice (a sequence never hands out a value twice).
CREATE TABLE schemas (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    schema_type TEXT NOT NULL,
    -- The canonical text: the parsed schema serialised again, which identifies the schema.
    schema_text TEXT NOT NULL,
    -- Rabin fingerprint of the Parsing Canonical Form, to find candidates by index.
    fingerprint TEXT NOT NULL
);
CREATE INDEX schemas_by_fingerprint ON schemas (fingerprint);

-- The named types a schema takes from other subjects' versions, in the order given.
CREATE TABLE schema_references (
    schema_id BIGINT NOT NULL REFERENCES schemas (id),
    position BIGINT NOT NULL,
    name TEXT NOT NULL,
    subject TEXT NOT NULL,
    version BIGINT NOT NULL,
    PRIMARY KEY (schema_id, position)
);
CREATE INDEX schema_references_by_target ON schema_references (subject, version);

-- One row per version of a subject; `deleted` is 1 once soft-deleted. A permanent delete
-- removes the row.
CREATE TABLE subject_versions (
    subject TEXT NOT NULL,
    version BIGINT NOT NULL,
    schema_id BIGINT NOT NULL REFERENCES schemas (id),
    deleted BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (subject, version)
);
CREATE INDEX subject_versions_by_schema ON subject_versions (schema_id);

-- The compatibility level set with PUT /config (at most one row).
CREATE TABLE global_config (
    singleton BIGINT PRIMARY KEY CHECK (singleton = 1),
    compatibility TEXT NOT NULL
);

-- Compatibility levels set with PUT /config/{subject}.
CREATE TABLE subject_config (
    subject TEXT PRIMARY KEY,
    compatibility TEXT NOT NULL
);
