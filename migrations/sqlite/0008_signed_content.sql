-- The identity of a received package's signed content: SHA-256 (hex) of the canonical SignedInfo
-- its signature verified over (dsig/verify.rs, `signed_identity`). A document received again
-- under the same (sender, DocumentId, business type) is a repeat when this matches, whatever its
-- bytes (re-wrapped base64, comments, unsigned KeyInfo parts); other signed content is
-- DUPLICATE_CONFLICT. NULL for packages this node signed itself and for rows stored before this
-- migration (those are still compared by `sha256`).
ALTER TABLE messages ADD COLUMN signed_content TEXT
    CHECK (signed_content IS NULL OR length(signed_content) = 64);
