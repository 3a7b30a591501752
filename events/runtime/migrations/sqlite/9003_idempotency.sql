-- The first successful response to each Idempotency-Key, stored in the transaction that
-- appended the command's events; a repeated key gets this response back.
CREATE TABLE idempotency_keys (
    idempotency_key TEXT    PRIMARY KEY,
    -- SHA-256 (hex) of what identifies the request; a reuse with another request is refused.
    request_hash    TEXT    NOT NULL,
    status          INTEGER NOT NULL,
    -- The JSON body as sent.
    response        TEXT    NOT NULL,
    -- Epoch milliseconds.
    created_at      BIGINT  NOT NULL
);

CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);
