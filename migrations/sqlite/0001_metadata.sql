-- Quiver metadata store, SQLite (the embedded default). Same tables, columns and
-- constraint names as migrations/postgres. Differences: timestamps are RFC 3339 text in
-- UTC with a fixed width (`2024-05-01T12:00:00.000000Z`), so text order is time order;
-- JSON is text checked with json_valid; tables are STRICT so types are enforced.

-- One row per (kind, name, variant). Unversioned kinds (user, provider, entity, model)
-- have variant ''. `definition` is the full applied definition with references pinned,
-- secrets included: never select it into logs. owner/description/tags are copies of the
-- definition's fields, kept as columns for list filters.
CREATE TABLE resources (
    id          INTEGER NOT NULL CONSTRAINT resources_pkey PRIMARY KEY AUTOINCREMENT,
    kind        TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    variant     TEXT    NOT NULL DEFAULT '',
    definition  TEXT    NOT NULL,
    owner       TEXT    NOT NULL,
    description TEXT    NOT NULL DEFAULT '',
    tags        TEXT    NOT NULL DEFAULT '[]',
    status      TEXT    NOT NULL,
    error       TEXT,
    created_at  TEXT    NOT NULL,
    updated_at  TEXT    NOT NULL,
    -- Bumped on every change of the row; guards in-place updates (optimistic locking).
    revision    INTEGER NOT NULL DEFAULT 1,
    CONSTRAINT resources_kind_name_variant_key UNIQUE (kind, name, variant),
    CONSTRAINT resources_kind_check CHECK (
        kind IN ('user', 'provider', 'entity', 'source', 'feature', 'label', 'training_set', 'model')),
    -- Versioned kinds always carry a variant, unversioned kinds never do.
    CONSTRAINT resources_variant_check CHECK (
        (kind IN ('source', 'feature', 'label', 'training_set')) = (variant <> '')),
    CONSTRAINT resources_status_check CHECK (status IN ('pending', 'running', 'ready', 'failed')),
    CONSTRAINT resources_definition_check CHECK (json_valid(definition)),
    CONSTRAINT resources_tags_check CHECK (json_valid(tags) AND json_type(tags) = 'array')
) STRICT;

CREATE INDEX resources_owner_idx ON resources (owner);
CREATE INDEX resources_status_idx ON resources (status);

-- The default variant of each (kind, name): what an unpinned reference and a lookup
-- without a variant mean.
CREATE TABLE default_variants (
    kind       TEXT NOT NULL,
    name       TEXT NOT NULL,
    variant    TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    CONSTRAINT default_variants_pkey PRIMARY KEY (kind, name),
    CONSTRAINT default_variants_resource_fkey FOREIGN KEY (kind, name, variant)
        REFERENCES resources (kind, name, variant)
) STRICT;

-- Lineage: `downstream` references `upstream`. The primary key serves downstream walks
-- (from an upstream id), the second index upstream walks.
CREATE TABLE edges (
    upstream_id   INTEGER NOT NULL,
    downstream_id INTEGER NOT NULL,
    CONSTRAINT edges_pkey PRIMARY KEY (upstream_id, downstream_id),
    CONSTRAINT edges_upstream_fkey FOREIGN KEY (upstream_id) REFERENCES resources (id),
    CONSTRAINT edges_downstream_fkey FOREIGN KEY (downstream_id) REFERENCES resources (id),
    CONSTRAINT edges_not_self_check CHECK (upstream_id <> downstream_id)
) STRICT, WITHOUT ROWID;

CREATE INDEX edges_downstream_idx ON edges (downstream_id, upstream_id);

-- Work for the coordinator: claimed under a lease (owner + expiry) renewed by heartbeat;
-- an expired lease lets another owner take the job over.
CREATE TABLE jobs (
    id               INTEGER NOT NULL CONSTRAINT jobs_pkey PRIMARY KEY AUTOINCREMENT,
    kind             TEXT    NOT NULL,
    resource_kind    TEXT    NOT NULL,
    resource_name    TEXT    NOT NULL,
    resource_variant TEXT    NOT NULL,
    state            TEXT    NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    max_attempts     INTEGER NOT NULL,
    run_after        TEXT    NOT NULL,
    lease_owner      TEXT,
    lease_expires_at TEXT,
    created_at       TEXT    NOT NULL,
    updated_at       TEXT    NOT NULL,
    started_at       TEXT,
    finished_at      TEXT,
    error            TEXT,
    progress_done    INTEGER NOT NULL DEFAULT 0,
    progress_total   INTEGER,
    CONSTRAINT jobs_resource_fkey FOREIGN KEY (resource_kind, resource_name, resource_variant)
        REFERENCES resources (kind, name, variant),
    CONSTRAINT jobs_kind_check CHECK (
        kind IN ('transformation', 'training_set', 'materialization', 'deletion')),
    CONSTRAINT jobs_state_check CHECK (
        state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    CONSTRAINT jobs_attempts_check CHECK (attempts >= 0 AND max_attempts >= 1),
    CONSTRAINT jobs_lease_check CHECK (
        state <> 'running' OR (lease_owner IS NOT NULL AND lease_expires_at IS NOT NULL))
) STRICT;

-- The claim query looks for due queued jobs and for running jobs whose lease expired.
CREATE INDEX jobs_claim_queued_idx ON jobs (run_after, id) WHERE state = 'queued';
CREATE INDEX jobs_claim_expired_idx ON jobs (lease_expires_at) WHERE state = 'running';
CREATE INDEX jobs_resource_idx ON jobs (resource_kind, resource_name, resource_variant);
CREATE INDEX jobs_state_idx ON jobs (state, id);

-- One row per attempt of a job.
CREATE TABLE job_runs (
    id           INTEGER NOT NULL CONSTRAINT job_runs_pkey PRIMARY KEY AUTOINCREMENT,
    job_id       INTEGER NOT NULL,
    attempt      INTEGER NOT NULL,
    state        TEXT    NOT NULL,
    lease_owner  TEXT    NOT NULL,
    started_at   TEXT    NOT NULL,
    finished_at  TEXT,
    rows_written INTEGER,
    error        TEXT,
    logs         TEXT    NOT NULL DEFAULT '',
    CONSTRAINT job_runs_job_fkey FOREIGN KEY (job_id) REFERENCES jobs (id) ON DELETE CASCADE,
    CONSTRAINT job_runs_job_attempt_key UNIQUE (job_id, attempt),
    CONSTRAINT job_runs_state_check CHECK (state IN ('running', 'succeeded', 'failed', 'cancelled'))
) STRICT;
