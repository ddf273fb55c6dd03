-- Daily totals per pair of large regions, so a query between two large regions reads one row
-- per day instead of one per route and day (hundreds of thousands for a year between two
-- top-level regions). "Large" is a region whose subtree holds at least rollup_min_ports ports:
-- only those pairs pay for their totals, and every other pair has few enough routes that
-- route_days answers it quickly. Each route-day adds to one row per large ancestor of its origin
-- times large ancestor of its destination (4 in a 4-level tree of 1,000 ports), inside the
-- transaction that applies its batch, so a batch still counts at one instant.

-- The rates tree changes only when a dump or demo data is loaded, which rebuilds all of this.
CREATE TABLE rollup_settings (
    singleton        boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    rollup_min_ports integer NOT NULL CHECK (rollup_min_ports > 0)
);
INSERT INTO rollup_settings (rollup_min_ports) VALUES (50);

-- Each port with each large region it lies in, at any depth.
CREATE TABLE port_rollups (
    port   text NOT NULL,
    region text NOT NULL,
    PRIMARY KEY (port, region)
);

CREATE TABLE region_days (
    orig_region text    NOT NULL,
    dest_region text    NOT NULL,
    day         date    NOT NULL,
    total       bigint  NOT NULL,
    prices      integer NOT NULL,
    PRIMARY KEY (orig_region, dest_region, day)
) WITH (fillfactor = 80);  -- room for HOT updates: every batch adds to the same few rows

-- Which large regions there are: the rates query reads region_days for a pair of them.
CREATE VIEW rollup_regions AS SELECT DISTINCT region AS slug FROM port_rollups;

-- One number that changes whenever what the rates query answers changes (a batch counts, a
-- batch is reverted, a dump is loaded): the rates API's ETag.
CREATE TABLE data_version (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    version   bigint  NOT NULL
);
-- Starts at the clock (ms), so a database made anew never repeats an earlier one's versions.
INSERT INTO data_version (version) VALUES ((extract(epoch FROM clock_timestamp()) * 1000)::bigint);

GRANT SELECT ON rollup_settings, port_rollups, rollup_regions, region_days, data_version
    TO rates_read, rates_write;
-- Applying a batch (worker) and reverting one (API) change the totals and the version.
GRANT INSERT, UPDATE, DELETE ON region_days TO rates_read, rates_write;
GRANT INSERT ON route_days TO rates_read;
GRANT DELETE ON route_days TO rates_write;
GRANT UPDATE ON data_version TO rates_read, rates_write;

-- The totals of the data already here (later loads rebuild them: rates.db.queries).
INSERT INTO port_rollups (port, region)
WITH RECURSIVE ancestry AS (
    SELECT code AS port, parent_slug AS region FROM ports
    UNION ALL
    SELECT ancestry.port, regions.parent_slug
    FROM ancestry JOIN regions ON regions.slug = ancestry.region
    WHERE regions.parent_slug IS NOT NULL
)
SELECT port, region FROM ancestry
WHERE region IN (SELECT region FROM ancestry GROUP BY region
                 HAVING count(*) >= (SELECT rollup_min_ports FROM rollup_settings));

INSERT INTO region_days (orig_region, dest_region, day, total, prices)
SELECT origin.region, destination.region, route_days.day, sum(route_days.total),
       sum(route_days.prices)
FROM route_days
JOIN port_rollups AS origin ON origin.port = route_days.orig_code
JOIN port_rollups AS destination ON destination.port = route_days.dest_code
GROUP BY 1, 2, 3;

