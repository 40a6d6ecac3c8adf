-- Scheduled digests: one run per (list, scheduled time), enforced here so several
-- instances never make the same run twice; one delivery per (run, subscriber).

ALTER TABLE lists ADD COLUMN send_empty BOOLEAN NOT NULL DEFAULT FALSE;

-- What each subscription has been sent: articles that became visible up to this time.
-- A new subscription starts at the moment it was made, not at the whole archive.
ALTER TABLE subscriptions ADD COLUMN sent_through TEXT;
UPDATE subscriptions SET sent_through = created_at;

-- `window_end`: articles that became visible up to this time are in this run.
CREATE TABLE digest_runs (
    id INTEGER PRIMARY KEY,
    list_id INTEGER NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
    scheduled_at TEXT NOT NULL,
    window_end TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'sending', 'done', 'cancelled', 'skipped')),
    created_at TEXT NOT NULL,
    finished_at TEXT,
    UNIQUE (list_id, scheduled_at)
);
CREATE INDEX digest_runs_open ON digest_runs (status, id) WHERE status IN ('pending', 'sending');

-- A delivery is claimed with a lease; an expired lease (a crashed sender) is claimed again.
CREATE TABLE deliveries (
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES digest_runs (id) ON DELETE CASCADE,
    subscriber_id INTEGER NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    status TEXT NOT NULL CHECK (status IN ('queued', 'sending', 'sent', 'failed', 'skipped', 'cancelled')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    lease_until TEXT,
    last_error TEXT,
    articles INTEGER NOT NULL DEFAULT 0,
    sent_at TEXT,
    UNIQUE (run_id, subscriber_id)
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at, id) WHERE status = 'queued';
CREATE INDEX deliveries_leased ON deliveries (lease_until, id) WHERE status = 'sending';
CREATE INDEX deliveries_subscriber ON deliveries (subscriber_id);

-- Digests pick articles by the time they became visible.
CREATE INDEX publication_events_published ON publication_events (occurred_at) WHERE kind = 'published';
