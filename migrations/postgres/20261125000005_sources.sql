-- The state of each background source (inbox folder or upstream feed) named in
-- bantin.toml: what its last run did, its conditional-GET validators, and when it is
-- polled next. `next_poll_at` is also the claim: an instance that moves it forward
-- polls the source, so several instances never poll one source at the same time.
CREATE TABLE sources (
    name TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('inbox', 'feed')),
    location TEXT NOT NULL,
    paused BOOLEAN NOT NULL DEFAULT FALSE,
    -- Why it is paused: 'admin' or 'failures'.
    paused_reason TEXT,
    last_run_at TIMESTAMPTZ,
    last_success_at TIMESTAMPTZ,
    -- Items read in the last run, and how many of them were new or changed.
    items_found BIGINT NOT NULL DEFAULT 0,
    items_stored BIGINT NOT NULL DEFAULT 0,
    last_error TEXT,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    etag TEXT,
    last_modified TEXT,
    next_poll_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX sources_due ON sources (next_poll_at) WHERE NOT paused;
