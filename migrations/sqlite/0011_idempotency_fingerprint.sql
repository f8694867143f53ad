-- What an Idempotency-Key was first used for (node::idempotency): the SHA-256 of the request's
-- canonical form, and that form (per-field digests of the metadata, each file's name, type and
-- digest) so a refusal can say what differs. A key reused for another request is refused
-- (IDEMPOTENCY_KEY_REUSED); the same request again gets the original answer.
-- NULL for keys stored before this migration: their request is unknown, so a repeat is answered
-- with the original submission as before (refusing would break a clerk system's retry across the
-- upgrade).
ALTER TABLE idempotency_keys ADD COLUMN request_sha256 TEXT;
ALTER TABLE idempotency_keys ADD COLUMN request TEXT;
