-- Categories form a tree; `path` is the slug path ("tin-tuc/kinh-te"), unique, which makes
-- slugs unique among siblings. `names` holds the display names from the root, as JSON.
CREATE TABLE categories (
    id INTEGER PRIMARY KEY,
    parent_id INTEGER REFERENCES categories (id),
    name TEXT NOT NULL,
    slug TEXT NOT NULL,
    path TEXT NOT NULL UNIQUE,
    depth INTEGER NOT NULL,
    names TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX categories_parent ON categories (parent_id);

CREATE TABLE authors (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    slug TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);

CREATE TABLE articles (
    id INTEGER PRIMARY KEY,
    source_id TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    url TEXT NOT NULL,
    summary TEXT,
    content_html TEXT NOT NULL,
    image TEXT,
    category_id INTEGER REFERENCES categories (id),
    author_id INTEGER REFERENCES authors (id),
    tags TEXT NOT NULL DEFAULT '[]',
    published_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    created_at TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('published', 'scheduled', 'retracted')),
    content_hash TEXT NOT NULL
);
CREATE INDEX articles_scheduled ON articles (published_at) WHERE status = 'scheduled';
CREATE INDEX articles_published ON articles (published_at DESC, id DESC) WHERE status = 'published';
CREATE INDEX articles_category ON articles (category_id, published_at DESC);
CREATE INDEX articles_author ON articles (author_id, published_at DESC);

-- The log of visibility changes that feeds and digests consume, written in the same
-- transaction as the change.
CREATE TABLE publication_events (
    id INTEGER PRIMARY KEY,
    article_id INTEGER NOT NULL REFERENCES articles (id),
    kind TEXT NOT NULL CHECK (kind IN ('published', 'updated', 'retracted')),
    category_id INTEGER,
    author_id INTEGER,
    previous_category_id INTEGER,
    previous_author_id INTEGER,
    occurred_at TEXT NOT NULL
);
CREATE INDEX publication_events_article ON publication_events (article_id);

CREATE TABLE api_tokens (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    public_id TEXT NOT NULL UNIQUE,
    secret_hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    last_used_at TEXT,
    revoked_at TEXT
);
