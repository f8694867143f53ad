-- Nhật ký kiểm toán filtered by action, newest first from the page's bound, as an index range
-- (as migrations/sqlite/0015_audit_action.sql).
CREATE INDEX audit_action_seq ON audit (action, seq);
