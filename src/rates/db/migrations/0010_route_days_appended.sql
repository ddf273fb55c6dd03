-- Route-days are appended per batch and merged later, instead of upserted when a batch applies:
-- upserting a new key cost ~7 us and a 1M-row batch on random lanes brings ~930k of them,
-- twice what appending costs. A batch's rows carry its id; the rates query sums every row of a
-- route-day, so an appended row counts from its batch's commit like a merged one. A worker with
-- nothing to apply merges appended rows into the one row per route-day (batch_id NULL), a small
-- chunk per transaction: each chunk moves totals without changing any sum, so readers see the
-- same answer before and after it.
ALTER TABLE route_days ADD COLUMN batch_id bigint;
ALTER TABLE route_days DROP CONSTRAINT route_days_pkey;
-- What the rates query reads: every row of a route over a range of days.
CREATE INDEX route_days_route_day_idx ON route_days (orig_code, dest_code, day)
    INCLUDE (total, prices);
-- The merged row of each route-day, which merges and reverts upsert.
CREATE UNIQUE INDEX route_days_merged_key ON route_days (orig_code, dest_code, day)
    WHERE batch_id IS NULL;
-- A batch's appended rows, for merging and reverting (always appended at the right edge).
CREATE INDEX route_days_batch_idx ON route_days (batch_id) WHERE batch_id IS NOT NULL;

-- Every batch counted so far was added to the merged rows.
ALTER TABLE batches ADD COLUMN merged boolean NOT NULL DEFAULT true;
ALTER TABLE batches ALTER COLUMN merged SET DEFAULT false;
CREATE INDEX batches_unmerged_idx ON batches (id) WHERE status = 'succeeded' AND NOT merged;
