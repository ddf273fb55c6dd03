-- Heartbeats: while it applies a batch, a worker stamps its attempt every few seconds from its
-- side connection. An open attempt whose stamp is older than RATES_WORKER_STALE_AFTER_S belongs
-- to a worker that hangs with its connection alive (a stopped process): it still holds the
-- batch, so another worker ends that backend (0013), which rolls the batch back and frees it.
-- NULL: an attempt of an older worker, which sends no heartbeat and is never judged stale.
ALTER TABLE batch_attempts ADD COLUMN heartbeat_at timestamptz;

-- The open attempts, where the watchdog looks: a handful at any time among all ever made.
CREATE INDEX batch_attempts_open_idx ON batch_attempts (batch_id) WHERE finished_at IS NULL;
