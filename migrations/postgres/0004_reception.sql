-- Tổng quan's Chờ tiếp nhận and Chậm tiếp nhận, and the clerk's lists behind them, as index
-- reads rather than scans of the whole history (src/node/read/reception.rs). The SQLite
-- migration 0013_reception.sql says why; the same here.
CREATE INDEX inbox_awaiting ON inbox (recipient, id)
    WHERE revoked = 0 AND (current_status IS NULL OR current_status NOT BETWEEN 2 AND 6);

-- 0/1, bound and read as i64, as `inbox.revoked`. Derived from `statuses`, kept by triggers.
ALTER TABLE deliveries ADD COLUMN awaiting BIGINT NOT NULL DEFAULT 0 CHECK (awaiting IN (0, 1));

UPDATE deliveries d SET awaiting = 1
FROM messages m
WHERE m.id = d.message_id AND m.direction = 'out' AND m.kind = 'document'
  AND NOT EXISTS (
      SELECT 1 FROM statuses s
      WHERE s.document_sender = m.sender AND s.document_id = m.document_id
        AND s.reporter = d.recipient AND s.code BETWEEN 2 AND 6);

CREATE FUNCTION deliveries_awaiting_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.awaiting := CASE WHEN EXISTS (
        SELECT 1 FROM messages m
        WHERE m.id = NEW.message_id AND m.direction = 'out' AND m.kind = 'document'
          AND NOT EXISTS (
              SELECT 1 FROM statuses s
              WHERE s.document_sender = m.sender AND s.document_id = m.document_id
                AND s.reporter = NEW.recipient AND s.code BETWEEN 2 AND 6)) THEN 1 ELSE 0 END;
    RETURN NEW;
END;
$$;

CREATE TRIGGER deliveries_awaiting_insert BEFORE INSERT ON deliveries
    FOR EACH ROW EXECUTE FUNCTION deliveries_awaiting_insert();

CREATE FUNCTION deliveries_awaiting_taken() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE deliveries SET awaiting = 0
    WHERE awaiting = 1 AND recipient = NEW.reporter
      AND message_id IN (SELECT id FROM messages
                         WHERE direction = 'out' AND kind = 'document'
                           AND sender = NEW.document_sender AND document_id = NEW.document_id);
    RETURN NULL;
END;
$$;

CREATE TRIGGER deliveries_awaiting_taken AFTER INSERT ON statuses
    FOR EACH ROW WHEN (NEW.code BETWEEN 2 AND 6) EXECUTE FUNCTION deliveries_awaiting_taken();

CREATE INDEX deliveries_awaiting ON deliveries (delivered_at, message_id)
    WHERE state = 'delivered' AND awaiting = 1;
