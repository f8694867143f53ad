-- Tổng quan's Chờ tiếp nhận and Chậm tiếp nhận, and the clerk's lists behind them, as index
-- reads rather than scans of the whole history (src/node/read/reception.rs).
--
-- Received: what an agency has not received yet (no 02-06 from it; not revoked) is a small
-- part of its inbox; a partial index holds just those rows, in list order. Rows whose latest
-- status is a take-back answer (07-16) are in it too: whether they were received is in the
-- history, which the queries read for them alone.
CREATE INDEX inbox_awaiting ON inbox (recipient, id)
    WHERE revoked = 0 AND (current_status IS NULL OR current_status NOT BETWEEN 2 AND 6);

-- Sent: whether the recipient of a delivered document has taken it in is in `statuses`, keyed
-- by the document, not the delivery — finding the deliveries still waiting meant one probe per
-- delivery ever made. `awaiting` (1: an outgoing document whose recipient has reported no
-- 02-06 on it yet) is derived from `statuses` and kept by the triggers below, whatever writes
-- the rows (the store, `store copy`); the audit chain does not vouch for it, `statuses` does.
ALTER TABLE deliveries ADD COLUMN awaiting INTEGER NOT NULL DEFAULT 0 CHECK (awaiting IN (0, 1));

UPDATE deliveries SET awaiting = 1
WHERE EXISTS (
    SELECT 1 FROM messages m
    WHERE m.id = deliveries.message_id AND m.direction = 'out' AND m.kind = 'document'
      AND NOT EXISTS (
          SELECT 1 FROM statuses s
          WHERE s.document_sender = m.sender AND s.document_id = m.document_id
            AND s.reporter = deliveries.recipient AND s.code BETWEEN 2 AND 6));

CREATE TRIGGER deliveries_awaiting_insert AFTER INSERT ON deliveries
WHEN EXISTS (
    SELECT 1 FROM messages m
    WHERE m.id = NEW.message_id AND m.direction = 'out' AND m.kind = 'document'
      AND NOT EXISTS (
          SELECT 1 FROM statuses s
          WHERE s.document_sender = m.sender AND s.document_id = m.document_id
            AND s.reporter = NEW.recipient AND s.code BETWEEN 2 AND 6))
BEGIN
    UPDATE deliveries SET awaiting = 1 WHERE id = NEW.id;
END;

CREATE TRIGGER deliveries_awaiting_taken AFTER INSERT ON statuses
WHEN NEW.code BETWEEN 2 AND 6
BEGIN
    UPDATE deliveries SET awaiting = 0
    WHERE awaiting = 1 AND recipient = NEW.reporter
      AND message_id IN (SELECT id FROM messages
                         WHERE direction = 'out' AND kind = 'document'
                           AND sender = NEW.document_sender AND document_id = NEW.document_id);
END;

-- The delivered documents still waiting, by delivery time (Chậm tiếp nhận: delivered before
-- the end of the working day that has passed).
CREATE INDEX deliveries_awaiting ON deliveries (delivered_at, message_id)
    WHERE state = 'delivered' AND awaiting = 1;
