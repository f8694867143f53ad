-- Nhật ký kiểm toán filtered by action (`delivery.fail`, `console.forbidden`): newest first from
-- the page's bound, as an index range, instead of walking every newer record of other actions
-- (150,000 of them in front of 2,000 failures took 116 ms at p95; examples/console_latency.rs).
CREATE INDEX audit_action_seq ON audit (action, seq);
