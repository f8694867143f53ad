-- Large packages are kept as files beside the database (store/sqlite/files.rs): such a row has
-- an empty `bytes` and names its file here. NULL: the package is the `bytes` BLOB.
ALTER TABLE messages ADD COLUMN file TEXT;

-- The files rows name, for removing the ones no row names at start.
CREATE INDEX messages_file ON messages (file) WHERE file IS NOT NULL;
