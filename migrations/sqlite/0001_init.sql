-- casegate schema (SPEC §1). Times are milliseconds since the Unix epoch (UTC).
-- Written in SQL that PostgreSQL also accepts, apart from the identity columns
-- (INTEGER PRIMARY KEY here, BIGINT GENERATED ALWAYS AS IDENTITY there).

CREATE TABLE orgs (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    kind        TEXT NOT NULL CHECK (kind IN ('vendor', 'coordinator', 'reporter')),
    created_at  BIGINT NOT NULL
);

CREATE TABLE org_domains (
    org_id  BIGINT NOT NULL REFERENCES orgs(id),
    domain  TEXT NOT NULL,
    PRIMARY KEY (org_id, domain)
);

CREATE TABLE contacts (
    id            INTEGER PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,           -- stored lowercase
    name          TEXT NOT NULL,
    org_id        BIGINT REFERENCES orgs(id),
    notify        TEXT NOT NULL DEFAULT 'immediate' CHECK (notify IN ('immediate', 'digest', 'none')),
    encrypt_only  BOOLEAN NOT NULL DEFAULT FALSE,
    bouncing      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    BIGINT NOT NULL
);

CREATE INDEX contacts_org ON contacts (org_id);

CREATE TABLE cases (
    id                  INTEGER PRIMARY KEY,
    public_id           TEXT NOT NULL UNIQUE,     -- VU#123456
    title               TEXT NOT NULL,
    state               TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'published', 'closed')),
    embargoed           BOOLEAN NOT NULL DEFAULT FALSE,
    min_assurance       TEXT,
    created_at          BIGINT NOT NULL,
    initial_contact_at  BIGINT,
    public_at           BIGINT
);

CREATE TABLE threads (
    id          INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('discussion', 'private', 'report')),
    case_id     BIGINT REFERENCES cases(id),
    org_id      BIGINT REFERENCES orgs(id),
    report_id   BIGINT,
    created_at  BIGINT NOT NULL
);
CREATE INDEX cases_public_upper ON cases (upper(public_id));
CREATE INDEX threads_case ON threads (case_id);
CREATE INDEX threads_report ON threads (report_id);
CREATE UNIQUE INDEX threads_one_discussion ON threads (case_id) WHERE kind = 'discussion';
CREATE UNIQUE INDEX threads_one_private ON threads (case_id, org_id) WHERE kind = 'private';
CREATE UNIQUE INDEX threads_one_report ON threads (report_id) WHERE kind = 'report';

CREATE TABLE participants (
    id          INTEGER PRIMARY KEY,
    case_id     BIGINT NOT NULL REFERENCES cases(id),
    org_id      BIGINT REFERENCES orgs(id),
    contact_id  BIGINT REFERENCES contacts(id),
    role        TEXT NOT NULL CHECK (role IN ('vendor', 'reporter', 'coordinator')),
    anonymous   BOOLEAN NOT NULL DEFAULT FALSE,
    alias       TEXT NOT NULL,
    added_at    BIGINT NOT NULL,
    notified_at BIGINT,
    CHECK ((org_id IS NULL) <> (contact_id IS NULL))
);
CREATE INDEX participants_case ON participants (case_id);
CREATE UNIQUE INDEX participants_org ON participants (case_id, org_id) WHERE org_id IS NOT NULL;
CREATE UNIQUE INDEX participants_contact ON participants (case_id, contact_id) WHERE contact_id IS NOT NULL;

