-- The agency registry searched by name (the clerk's recipient picker, issue 18): each entry's
-- name folded for searching (Vietnamese diacritics and case dropped, white space made one space)
-- by the store's `fold` in Rust, the same function on both backends — not a database collation.
-- Written with the name on every insert and update. Existing rows are left NULL here and filled
-- by the store when it opens (`registry::fill_folded`): SQL cannot run the Rust function.
ALTER TABLE agency_registry ADD COLUMN name_folded TEXT;
