-- Scheduled incremental materialization (see migrations/postgres/0002_schedules.sql).
CREATE TABLE schedules (
    resource_kind    TEXT    NOT NULL,
    resource_name    TEXT    NOT NULL,
    resource_variant TEXT    NOT NULL,
    cron             TEXT    NOT NULL,
    next_run_at      TEXT,
    last_enqueued_at TEXT,
    last_job_id      INTEGER,
    skipped_runs     INTEGER NOT NULL DEFAULT 0,
    CONSTRAINT schedules_pkey PRIMARY KEY (resource_kind, resource_name, resource_variant),
    CONSTRAINT schedules_resource_fkey FOREIGN KEY (resource_kind, resource_name, resource_variant)
        REFERENCES resources (kind, name, variant) ON DELETE CASCADE
) STRICT;

CREATE INDEX schedules_due_idx ON schedules (next_run_at) WHERE next_run_at IS NOT NULL;

CREATE TABLE watermarks (
    resource_kind    TEXT NOT NULL,
    resource_name    TEXT NOT NULL,
    resource_variant TEXT NOT NULL,
    watermark        TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    CONSTRAINT watermarks_pkey PRIMARY KEY (resource_kind, resource_name, resource_variant),
    CONSTRAINT watermarks_resource_fkey FOREIGN KEY (resource_kind, resource_name, resource_variant)
        REFERENCES resources (kind, name, variant) ON DELETE CASCADE
) STRICT;
