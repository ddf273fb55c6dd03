-- Least-privilege group roles. Login roles (rates_api, rates_worker) are made members of them
-- by `rates db grant-logins`, with passwords that never appear in a migration.
-- Roles are cluster-wide: create them only once; grants are per database.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'rates_read') THEN
        CREATE ROLE rates_read NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'rates_write') THEN
        CREATE ROLE rates_write NOLOGIN;
    END IF;
END
$$;

-- The API: answers rates queries, registers submitted batches and reverts them.
GRANT USAGE ON SCHEMA public TO rates_read, rates_write;
GRANT SELECT ON regions, ports, prices, batches, batch_attempts, schema_migrations TO rates_read;
GRANT INSERT, UPDATE ON batches TO rates_read;
GRANT DELETE ON prices TO rates_read;

-- The worker: applies batches and records attempts; registers S3 objects (Lambda, CLI).
GRANT SELECT ON regions, ports, prices, batches, batch_attempts, schema_migrations TO rates_write;
GRANT INSERT ON prices TO rates_write;
GRANT INSERT, UPDATE ON batches, batch_attempts TO rates_write;
