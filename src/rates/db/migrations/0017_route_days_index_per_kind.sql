-- no-transaction
-- Each kind of route-day row gets an index of its own (expand; 0018 contracts):
-- * merged rows (batch_id NULL), one per route-day: the unique key that merges and reverts
--   upsert into, now carrying total and prices so readers scan it index-only;
-- * appended rows, keyed by batch first: a batch's rows all land at the index's right edge, in
--   the order the batch appends them, instead of spread over every route's pages.
-- Readers then ask for merged rows, plus the appended rows of the batches that count and are not
-- merged yet (rates.query). Until 0018 drops it, the index over all rows stays for the release
-- still serving, whose readers ask without batch_id. With it gone, appending a 1M-row batch on
-- random lanes (936k new route-days, 3.3M prices held) took 2.4-3.5 s instead of 4.4-5.2 s,
-- writing 174-186 MB of WAL instead of 282 MB.
-- Built concurrently: on a large table a plain build would hold batch commits for its length.
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS route_days_merged_idx
    ON route_days (orig_code, dest_code, day) INCLUDE (total, prices) WHERE batch_id IS NULL;
DROP INDEX CONCURRENTLY IF EXISTS route_days_merged_key;
CREATE INDEX CONCURRENTLY IF NOT EXISTS route_days_appended_idx
    ON route_days (batch_id, orig_code, dest_code, day) INCLUDE (total, prices)
    WHERE batch_id IS NOT NULL;
DROP INDEX CONCURRENTLY IF EXISTS route_days_batch_idx;
