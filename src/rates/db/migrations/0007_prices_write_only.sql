-- The rates query reads route_days only: a batch counts from its roll-up on, not from the
-- moment its rows commit to prices (reading those fresh rows slowed region queries 2-5x while
-- batches applied). prices is now written by COPY and read by batch id alone (roll-ups,
-- reverts), so its indexes are just what that needs:
-- * the route index from 0001 is read by nothing since route_days (0004), yet every batch's
--   COPY kept it up to date: random inserts into a btree as large as the table;
-- * a plain batch_id btree replaces (batch_id, orig_code): one key per batch, appended at the
--   right edge and packed by deduplication.
DROP INDEX prices_route_day_idx;
CREATE INDEX prices_batch_id_idx ON prices (batch_id) WHERE batch_id IS NOT NULL;
DROP INDEX prices_batch_origin_idx;
