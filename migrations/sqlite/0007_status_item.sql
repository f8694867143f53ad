-- The business type of the package a status was reported on (edxml::processing): 0 the
-- document itself, 1 its revocation, 2 its update, 3 a replacement. For a 15/16 it names the
-- request answered (0: the sender's 13) — the inbox item for a report made here, the oldest
-- outstanding request for a received one — so that each request is answered once. NULL for
-- processing codes received from a peer, and for rows recorded before this migration.
ALTER TABLE statuses ADD COLUMN on_type INTEGER CHECK (on_type BETWEEN 0 AND 3);
