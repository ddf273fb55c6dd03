-- The watchdog's one privilege: ending the database session of a hung worker. Workers log in as
-- members of rates_write, which may not signal other sessions; this function runs as its owner
-- (the role that migrates: a superuser locally, the master user in RDS/Aurora, whose
-- rds_superuser may terminate any connection; otherwise it needs pg_signal_backend, or the
-- workers must log in as that role) and terminates one backend only when all of these hold:
-- * the attempt is still open and its heartbeat is older than stale_after (at least 5 s);
-- * that attempt's backend holds its batch's advisory lock (key 0x6261 = 25185, the batch id:
--   rates.ingest.batches.BATCH_LOCK_SPACE), i.e. it is applying that very batch right now.
-- Termination rolls the batch's transaction back, which releases the batch to the next claim.
-- It then closes the attempt as crashed, naming who ended it, and returns true; otherwise it
-- touches nothing and returns false.
CREATE FUNCTION rates_end_stale_attempt(
    p_batch_id bigint, p_attempt integer, p_stale_after interval, p_ended_by text
) RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    stale record;
BEGIN
    IF p_stale_after IS NULL OR p_stale_after < interval '5 seconds' THEN
        RAISE EXCEPTION 'stale_after must be at least 5 seconds, not %', p_stale_after
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT a.backend_pid, now() - a.heartbeat_at AS silent_for INTO stale
    FROM public.batch_attempts AS a
    WHERE a.batch_id = p_batch_id AND a.attempt = p_attempt AND a.finished_at IS NULL
      AND a.heartbeat_at < now() - p_stale_after
      AND EXISTS (
          SELECT FROM pg_locks AS l
          WHERE l.pid = a.backend_pid AND l.locktype = 'advisory' AND l.granted
            AND l.classid = 25185 AND l.objid = a.batch_id AND l.objsubid = 2
            AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()))
    FOR UPDATE OF a;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    -- Waits up to 5 s for the backend to exit, so the batch is free when this returns; if it
    -- has not exited by then the attempt stays open and the next look tries again.
    IF NOT pg_terminate_backend(stale.backend_pid, 5000) THEN
        RETURN false;
    END IF;
    UPDATE public.batch_attempts
    SET finished_at = now(), outcome = 'crashed',
        error = format('no heartbeat for %s s (stale after %s s): its database session %s was'
                       ' ended by %s', round(extract(epoch FROM stale.silent_for)),
                       round(extract(epoch FROM p_stale_after)), stale.backend_pid,
                       left(p_ended_by, 200))
    WHERE batch_id = p_batch_id AND attempt = p_attempt;
    RETURN true;
END
$$;

REVOKE ALL ON FUNCTION rates_end_stale_attempt(bigint, integer, interval, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION rates_end_stale_attempt(bigint, integer, interval, text) TO rates_write;
