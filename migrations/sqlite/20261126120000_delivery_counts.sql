-- A run's deliveries by status: its counts (the admin UI, the API, `bantin digest run`'s
-- progress) and "is anything of this run still open" (completing runs after each batch)
-- are read from this index instead of every delivery of the run.
CREATE INDEX deliveries_run_status ON deliveries (run_id, status);
