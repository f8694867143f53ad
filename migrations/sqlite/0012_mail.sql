-- The mail bridge (issue 16): where each mailbox has been read to, what every mail taken in
-- became, drafts made from agencies' mail, and when an address was last answered
-- automatically. Every row is written with its audit record (store/sqlite/mail.rs) and
-- cross-checked against the chain by `lienthong audit verify`.

-- Where a mailbox (`user@host/folder`) has been read to. Moves in the same transaction as what
-- the mail at `last_uid` produced: the exactly-once rule of the inbound side. A new
-- UIDVALIDITY replaces the row (the folder's UIDs were reassigned).
CREATE TABLE mail_checkpoints (
    mailbox     TEXT    PRIMARY KEY CHECK (mailbox <> ''),
    uidvalidity INTEGER NOT NULL CHECK (uidvalidity BETWEEN 0 AND 4294967295),
    last_uid    INTEGER NOT NULL CHECK (last_uid BETWEEN 0 AND 4294967295),
    updated_at  INTEGER NOT NULL
) WITHOUT ROWID;

-- Every mail taken in and what it produced; the rows with outcome `quarantined` are the
-- quarantine. Text from the mail is stored as the reader decoded and bounded it (no control
-- characters in the one-line fields: the store refuses them).
CREATE TABLE mail_log (
    id           INTEGER PRIMARY KEY,
    mailbox      TEXT    NOT NULL CHECK (mailbox <> ''),
    uidvalidity  INTEGER NOT NULL CHECK (uidvalidity BETWEEN 0 AND 4294967295),
    uid          INTEGER NOT NULL CHECK (uid BETWEEN 1 AND 4294967295),
    -- The envelope sender; '' for `<>` (a bounce).
    return_path  TEXT    NOT NULL,
    from_addr    TEXT    NOT NULL,
    subject      TEXT    NOT NULL,
    -- `Message-ID:` without its angle brackets.
    message_id   TEXT,
    size         INTEGER NOT NULL CHECK (size >= 0),
    outcome      TEXT    NOT NULL CHECK (outcome IN
                     ('document', 'status', 'draft', 'bounce', 'quarantined')),
    -- Quarantined: the reason's code and its text; bounce: what happened to the delivery and
    -- the bounce's reason.
    code         TEXT,
    reason       TEXT,
    -- What it produced: the package stored (document, status), the draft, the delivery bounced.
    message_ref  INTEGER REFERENCES messages (id),
    draft_ref    INTEGER REFERENCES drafts (id),
    delivery_ref INTEGER REFERENCES deliveries (id),
    -- An automatic reply went to the sender (mail_replies).
    replied      INTEGER NOT NULL DEFAULT 0 CHECK (replied IN (0, 1)),
    taken_at     INTEGER NOT NULL,
    UNIQUE (mailbox, uidvalidity, uid),
    CHECK ((outcome IN ('quarantined', 'bounce')) = (code IS NOT NULL)),
    CHECK ((outcome IN ('quarantined', 'bounce')) = (reason IS NOT NULL)),
    CHECK (message_ref IS NULL OR outcome IN ('document', 'status')),
    CHECK (replied = 0 OR outcome = 'quarantined'),
    CHECK (draft_ref IS NULL OR outcome = 'draft'),
    CHECK (outcome <> 'document' OR message_ref IS NOT NULL),
    CHECK ((outcome = 'bounce') = (delivery_ref IS NOT NULL))
);

-- The quarantine (and any other outcome), newest first: ordered by (outcome, rowid).
CREATE INDEX mail_log_outcome ON mail_log (outcome);

-- A mail met again after its folder's UIDVALIDITY changed is recognised by its Message-ID.
CREATE INDEX mail_log_message_id ON mail_log (mailbox, message_id) WHERE message_id IS NOT NULL;

-- A draft of a local agency, made from a mail of its registered mailbox. Nothing is numbered
-- or signed until a clerk approves it: the submission's own transaction moves it to
-- `approved` with the document (`message_id`); or a clerk discards it, with a reason.
CREATE TABLE drafts (
    id            INTEGER PRIMARY KEY,
    agency        TEXT    NOT NULL CHECK (agency <> ''),
    state         TEXT    NOT NULL CHECK (state IN ('draft', 'approved', 'discarded')),
    -- Prefilled from the subject when it carries them.
    code_number   TEXT,
    code_notation TEXT,
    -- Trích yếu: the rest of the subject.
    summary       TEXT    NOT NULL,
    -- The mail's text body, for the clerk's reference.
    body          TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    decided_at    INTEGER,
    decided_by    TEXT,
    -- Why it was discarded.
    reason        TEXT,
    message_id    INTEGER REFERENCES messages (id),
    mail_log_id   INTEGER NOT NULL UNIQUE REFERENCES mail_log (id),
    CHECK ((state = 'draft') = (decided_at IS NULL)),
    CHECK ((state = 'draft') = (decided_by IS NULL)),
    CHECK ((state = 'approved') = (message_id IS NOT NULL)),
    CHECK ((state = 'discarded') = (reason IS NOT NULL))
);

-- An agency's drafts, newest first, with or without a state: ordered by (…, rowid).
CREATE INDEX drafts_agency ON drafts (agency);
CREATE INDEX drafts_agency_state ON drafts (agency, state);

-- The files of a draft, in the mail's order. Bytes last (list queries never read them).
CREATE TABLE draft_files (
    draft_id     INTEGER NOT NULL REFERENCES drafts (id),
    idx          INTEGER NOT NULL CHECK (idx >= 0),
    name         TEXT    NOT NULL CHECK (name <> ''),
    content_type TEXT    NOT NULL,
    size         INTEGER NOT NULL CHECK (size >= 0),
    sha256       TEXT    NOT NULL CHECK (length(sha256) = 64),
    bytes        BLOB    NOT NULL,
    PRIMARY KEY (draft_id, idx),
    CHECK (length(bytes) = size)
);

-- When an address was last answered automatically (RFC 3834: at most one reply per sender in
-- the configured interval, so two systems cannot start a reply loop). Addresses lowercase.
CREATE TABLE mail_replies (
    address       TEXT    PRIMARY KEY CHECK (address <> ''),
    last_reply_at INTEGER NOT NULL
) WITHOUT ROWID;

-- A mail delivery is delivered on the relay's word (`Store::mark_relayed`): its answer
-- (`250 2.0.0 Ok: queued as …`) is kept on the attempt. NULL for every other attempt.
ALTER TABLE attempts ADD COLUMN reply TEXT;
