-- Daily totals per route, so region queries over long ranges read one row per route and day
-- instead of every price. Rows of a batch move into these totals in a transaction of their own
-- after the batch commits (the roll-up), so ingestion never pays for it; until then the rates
-- query adds the batch's rows from prices, found through the batch_id index. A reader's
-- snapshot therefore always counts each succeeded batch exactly once.
CREATE TABLE route_days (
    orig_code text    NOT NULL,
    dest_code text    NOT NULL,
    day       date    NOT NULL,
    total     bigint  NOT NULL,
    prices    integer NOT NULL,
    PRIMARY KEY (orig_code, dest_code, day) INCLUDE (total, prices)
);

ALTER TABLE batches ADD COLUMN rolled_up boolean NOT NULL DEFAULT false;
CREATE INDEX batches_pending_roll_up_idx ON batches (id)
    WHERE status = 'succeeded' AND NOT rolled_up;

INSERT INTO route_days (orig_code, dest_code, day, total, prices)
SELECT orig_code, dest_code, day, sum(price), count(*)
FROM prices
WHERE batch_id IS NULL
   OR batch_id IN (SELECT id FROM batches WHERE status = 'succeeded')
GROUP BY orig_code, dest_code, day;
UPDATE batches SET rolled_up = true WHERE status = 'succeeded';

GRANT SELECT, UPDATE, DELETE ON route_days TO rates_read;  -- reverts subtract their totals
GRANT SELECT, INSERT, UPDATE ON route_days TO rates_write;

-- The routes that have prices at all: region queries visit only these pairs instead of every
-- origin x destination combination (most of which never trade).
CREATE TABLE routes (
    orig_code text NOT NULL,
    dest_code text NOT NULL,
    PRIMARY KEY (orig_code, dest_code)
);
INSERT INTO routes SELECT DISTINCT orig_code, dest_code FROM route_days;
GRANT SELECT ON routes TO rates_read;
GRANT SELECT, INSERT ON routes TO rates_write;
