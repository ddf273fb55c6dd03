-- A batch's rows by origin port: the rates query reads a batch that is not yet rolled up per
-- origin port, as it reads route_days, instead of every row of the batch (which cost each
-- region query ~6 ms per pending 100k-row batch). The leading batch_id still serves reverts
-- and the roll-up. Only (batch_id, orig_code): a batch has few distinct keys, which btree
-- deduplication packs tightly, so a COPY pays ~15% for it; adding dest_code and day made
-- each key unique and the COPY ~90% slower.
CREATE INDEX prices_batch_origin_idx ON prices (batch_id, orig_code) WHERE batch_id IS NOT NULL;
DROP INDEX prices_batch_id_idx;
