-- Roll-ups update route_days in place. With total and prices INCLUDEd in the primary key every
-- update wrote a new index entry and left the page not all-visible, so index-only scans turned
-- into heap fetches until the next vacuum: region queries got 50-100% slower with each burst
-- of batches (bench.scale). A plain key and free room on every page make those updates HOT
-- (same page, no index entry, old versions pruned on the fly): reads cost ~10% more when
-- fresh and stay there, and a roll-up is ~30% cheaper.
ALTER TABLE route_days DROP CONSTRAINT route_days_pkey;
ALTER TABLE route_days ADD PRIMARY KEY (orig_code, dest_code, day);
ALTER TABLE route_days SET (fillfactor = 80);
-- Rewrites the table with that room, each route's days side by side.
CLUSTER route_days USING route_days_pkey;
