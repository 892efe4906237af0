-- A mail over inbound.max_message_bytes is stored in chunks, never whole in memory
-- (SPEC §3: the raw bytes are kept, the mail is held as `oversize`). Its
-- inbound_messages.raw holds the first chunk only; `size` and `sha256` are the whole mail's.
CREATE TABLE inbound_chunks (
    inbound_id  BIGINT NOT NULL REFERENCES inbound_messages (id),
    seq         BIGINT NOT NULL,
    bytes       BYTEA NOT NULL,
    PRIMARY KEY (inbound_id, seq)
);
