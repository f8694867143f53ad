-- The node's store on SQLite. One writer; every write is one transaction that also appends its
-- audit record. Times are Unix milliseconds (UTC). Never edit a migration once shipped: sqlx
-- checks their checksums; add a new one.

-- Every package the node holds, in or out, document or status: the exact signed bytes and what
-- was read from them. Immutable (see the trigger below).
CREATE TABLE messages (
    id                 INTEGER PRIMARY KEY,
    direction          TEXT    NOT NULL CHECK (direction IN ('in', 'out')),
    kind               TEXT    NOT NULL CHECK (kind IN ('document', 'status')),
    -- From/OrganId; for a status package, the reporter.
    sender             TEXT    NOT NULL CHECK (sender <> ''),
    -- The business DocumentId; for a status package, the document it is about.
    document_id        TEXT    NOT NULL CHECK (document_id <> ''),
    business_type      INTEGER CHECK (business_type BETWEEN 0 AND 3),
    status_code        INTEGER CHECK (status_code BETWEEN 1 AND 16),
    code_number        TEXT,
    code_notation      TEXT,
    code_year          INTEGER,
    subject            TEXT,
    sha256             TEXT    NOT NULL CHECK (length(sha256) = 64),
    size               INTEGER NOT NULL,
    signer_subject     TEXT,
    signer_fingerprint TEXT,
    header_json        TEXT    NOT NULL,
    peer               TEXT,
    actor              TEXT    NOT NULL,
    created_at         INTEGER NOT NULL,
    -- Blobs last: list queries never read their overflow pages.
    bytes              BLOB    NOT NULL,
    -- Incoming documents: the signed receipt (01) we answered with, returned again to a repeat.
    receipt            BLOB,
    CHECK ((kind = 'document') = (business_type IS NOT NULL)),
    CHECK ((kind = 'status') = (status_code IS NOT NULL))
);

-- Invariant 2: a received document is stored once per (sender, DocumentId). The business type is
-- part of the key because a revocation or update repeats the original's header and DocumentId.
CREATE UNIQUE INDEX messages_in_document
    ON messages (sender, document_id, business_type)
    WHERE direction = 'in' AND kind = 'document';

-- Số/ký hiệu is unique per issuing agency and year (new documents and replacements; a
-- revocation or update carries the original's number).
CREATE UNIQUE INDEX messages_out_number
    ON messages (sender, code_year, code_number, code_notation)
    WHERE direction = 'out' AND kind = 'document' AND business_type IN (0, 3);

CREATE INDEX messages_document ON messages (sender, document_id);

CREATE TRIGGER messages_immutable BEFORE UPDATE ON messages
BEGIN
    SELECT RAISE(ABORT, 'messages are immutable');
END;

-- Incoming documents, one row per local recipient agency.
CREATE TABLE inbox (
    id                INTEGER PRIMARY KEY,
    message_id        INTEGER NOT NULL REFERENCES messages (id),
    recipient         TEXT    NOT NULL CHECK (recipient <> ''),
    current_status    INTEGER CHECK (current_status BETWEEN 1 AND 16),
    current_status_at INTEGER,
    revoked           INTEGER NOT NULL DEFAULT 0 CHECK (revoked IN (0, 1)),
    created_at        INTEGER NOT NULL,
    UNIQUE (message_id, recipient)
);

CREATE INDEX inbox_recipient ON inbox (recipient, id);

-- Outgoing packages, one row per recipient: the delivery queue, claimed with leases.
CREATE TABLE deliveries (
    id                 INTEGER PRIMARY KEY,
    message_id         INTEGER NOT NULL REFERENCES messages (id),
    recipient          TEXT    NOT NULL CHECK (recipient <> ''),
    route              TEXT    NOT NULL,
    state              TEXT    NOT NULL CHECK (state IN
                           ('queued', 'sending', 'delivered', 'retrying', 'failed', 'rejected', 'cancelled')),
    attempts           INTEGER NOT NULL DEFAULT 0,
    next_attempt_at    INTEGER,
    lease_owner        TEXT,
    lease_until        INTEGER,
    current_attempt_id INTEGER,
    last_error_code    TEXT,
    last_error_message TEXT,
    delivered_at       INTEGER,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    -- The signed receipt (01) that proves delivery.
    receipt            BLOB,
    UNIQUE (message_id, recipient),
    CHECK ((state = 'sending') = (lease_until IS NOT NULL))
);

CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE state IN ('queued', 'retrying');
CREATE INDEX deliveries_lease ON deliveries (lease_until) WHERE state = 'sending';
CREATE INDEX deliveries_state ON deliveries (state, id);
CREATE INDEX deliveries_recipient ON deliveries (recipient, id);

-- Every delivery attempt, kept with its outcome and error.
CREATE TABLE attempts (
    id            INTEGER PRIMARY KEY,
    delivery_id   INTEGER NOT NULL REFERENCES deliveries (id),
    number        INTEGER NOT NULL,
    route         TEXT    NOT NULL,
    lease_owner   TEXT    NOT NULL,
    started_at    INTEGER NOT NULL,
    finished_at   INTEGER,
    outcome       TEXT CHECK (outcome IN ('delivered', 'retry', 'failed', 'expired', 'superseded')),
    error_code    TEXT,
    error_message TEXT
);

CREATE INDEX attempts_delivery ON attempts (delivery_id, id);

-- Processing status history (01-16) per business document and reporting agency; the latest by
-- reported_at is the document's status at that agency. A repeat of the same report is the same
-- row (at-least-once delivery of status packages).
CREATE TABLE statuses (
    id              INTEGER PRIMARY KEY,
    document_sender TEXT    NOT NULL,
    document_id     TEXT    NOT NULL,
    reporter        TEXT    NOT NULL,
    code            INTEGER NOT NULL CHECK (code BETWEEN 1 AND 16),
    description     TEXT    NOT NULL,
    reported_at     INTEGER NOT NULL,
    recorded_at     INTEGER NOT NULL,
    direction       TEXT    NOT NULL CHECK (direction IN ('in', 'out')),
    message_id      INTEGER NOT NULL REFERENCES messages (id),
    UNIQUE (document_sender, document_id, reporter, code, reported_at)
);

CREATE INDEX statuses_latest ON statuses (document_sender, document_id, reporter, reported_at);

-- The yearly số sequence of each agency.
CREATE TABLE number_sequences (
    agency      TEXT    NOT NULL,
    year        INTEGER NOT NULL,
    last_number INTEGER NOT NULL,
    PRIMARY KEY (agency, year)
) WITHOUT ROWID;

-- A clerk system retrying a POST with the same key gets the same document back.
CREATE TABLE idempotency_keys (
    agency     TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    message_id INTEGER NOT NULL REFERENCES messages (id),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (agency, key)
) WITHOUT ROWID;

-- The audit chain (src/audit/hash.rs has the hash rule). AUTOINCREMENT keeps a high-water mark in
-- sqlite_sequence, so deleting the last records is detectable too.
CREATE TABLE audit (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    at          INTEGER NOT NULL,
    actor       TEXT    NOT NULL,
    action      TEXT    NOT NULL,
    entity_kind TEXT    NOT NULL,
    entity_id   TEXT    NOT NULL,
    detail      TEXT    NOT NULL,
    prev_hash   TEXT    NOT NULL,
    hash        TEXT    NOT NULL
);

CREATE INDEX audit_at ON audit (at);

-- Append-only for the application. (Someone with the file can drop these; the chain is what
-- catches that.)
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN
    SELECT RAISE(ABORT, 'audit records are append-only');
END;

CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN
    SELECT RAISE(ABORT, 'audit records are append-only');
END;
