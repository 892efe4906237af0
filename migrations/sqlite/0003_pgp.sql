-- OpenPGP (SPEC §5). Times are milliseconds since the Unix epoch (UTC).

-- Certificates of contacts (SPEC §5.4). Imported ones are confirmed; candidates from
-- application/pgp-keys attachments and Autocrypt headers are not, and only encrypt.
CREATE TABLE certs (
    id                INTEGER PRIMARY KEY,
    contact_id        BIGINT NOT NULL REFERENCES contacts(id),
    fingerprint       TEXT NOT NULL,                 -- primary key, uppercase hex
    confirmed         BOOLEAN NOT NULL DEFAULT FALSE,
    source            TEXT NOT NULL CHECK (source IN ('import', 'attachment', 'autocrypt')),
    bytes             BLOB NOT NULL,                 -- the public certificate, binary
    user_ids          TEXT NOT NULL DEFAULT '',      -- addresses in its user IDs, comma-separated
    expiry_warned_at  BIGINT,                        -- when the 14-day warning was given
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    UNIQUE (contact_id, fingerprint)
);
CREATE INDEX certs_fingerprint ON certs (fingerprint);

-- Bumped by every change to certs, so that running processes reload their keyring.
CREATE TABLE keyring_state (
    id          BIGINT PRIMARY KEY CHECK (id = 1),
    generation  BIGINT NOT NULL
);
INSERT INTO keyring_state (id, generation) VALUES (1, 0);

-- The OpenPGP evidence (JSON of pgp::Protection) of a post and of an inbound message;
-- NULL when the mail carried none.
ALTER TABLE posts ADD COLUMN protection TEXT;
ALTER TABLE inbound_messages ADD COLUMN protection TEXT;

-- Every ciphertext opened, by the SHA-256 of its encrypted data packet: the same
-- ciphertext in another thread or from another sender is refused (SPEC §5.2).
CREATE TABLE pgp_ciphertexts (
    sha256      TEXT NOT NULL,
    thread_id   BIGINT,
    sender      TEXT NOT NULL,                       -- lowercase From address
    inbound_id  BIGINT NOT NULL REFERENCES inbound_messages(id),
    created_at  BIGINT NOT NULL
);
CREATE INDEX pgp_ciphertexts_sha256 ON pgp_ciphertexts (sha256);

