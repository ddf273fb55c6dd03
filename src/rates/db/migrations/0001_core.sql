-- Ports, the region tree and prices, with the columns of the original pg_dump.
-- Prices carry no foreign keys: a per-row FK trigger makes bulk COPY several times slower, and
-- every path that writes prices (dump load, demo data, batch ingestion) proves its references.

CREATE TABLE regions (
    slug        text PRIMARY KEY,
    name        text NOT NULL,
    parent_slug text REFERENCES regions (slug) DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX regions_parent_slug_idx ON regions (parent_slug);

CREATE TABLE ports (
    code        text PRIMARY KEY,
    name        text NOT NULL,
    parent_slug text NOT NULL REFERENCES regions (slug) DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX ports_parent_slug_idx ON ports (parent_slug);

CREATE TABLE prices (
    orig_code text    NOT NULL,
    dest_code text    NOT NULL,
    day       date    NOT NULL,
    price     integer NOT NULL
);
-- Serves every rates query with an index-only scan: route, then day range, price included.
CREATE INDEX prices_route_day_idx ON prices (orig_code, dest_code, day) INCLUDE (price);
