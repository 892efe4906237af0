-- Ingest integrity (SPEC §3): attempts per stored mail, and at most one effect per mail.

-- How many attempts to process the mail ended without a decision (a panic, or the process
-- died while holding it), and the last failure seen. A mail that failed too often is
-- quarantined as `processing-error` without being parsed again. The attempt in progress
-- holds the mail until `attempt_until` (or until its work is seen to have ended), so that
-- concurrent offers of the same bytes wait for it instead of processing the mail again.
ALTER TABLE inbound_messages ADD COLUMN attempts BIGINT NOT NULL DEFAULT 0;
ALTER TABLE inbound_messages ADD COLUMN last_error TEXT;
ALTER TABLE inbound_messages ADD COLUMN attempt_holder TEXT;
ALTER TABLE inbound_messages ADD COLUMN attempt_until BIGINT;

-- Databases written before these indexes could hold a mail posted twice (concurrent
-- deliveries). Keep the first effect; the later ones stay as they are, marked and unlinked.
UPDATE inbound_messages SET action = 'post-duplicate'
 WHERE action IN ('post', 'open-report') AND message_id IS NOT NULL
   AND id NOT IN (SELECT MIN(id) FROM inbound_messages
                   WHERE action IN ('post', 'open-report') AND message_id IS NOT NULL
                   GROUP BY message_id);
INSERT INTO history (at, kind, post_id, inbound_id, detail)
SELECT created_at, 'post-unlinked', id, inbound_id, 'a second post of the same stored mail'
  FROM posts
 WHERE inbound_id IS NOT NULL
   AND id NOT IN (SELECT MIN(id) FROM posts WHERE inbound_id IS NOT NULL GROUP BY inbound_id);
UPDATE posts SET inbound_id = NULL
 WHERE inbound_id IS NOT NULL
   AND id NOT IN (SELECT MIN(id) FROM posts WHERE inbound_id IS NOT NULL GROUP BY inbound_id);

-- A stored mail makes at most one post, and one Message-ID at most one post or report.
CREATE UNIQUE INDEX posts_one_per_inbound ON posts (inbound_id) WHERE inbound_id IS NOT NULL;
CREATE UNIQUE INDEX inbound_one_effect_per_message_id ON inbound_messages (message_id)
    WHERE action IN ('post', 'open-report');
