-- A batch's rows by route and day: the rates query reads a batch that is not yet rolled up
-- per origin port and day range, as it reads route_days, instead of every row of the batch
-- (which cost each region query ~6 ms per pending 100k-row batch). The leading batch_id still
-- serves reverts and the roll-up; the index covers only rows that came in batches.
CREATE INDEX prices_batch_route_idx ON prices (batch_id, orig_code, dest_code, day)
    INCLUDE (price) WHERE batch_id IS NOT NULL;
DROP INDEX prices_batch_id_idx;
