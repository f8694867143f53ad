-- Lists page by id (`before`): with only `messages_document (sender, document_id)` a page of one
-- sender's sent documents read and sorted all of them, so paging through a long history cost
-- O(n²) (a 360,000-document soak showed it). An index on `sender` is ordered by (sender, rowid):
-- `sender = ? AND id < ? ORDER BY id DESC LIMIT n` reads just the page.
CREATE INDEX messages_sender ON messages (sender);
