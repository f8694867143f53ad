-- The agency registry (sender binding, issue 4): which certificates may sign for an agency code.
-- Managed by operators (admin API, `lienthong registry`); every change is one transaction with
-- its audit record. Versions need not be contiguous: sqlx applies any migration not yet applied.

-- One row per agency code with rules.
CREATE TABLE agency_registry (
    code       TEXT    PRIMARY KEY CHECK (code <> ''),
    name       TEXT    NOT NULL,
    added_by   TEXT    NOT NULL,
    added_at   INTEGER NOT NULL,
    updated_by TEXT    NOT NULL,
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;

-- The rules of an agency, in the order given. `fingerprint`: the SHA-256 of the certificate's
-- DER. `subject`: a certificate issued by the issuer named (by the SHA-256 of the issuer's
-- certificate, or by its exact DN) whose subject attribute equals value.
CREATE TABLE agency_registry_rules (
    code               TEXT    NOT NULL REFERENCES agency_registry (code) ON DELETE CASCADE,
    position           INTEGER NOT NULL,
    kind               TEXT    NOT NULL CHECK (kind IN ('fingerprint', 'subject')),
    sha256             TEXT    CHECK (sha256 IS NULL OR length(sha256) = 64),
    issuer_sha256      TEXT    CHECK (issuer_sha256 IS NULL OR length(issuer_sha256) = 64),
    issuer             TEXT,
    attribute          TEXT,
    value              TEXT,
    note               TEXT,
    PRIMARY KEY (code, position),
    CHECK ((kind = 'fingerprint') = (sha256 IS NOT NULL)),
    CHECK (kind <> 'subject' OR (attribute IS NOT NULL AND value IS NOT NULL
                                 AND (issuer_sha256 IS NOT NULL) <> (issuer IS NOT NULL)))
) WITHOUT ROWID;

-- "Is this certificate registered for another agency?" at every ingest.
CREATE INDEX agency_registry_rules_sha256 ON agency_registry_rules (sha256) WHERE sha256 IS NOT NULL;
