-- Quiver metadata store, Postgres. Constraints are named so the API can map a
-- violation to an error by name, never by matching message text.

-- One row per (kind, name, variant). Unversioned kinds (user, provider, entity, model)
-- have variant ''. `definition` is the full applied definition with references pinned,
-- secrets included: never select it into logs. owner/description/tags are copies of the
-- definition's fields, kept as columns so list filters can use indexes.
CREATE TABLE resources (
    id          BIGINT GENERATED ALWAYS AS IDENTITY,
    kind        TEXT        NOT NULL,
    name        TEXT        NOT NULL,
    variant     TEXT        NOT NULL DEFAULT '',
    definition  JSONB       NOT NULL,
    owner       TEXT        NOT NULL,
    description TEXT        NOT NULL DEFAULT '',
    tags        JSONB       NOT NULL DEFAULT '[]',
    status      TEXT        NOT NULL,
    error       TEXT,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    -- Bumped on every change of the row; guards in-place updates (optimistic locking).
    revision    BIGINT      NOT NULL DEFAULT 1,
    CONSTRAINT resources_pkey PRIMARY KEY (id),
    CONSTRAINT resources_kind_name_variant_key UNIQUE (kind, name, variant),
    CONSTRAINT resources_kind_check CHECK (
        kind IN ('user', 'provider', 'entity', 'source', 'feature', 'label', 'training_set', 'model')),
    -- Versioned kinds always carry a variant, unversioned kinds never do.
    CONSTRAINT resources_variant_check CHECK (
        (kind IN ('source', 'feature', 'label', 'training_set')) = (variant <> '')),
    CONSTRAINT resources_status_check CHECK (status IN ('pending', 'running', 'ready', 'failed')),
    CONSTRAINT resources_tags_check CHECK (jsonb_typeof(tags) = 'array')
);

CREATE INDEX resources_owner_idx ON resources (owner);
CREATE INDEX resources_status_idx ON resources (status);
-- Serves `tags @> '["tag"]'`.
CREATE INDEX resources_tags_idx ON resources USING GIN (tags jsonb_path_ops);

-- The default variant of each (kind, name): what an unpinned reference and a lookup
-- without a variant mean.
CREATE TABLE default_variants (
    kind       TEXT        NOT NULL,
    name       TEXT        NOT NULL,
    variant    TEXT        NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    CONSTRAINT default_variants_pkey PRIMARY KEY (kind, name),
    CONSTRAINT default_variants_resource_fkey FOREIGN KEY (kind, name, variant)
        REFERENCES resources (kind, name, variant)
);

-- Lineage: `downstream` references `upstream`. The primary key serves downstream walks
-- (from an upstream id), the second index upstream walks.
CREATE TABLE edges (
    upstream_id   BIGINT NOT NULL,
    downstream_id BIGINT NOT NULL,
    CONSTRAINT edges_pkey PRIMARY KEY (upstream_id, downstream_id),
    CONSTRAINT edges_upstream_fkey FOREIGN KEY (upstream_id) REFERENCES resources (id),
    CONSTRAINT edges_downstream_fkey FOREIGN KEY (downstream_id) REFERENCES resources (id),
    CONSTRAINT edges_not_self_check CHECK (upstream_id <> downstream_id)
);

CREATE INDEX edges_downstream_idx ON edges (downstream_id, upstream_id);

-- Work for the coordinator replicas: claimed under a lease (owner + expiry) renewed by
-- heartbeat; an expired lease lets another replica take the job over.
CREATE TABLE jobs (
    id               BIGINT GENERATED ALWAYS AS IDENTITY,
    kind             TEXT        NOT NULL,
    resource_kind    TEXT        NOT NULL,
    resource_name    TEXT        NOT NULL,
    resource_variant TEXT        NOT NULL,
    state            TEXT        NOT NULL,
    attempts         INTEGER     NOT NULL DEFAULT 0,
    max_attempts     INTEGER     NOT NULL,
    run_after        TIMESTAMPTZ NOT NULL,
    lease_owner      TEXT,
    lease_expires_at TIMESTAMPTZ,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL,
    started_at       TIMESTAMPTZ,
    finished_at      TIMESTAMPTZ,
    error            TEXT,
    progress_done    BIGINT      NOT NULL DEFAULT 0,
    progress_total   BIGINT,
    CONSTRAINT jobs_pkey PRIMARY KEY (id),
    CONSTRAINT jobs_resource_fkey FOREIGN KEY (resource_kind, resource_name, resource_variant)
        REFERENCES resources (kind, name, variant),
    CONSTRAINT jobs_kind_check CHECK (
        kind IN ('transformation', 'training_set', 'materialization', 'deletion')),
    CONSTRAINT jobs_state_check CHECK (
        state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    CONSTRAINT jobs_attempts_check CHECK (attempts >= 0 AND max_attempts >= 1),
    CONSTRAINT jobs_lease_check CHECK (
        state <> 'running' OR (lease_owner IS NOT NULL AND lease_expires_at IS NOT NULL))
);

-- The claim query looks for due queued jobs and for running jobs whose lease expired.
CREATE INDEX jobs_claim_queued_idx ON jobs (run_after, id) WHERE state = 'queued';
CREATE INDEX jobs_claim_expired_idx ON jobs (lease_expires_at) WHERE state = 'running';
CREATE INDEX jobs_resource_idx ON jobs (resource_kind, resource_name, resource_variant);
CREATE INDEX jobs_state_idx ON jobs (state, id);

-- One row per attempt of a job.
CREATE TABLE job_runs (
    id           BIGINT GENERATED ALWAYS AS IDENTITY,
    job_id       BIGINT      NOT NULL,
    attempt      INTEGER     NOT NULL,
    state        TEXT        NOT NULL,
    lease_owner  TEXT        NOT NULL,
    started_at   TIMESTAMPTZ NOT NULL,
    finished_at  TIMESTAMPTZ,
    rows_written BIGINT,
    error        TEXT,
    logs         TEXT        NOT NULL DEFAULT '',
    CONSTRAINT job_runs_pkey PRIMARY KEY (id),
    CONSTRAINT job_runs_job_fkey FOREIGN KEY (job_id) REFERENCES jobs (id) ON DELETE CASCADE,
    CONSTRAINT job_runs_job_attempt_key UNIQUE (job_id, attempt),
    CONSTRAINT job_runs_state_check CHECK (state IN ('running', 'succeeded', 'failed', 'cancelled'))
);
