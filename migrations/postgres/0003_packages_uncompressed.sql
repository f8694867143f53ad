-- Signed packages and receipts are stored out of line without compression (STORAGE EXTERNAL).
--
-- They are XML carrying base64 (attachments, signature values, certificates): PostgreSQL's
-- default TOAST compression (pglz) saves nothing on them — the same 2,800 bench packages of
-- 20 KB took 59 MB either way — but spent about 220 µs trying on every insert, on the
-- group writer's path where every replica waits for it (insert 297 µs → 76 µs per package,
-- measured on PostgreSQL 15, 2 cores). Rows written before this migration keep their form;
-- both read the same.
ALTER TABLE messages ALTER COLUMN bytes SET STORAGE EXTERNAL;
ALTER TABLE messages ALTER COLUMN receipt SET STORAGE EXTERNAL;
ALTER TABLE package_chunks ALTER COLUMN bytes SET STORAGE EXTERNAL;
ALTER TABLE inbox ALTER COLUMN receipt SET STORAGE EXTERNAL;
ALTER TABLE deliveries ALTER COLUMN receipt SET STORAGE EXTERNAL;
