-- Lists (newsletters), subscribers and their subscriptions, admins and their sessions,
-- and the audit log of admin actions.

-- Server-wide secrets made once by the first instance (the key that signs subscriber links).
CREATE TABLE secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- `categories` is a JSON array of category paths; empty means every category.
-- `schedule` is the five-field cron expression as the admin entered it.
CREATE TABLE lists (
    id INTEGER PRIMARY KEY,
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    categories TEXT NOT NULL DEFAULT '[]',
    schedule TEXT NOT NULL,
    timezone TEXT NOT NULL,
    language TEXT NOT NULL CHECK (language IN ('vi', 'en')),
    from_name TEXT NOT NULL,
    from_address TEXT NOT NULL,
    double_opt_in BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- `email` is kept as given (domain lowercased); `email_key` is the whole address in
-- lowercase, which is what makes two addresses the same subscriber. `name_key` is the name
-- in lowercase, for search.
CREATE TABLE subscribers (
    id INTEGER PRIMARY KEY,
    email TEXT NOT NULL,
    email_key TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL DEFAULT '',
    name_key TEXT NOT NULL DEFAULT '',
    language TEXT NOT NULL CHECK (language IN ('vi', 'en')),
    status TEXT NOT NULL CHECK (status IN ('unconfirmed', 'active', 'unsubscribed', 'bounced', 'blocklisted')),
    attributes TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    confirmed_at TEXT,
    -- The last confirmation email, so a form cannot be used to mail-bomb an address.
    confirmation_sent_at TEXT
);
CREATE INDEX subscribers_status ON subscribers (status, id);
CREATE INDEX subscribers_created ON subscribers (created_at);

-- `categories`: the subscriber's narrowing of the list's categories (JSON paths; empty = all).
CREATE TABLE subscriptions (
    subscriber_id INTEGER NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    list_id INTEGER NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
    status TEXT NOT NULL CHECK (status IN ('unconfirmed', 'active', 'unsubscribed')),
    categories TEXT NOT NULL DEFAULT '[]',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (subscriber_id, list_id)
);
-- A list's subscribers newest first (admin search pages through them by id), and by status.
CREATE INDEX subscriptions_list ON subscriptions (list_id, subscriber_id, status);

-- Substring search over email and name at a million rows: a trigram index.
CREATE VIRTUAL TABLE subscribers_search USING fts5 (
    email_key, name_key, content = 'subscribers', content_rowid = 'id', tokenize = 'trigram'
);
CREATE TRIGGER subscribers_search_insert AFTER INSERT ON subscribers BEGIN
    INSERT INTO subscribers_search (rowid, email_key, name_key) VALUES (new.id, new.email_key, new.name_key);
END;
CREATE TRIGGER subscribers_search_delete AFTER DELETE ON subscribers BEGIN
    INSERT INTO subscribers_search (subscribers_search, rowid, email_key, name_key)
    VALUES ('delete', old.id, old.email_key, old.name_key);
END;
CREATE TRIGGER subscribers_search_update AFTER UPDATE OF email_key, name_key ON subscribers BEGIN
    INSERT INTO subscribers_search (subscribers_search, rowid, email_key, name_key)
    VALUES ('delete', old.id, old.email_key, old.name_key);
    INSERT INTO subscribers_search (rowid, email_key, name_key) VALUES (new.id, new.email_key, new.name_key);
END;

CREATE TABLE admins (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at TEXT NOT NULL
);

-- Only a SHA-256 of the session cookie is stored.
CREATE TABLE admin_sessions (
    id_hash TEXT PRIMARY KEY,
    admin_id INTEGER NOT NULL REFERENCES admins (id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);

CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY,
    occurred_at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '{}'
);
