-- Batch ingestion: each accepted payload is a row in batches; prices remember their batch.

-- NULL for rows loaded from a dump or generated as demo data.
ALTER TABLE prices ADD COLUMN batch_id bigint;
-- A btree on an ever-growing key only appends to its rightmost page, so it is cheap during
-- COPY; it finds a batch's rows for a revert and for the rates query's not-yet-rolled-up rows.
CREATE INDEX prices_batch_id_idx ON prices (batch_id) WHERE batch_id IS NOT NULL;

CREATE TABLE batches (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    status          text NOT NULL DEFAULT 'queued'
                    CHECK (status IN ('queued', 'succeeded', 'rejected', 'failed', 'reverted')),
    format          text NOT NULL CHECK (format IN ('csv', 'ndjson')),
    compression     text NOT NULL DEFAULT 'none' CHECK (compression IN ('none', 'gzip')),
    storage_uri     text NOT NULL,
    sha256          text,            -- NULL until read for objects registered from S3
    bytes           bigint NOT NULL,
    source          text NOT NULL,   -- api, cli, s3-event
    idempotency_key text UNIQUE,
    submitted_at    timestamptz NOT NULL DEFAULT now(),
    not_before      timestamptz NOT NULL DEFAULT now(),  -- retry back-off after an error
    finished_at     timestamptz,
    reverted_at     timestamptz,
    rows_total      bigint,
    rows_inserted   bigint,
    rows_invalid    bigint,
    timings         jsonb,           -- seconds per phase of the successful attempt
    report          jsonb            -- why it was rejected or failed
);
CREATE INDEX batches_queued_idx ON batches (id) WHERE status = 'queued';
CREATE INDEX batches_submitted_at_idx ON batches (submitted_at DESC);

-- One row per attempt, written outside the applying transaction so it survives a rollback.
-- Which backend ran it is kept for operators; whether it still runs is its advisory lock.
CREATE TABLE batch_attempts (
    batch_id      bigint NOT NULL REFERENCES batches (id),
    attempt       integer NOT NULL,
    worker        text NOT NULL,
    backend_pid   integer NOT NULL,
    backend_start timestamptz NOT NULL,
    started_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz,
    outcome       text CHECK (outcome IN
                  ('succeeded', 'rejected', 'error', 'interrupted', 'crashed')),
    error         text,
    PRIMARY KEY (batch_id, attempt)
);
