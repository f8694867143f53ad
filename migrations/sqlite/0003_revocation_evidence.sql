-- The revocation status of each certificate of a received package's signer path (signer first,
-- then intermediates), with the OCSP response or CRL that decided it, stored with the message in
-- the ingest transaction. No rows when the policy was `off`.
CREATE TABLE revocation_evidence (
    id           INTEGER PRIMARY KEY,
    message_id   INTEGER NOT NULL REFERENCES messages(id),
    position     INTEGER NOT NULL,         -- 0 = signer, then each intermediate
    subject      TEXT    NOT NULL,
    serial       TEXT    NOT NULL,         -- lowercase hex
    fingerprint  TEXT    NOT NULL,         -- SHA-256 of the certificate, lowercase hex
    policy       TEXT    NOT NULL,         -- require | prefer
    status       TEXT    NOT NULL,         -- good | revoked | unknown
    kind         TEXT,                     -- crl | ocsp; NULL when nothing decided
    source       TEXT,                     -- URL or file
    der          BLOB,                     -- the OCSPResponse or CRL exactly as received
    this_update  TEXT,
    next_update  TEXT,
    produced_at  TEXT,
    note         TEXT,                     -- why the status is unknown
    flagged      INTEGER NOT NULL DEFAULT 0, -- unknown, accepted under prefer
    checked_at   INTEGER NOT NULL,         -- ms since 1970
    UNIQUE (message_id, position)
);
