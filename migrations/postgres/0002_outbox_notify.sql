-- Wakes every replica's outbox when a delivery is queued anywhere (LISTEN/NOTIFY).
--
-- Each replica's store LISTENs on `lienthong_outbox` (`deliveries.rs`, spawn_queue_listener)
-- and wakes its outbox on a notification, which then claims what is due; the outbox's poll stays
-- the fallback (a retry whose time came, an expired lease, a listener reconnecting).
--
-- PostgreSQL delivers a notification only when the transaction that sent it commits (so nobody
-- is woken for a write that rolled back, or before it is visible) and sends identical ones of a
-- transaction once: a group commit of many submissions wakes each replica once.
--
-- Statement-level, with the rows the statement left (transition tables, one trigger per
-- event as PostgreSQL requires for them): only a statement that left a delivery `queued` or
-- `retrying` notifies. A claim (→ sending) or an outcome (→ delivered, failed) does not, else
-- every replica would wake at every commit of every other. A `retrying` row may not be due yet;
-- the claim's look at what is due then answers at the cost of one read.

CREATE FUNCTION deliveries_notify_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM new_rows WHERE state IN ('queued', 'retrying')) THEN
        PERFORM pg_notify('lienthong_outbox', '');
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER deliveries_notify_outbox_insert AFTER INSERT ON deliveries
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION deliveries_notify_outbox();

CREATE TRIGGER deliveries_notify_outbox_update AFTER UPDATE ON deliveries
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION deliveries_notify_outbox();
