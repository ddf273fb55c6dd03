-- post-deploy
-- no-transaction
-- Contracts 0017: the index over every route-day row went into each append and merge, and only
-- the release before 0017 read through it. Applied once that release no longer serves (its
-- readers would scan the whole table without it); dropped concurrently, so no reader waits.
DROP INDEX CONCURRENTLY IF EXISTS route_days_route_day_idx;
