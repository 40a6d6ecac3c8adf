-- Which feeds each visible article belongs to: "all", "category:<path>" for its category
-- and every ancestor, "author:<slug>". Kept in the same transaction as the publication
-- event, so the newest items of any feed are one index range scan, whatever the archive size.
CREATE TABLE feed_entries (
    feed_key TEXT NOT NULL,
    article_id INTEGER NOT NULL REFERENCES articles (id),
    published_at TEXT NOT NULL,
    PRIMARY KEY (feed_key, article_id)
);
CREATE INDEX feed_entries_order ON feed_entries (feed_key, published_at DESC, article_id DESC);
CREATE INDEX feed_entries_article ON feed_entries (article_id);

INSERT INTO feed_entries (feed_key, article_id, published_at)
SELECT 'all', id, published_at FROM articles WHERE status = 'published';
INSERT INTO feed_entries (feed_key, article_id, published_at)
SELECT 'category:' || anc.path, a.id, a.published_at
FROM articles a
JOIN categories c ON c.id = a.category_id
JOIN categories anc ON c.path = anc.path OR c.path LIKE anc.path || '/%'
WHERE a.status = 'published';
INSERT INTO feed_entries (feed_key, article_id, published_at)
SELECT 'author:' || au.slug, a.id, a.published_at
FROM articles a JOIN authors au ON au.id = a.author_id
WHERE a.status = 'published';

-- Prerendered feed documents, so a restart serves the last build at once. `built_through`
-- is the last publication event the build reflects; an older build never overwrites a newer.
CREATE TABLE feed_documents (
    feed_key TEXT NOT NULL,
    format TEXT NOT NULL,
    body BLOB NOT NULL,
    gzip BLOB NOT NULL,
    brotli BLOB NOT NULL,
    etag TEXT NOT NULL,
    last_modified TEXT NOT NULL,
    built_through INTEGER NOT NULL,
    PRIMARY KEY (feed_key, format)
);
