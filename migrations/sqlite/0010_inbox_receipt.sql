-- Each local recipient of a received document acknowledges for itself (Decree 30/2020 Art. 21):
-- the signed 01 from that agency, kept with its inbox row and answered again to a repeat.
-- NULL for rows stored before this migration: their one receipt is `messages.receipt` (signed
-- by the first recipient). `messages.receipt` still holds the first recipient's receipt.
ALTER TABLE inbox ADD COLUMN receipt BLOB;
