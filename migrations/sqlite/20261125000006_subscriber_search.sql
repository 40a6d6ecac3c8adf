-- The trigram index of subscribers without positions (detail=none) or column sizes
-- (columnsize=0): search asks it for rows holding every trigram of the text and checks
-- the text itself, and bulk imports write about half as much. It is rebuilt from the
-- subscribers, so everyone stays searchable.
DROP TABLE subscribers_search;
CREATE VIRTUAL TABLE subscribers_search USING fts5 (
    email_key, name_key, content = 'subscribers', content_rowid = 'id', tokenize = 'trigram',
    detail = 'none', columnsize = 0
);
-- Pending terms are flushed into a new segment each 8 MB instead of each 1 MB: an import
-- transaction of 20,000 rows makes one segment, so there is less to merge later.
INSERT INTO subscribers_search (subscribers_search, rank) VALUES ('hashsize', 8388608);
INSERT INTO subscribers_search (subscribers_search) VALUES ('rebuild');

-- Bulk merges (imports of known addresses) set name_key to itself: the index is only
-- touched when the email or name key really changes.
DROP TRIGGER subscribers_search_update;
CREATE TRIGGER subscribers_search_update AFTER UPDATE OF email_key, name_key ON subscribers
WHEN old.email_key IS NOT new.email_key OR old.name_key IS NOT new.name_key BEGIN
    INSERT INTO subscribers_search (subscribers_search, rowid, email_key, name_key)
    VALUES ('delete', old.id, old.email_key, old.name_key);
    INSERT INTO subscribers_search (rowid, email_key, name_key) VALUES (new.id, new.email_key, new.name_key);
END;
