-- Every worker reads the time of the last counted batch about once a second (a metric):
-- without an index that was a scan of all of batches, which only grows.
CREATE INDEX batches_counted_finished_at_idx ON batches (finished_at)
    WHERE status = 'succeeded' AND rolled_up;
