-- IMAP source state (SPEC §3 stage 1, §9). PostgreSQL twin of migrations/sqlite (BYTEA for BLOB).

-- One row per (account, mailbox): the UIDVALIDITY last seen, the UID at or below which mail
-- is left alone (backlog = skip), and the highest UID whose mail and every earlier one's is
-- committed. No row: casegate has never polled the mailbox (the backlog guard applies).
CREATE TABLE imap_checkpoints (
    account      TEXT NOT NULL,                   -- imap://user@host:port
    mailbox      TEXT NOT NULL,
    uidvalidity  BIGINT NOT NULL,
    floor_uid    BIGINT NOT NULL DEFAULT 0,
    last_uid     BIGINT NOT NULL DEFAULT 0,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (account, mailbox)
);

-- The instance that polls a mailbox: it holds the row until expires_at and renews it; when
-- it stops renewing, another instance takes the mailbox over.
CREATE TABLE imap_leases (
    account      TEXT NOT NULL,
    mailbox      TEXT NOT NULL,
    holder       TEXT NOT NULL,                   -- host/boot/pid/random of the instance
    acquired_at  BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    PRIMARY KEY (account, mailbox)
);
