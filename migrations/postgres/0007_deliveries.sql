-- Deliveries (SPEC §7.1): an outbox item is stored as the decision (who, which content,
-- what) in the transaction of the post or action that causes it; the outbox worker renders
-- and seals it when it sends, and keeps the bytes it sent. Items stored with bytes already
-- (before this migration) are sent as they are.

-- `full`: the content as the recipient may see it; `notice`: the content-free notice.
ALTER TABLE outbox ADD COLUMN content TEXT NOT NULL DEFAULT 'full' CHECK (content IN ('full', 'notice'));
-- Kind-specific facts fixed at decision time (JSON): a digest's posts, the public date an
-- initial contact announces, the mail an acknowledgement answers.
ALTER TABLE outbox ADD COLUMN payload TEXT;

-- Acknowledgements sent recently, to anyone (the global rate limit).
CREATE INDEX outbox_kind_created ON outbox (kind, created_at);
