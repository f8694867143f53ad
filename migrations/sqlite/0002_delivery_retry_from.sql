-- When an operator retries a delivery, the outbox's give-up clock restarts from that moment
-- (otherwise a delivery older than give_up_after would fail again at its first new attempt).
ALTER TABLE deliveries ADD COLUMN retry_from INTEGER;