CREATE TABLE reports (
    id          INTEGER PRIMARY KEY,
    public_id   TEXT NOT NULL UNIQUE,             -- VRF#26-11-BCDFG
    reporter_id BIGINT NOT NULL REFERENCES contacts(id),
    subject     TEXT NOT NULL,
    state       TEXT NOT NULL DEFAULT 'new' CHECK (state IN ('new', 'accepted', 'declined')),
    case_id     BIGINT REFERENCES cases(id),
    assurance   TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE INDEX reports_case ON reports (case_id);
CREATE INDEX reports_public_upper ON reports (upper(public_id));

-- Stage 1: the raw bytes, stored before anything else happens.
CREATE TABLE inbound_messages (
    id            INTEGER PRIMARY KEY,
    raw           BLOB NOT NULL,
    size          BIGINT NOT NULL,
    sha256        TEXT NOT NULL,
    message_id    TEXT,
    source        TEXT NOT NULL,                  -- maildir, stdin, imap, file
    source_ref    TEXT NOT NULL,                  -- maildir file name, mailbox/uidvalidity/uid, ...
    received_at   BIGINT NOT NULL,
    state         TEXT NOT NULL DEFAULT 'received' CHECK (state IN ('received', 'processed')),
    action        TEXT,
    reason        TEXT,
    reason_detail TEXT,
    thread_id     BIGINT,
    processed_at  BIGINT
);
CREATE INDEX inbound_message_id ON inbound_messages (message_id);
CREATE INDEX inbound_sha256 ON inbound_messages (sha256);

CREATE TABLE posts (
    id                INTEGER PRIMARY KEY,
    thread_id         BIGINT NOT NULL REFERENCES threads(id),
    author_id         BIGINT REFERENCES contacts(id),
    source            TEXT NOT NULL CHECK (source IN ('email', 'cli', 'system')),
    body              TEXT NOT NULL,
    inbound_id        BIGINT REFERENCES inbound_messages(id),
    assurance         TEXT NOT NULL,
    pinned            BOOLEAN NOT NULL DEFAULT FALSE,
    direct_recipients TEXT NOT NULL DEFAULT '[]', -- JSON list: had the mail already (§6.5)
    created_at        BIGINT NOT NULL
);
CREATE INDEX posts_thread ON posts (thread_id);

CREATE TABLE attachments (
    id            INTEGER PRIMARY KEY,
    post_id       BIGINT NOT NULL REFERENCES posts(id),
    filename      TEXT NOT NULL,
    content_type  TEXT NOT NULL,
    size          BIGINT NOT NULL,
    sha256        TEXT NOT NULL,
    bytes         BLOB NOT NULL
);
CREATE INDEX attachments_post ON attachments (post_id);

-- Every Message-ID that belongs to a thread: the ones we sent (one per recipient) and the
-- ones of posted inbound mail. In-Reply-To/References are matched against it.
CREATE TABLE message_index (
    message_id  TEXT PRIMARY KEY,
    thread_id   BIGINT NOT NULL REFERENCES threads(id),
    contact_id  BIGINT,                            -- the recipient it was sent to, if ours
    outbox_id   BIGINT,
    created_at  BIGINT NOT NULL
);
CREATE INDEX message_index_thread_contact ON message_index (thread_id, contact_id, created_at, outbox_id);

CREATE TABLE quarantine (
    id                INTEGER PRIMARY KEY,
    inbound_id        BIGINT NOT NULL REFERENCES inbound_messages(id),
    reason            TEXT NOT NULL,
    reason_detail     TEXT NOT NULL,
    candidate_thread  BIGINT,
    state             TEXT NOT NULL DEFAULT 'held' CHECK (state IN ('held', 'released', 'rejected')),
    resolved_at       BIGINT,
    resolution        TEXT,
    created_at        BIGINT NOT NULL
);

-- One row per (post or notice, recipient): rendered bytes, envelope, delivery state (§7).
CREATE TABLE outbox (
    id               INTEGER PRIMARY KEY,
    kind             TEXT NOT NULL,
    post_id          BIGINT,
    report_id        BIGINT,
    thread_id        BIGINT,
    contact_id       BIGINT,
    rcpt             TEXT NOT NULL,
    envelope_from    TEXT NOT NULL,
    message_id       TEXT NOT NULL,
    bytes            BLOB NOT NULL,
    state            TEXT NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'sending', 'sent', 'failed', 'dead')),
    attempts         BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT NOT NULL,
    claimed_until    BIGINT,
    last_reply       TEXT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);
CREATE INDEX outbox_rcpt_kind ON outbox (rcpt, kind, created_at);

CREATE TABLE vendor_status (
    case_id     BIGINT NOT NULL REFERENCES cases(id),
    org_id      BIGINT NOT NULL REFERENCES orgs(id),
    status      TEXT NOT NULL CHECK (status IN ('affected', 'not_affected', 'unknown')),
    statement   TEXT NOT NULL DEFAULT '',
    share       BOOLEAN NOT NULL DEFAULT FALSE,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (case_id, org_id)
);

-- Posts waiting for a contact's daily digest (notify = digest).
CREATE TABLE digest_queue (
    contact_id  BIGINT NOT NULL REFERENCES contacts(id),
    post_id     BIGINT NOT NULL REFERENCES posts(id),
    created_at  BIGINT NOT NULL,
    sent_at     BIGINT,
    PRIMARY KEY (contact_id, post_id)
);

-- Append-only: every ingest, decision, post, status change, send and bounce.
CREATE TABLE history (
    id          INTEGER PRIMARY KEY,
    at          BIGINT NOT NULL,
    kind        TEXT NOT NULL,
    case_id     BIGINT,
    thread_id   BIGINT,
    inbound_id  BIGINT,
    post_id     BIGINT,
    outbox_id   BIGINT,
    detail      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX history_case ON history (case_id);
