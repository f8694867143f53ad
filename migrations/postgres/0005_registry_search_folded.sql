-- The agency registry searched by code or name (the clerk's recipient picker, issue 18): each
-- entry's code and name folded for searching — Vietnamese diacritics and case dropped, white
-- space made one space — by the store's `fold` in Rust, the same function on both backends, not
-- a database collation: `fold(code) || '\n' || fold(name)`. One column, so a search is one
-- LIKE per row; a typed query never holds a line break (fold makes it a space), so it never
-- matches across the two. Written on every insert and update. Existing rows are left NULL here
-- and filled by the store when it opens (`registry::fill_folded`): SQL cannot run the Rust
-- function.
ALTER TABLE agency_registry ADD COLUMN search_folded TEXT;
