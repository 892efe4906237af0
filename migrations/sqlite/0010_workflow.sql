-- Coordination by email (SPEC §8): vendor status with history, the scheduler's record of
-- what ran, bouncing contacts (SPEC §7.5). Same SQL on PostgreSQL.

-- The status of a vendor organization in a case. It was never written before this
-- migration; it is made again to allow `fixed`, a statement without a status yet, and
-- references. `status` NULL: no status given yet (only a statement).
DROP TABLE vendor_status;
CREATE TABLE vendor_status (
    case_id     BIGINT NOT NULL REFERENCES cases(id),
    org_id      BIGINT NOT NULL REFERENCES orgs(id),
    status      TEXT CHECK (status IN ('affected', 'not_affected', 'unknown', 'fixed')),
    statement   TEXT NOT NULL DEFAULT '',
    refs        TEXT NOT NULL DEFAULT '[]',           -- JSON list of URLs
    share       BOOLEAN NOT NULL DEFAULT FALSE,
    encrypted   BOOLEAN NOT NULL DEFAULT FALSE,       -- the statement arrived encrypted
    contact_id  BIGINT REFERENCES contacts(id),       -- who gave it last
    inbound_id  BIGINT REFERENCES inbound_messages(id),
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (case_id, org_id)
);

-- Every status update as it was given: who, when, from which mail.
CREATE TABLE vendor_status_history (
    id          INTEGER PRIMARY KEY,
    case_id     BIGINT NOT NULL REFERENCES cases(id),
    org_id      BIGINT NOT NULL REFERENCES orgs(id),
    status      TEXT,
    statement   TEXT NOT NULL DEFAULT '',
    refs        TEXT NOT NULL DEFAULT '[]',
    share       BOOLEAN NOT NULL DEFAULT FALSE,
    encrypted   BOOLEAN NOT NULL DEFAULT FALSE,
    contact_id  BIGINT REFERENCES contacts(id),
    inbound_id  BIGINT REFERENCES inbound_messages(id),
    at          BIGINT NOT NULL
);
CREATE INDEX vendor_status_history_case ON vendor_status_history (case_id, org_id, id);

-- Scheduled work done, one row per (job, due item): a reminder for (case, organization,
-- day), a daily summary for a date, a notice for a dead outbox item. Written in the
-- transaction that queues the job's messages, so a restart never does it twice.
CREATE TABLE schedule_runs (
    job     TEXT NOT NULL,
    item    TEXT NOT NULL,
    ran_at  BIGINT NOT NULL,
    PRIMARY KEY (job, item)
);

-- Bouncing contacts: since when, and from when failures count again after a coordinator
-- cleared the mark. An outbox item that failed permanently (5xx, or a DSN to its VERP
-- address) is marked so, apart from items dropped without being sent.
ALTER TABLE contacts ADD COLUMN bouncing_since BIGINT;
ALTER TABLE contacts ADD COLUMN bounce_reset_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN permanent_failure BOOLEAN NOT NULL DEFAULT FALSE;
CREATE INDEX outbox_contact_outcome ON outbox (contact_id, updated_at);
