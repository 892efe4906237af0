-- Outbox claims name their holder (SPEC §7.3, §9): the instance id of the process sending
-- the item (host/boot/pid/random). A restarted process takes back at once the items whose
-- holder is certainly gone (its own earlier run, or a dead process on the same machine)
-- instead of waiting for the claim's lease to run out. PostgreSQL twin of migrations/sqlite (BYTEA for BLOB).
ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
