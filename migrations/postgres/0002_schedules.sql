-- Scheduled incremental materialization. A schedule is one row per feature variant with a
-- `materialization.schedule` (written at apply, from the definition); every replica's
-- coordinator enqueues due runs with `FOR UPDATE SKIP LOCKED`, so each run is enqueued once.
CREATE TABLE schedules (
    resource_kind    TEXT        NOT NULL,
    resource_name    TEXT        NOT NULL,
    resource_variant TEXT        NOT NULL,
    cron             TEXT        NOT NULL,
    -- NULL when the expression never matches again.
    next_run_at      TIMESTAMPTZ,
    last_enqueued_at TIMESTAMPTZ,
    last_job_id      BIGINT,
    -- Runs skipped because the previous one was still queued or running.
    skipped_runs     BIGINT      NOT NULL DEFAULT 0,
    CONSTRAINT schedules_pkey PRIMARY KEY (resource_kind, resource_name, resource_variant),
    CONSTRAINT schedules_resource_fkey FOREIGN KEY (resource_kind, resource_name, resource_variant)
        REFERENCES resources (kind, name, variant) ON DELETE CASCADE
);

CREATE INDEX schedules_due_idx ON schedules (next_run_at) WHERE next_run_at IS NOT NULL;

-- How far a feature's online copy has been materialized: the newest event time written.
-- Its own row, never part of a definition (definitions are immutable per variant).
CREATE TABLE watermarks (
    resource_kind    TEXT        NOT NULL,
    resource_name    TEXT        NOT NULL,
    resource_variant TEXT        NOT NULL,
    watermark        TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL,
    CONSTRAINT watermarks_pkey PRIMARY KEY (resource_kind, resource_name, resource_variant),
    CONSTRAINT watermarks_resource_fkey FOREIGN KEY (resource_kind, resource_name, resource_variant)
        REFERENCES resources (kind, name, variant) ON DELETE CASCADE
);
