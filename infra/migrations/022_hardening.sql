-- Hardening found while moving the services to least-privilege logins (019).

-- The migration ledger is the owner's: a service login that could insert a row there could make a future
-- migration (a security control among them) look applied, and it would never run. fedstream_secure_tables()
-- (017) re-grants every table of public to the services each time it runs, so the revoke lives in it: the
-- 017 body keeps its job under another name and the function of that name revokes after it.
ALTER FUNCTION fedstream_secure_tables() RENAME TO fedstream_secure_tables_017;
CREATE FUNCTION fedstream_secure_tables() RETURNS void LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM fedstream_secure_tables_017();
    REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON schema_migrations FROM fedstream_service;
END $fn$;
SELECT fedstream_secure_tables();

-- The admin API only ever spends TOTP steps at runtime; issuing and rotating sealed secrets is the owner's
-- (`fedstream api user add|rotate-totp` run with the owner's login), so the API login cannot overwrite them.
REVOKE UPDATE ON admin_api.users FROM fedstream_api;
GRANT UPDATE (totp_last_step) ON admin_api.users TO fedstream_api;
