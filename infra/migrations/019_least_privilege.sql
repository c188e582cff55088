-- Least privilege at runtime. Migrations run as the owner; the six services and the key custodian connect as
-- fedstream_app (017), the admin API as fedstream_api (here): logins that own nothing and cannot bypass RLS.
-- What those logins still need that only an owner may do is granted here, one narrow door each.

-- The logins, for a role that existed before too (roles are cluster-wide; a DBA may have made them). As in
-- 017, attributes and memberships are only changed where they differ: changing them needs privileges a
-- non-superuser owner lacks, even to set them as they are.
DO $$
DECLARE
    r text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'fedstream_app') THEN
        CREATE ROLE fedstream_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
    END IF;
    IF NOT pg_has_role('fedstream_app', 'fedstream_service', 'MEMBER') THEN
        GRANT fedstream_service TO fedstream_app;
    END IF;
    -- The admin API acts as one human role per request (tenant_transaction: SET LOCAL ROLE). NOINHERIT: outside
    -- those transactions it has only its own grants below, not the union of the four roles'.
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'fedstream_api') THEN
        CREATE ROLE fedstream_api LOGIN NOINHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
    END IF;
    FOREACH r IN ARRAY ARRAY['fedstream_tenant', 'fedstream_auditor', 'fedstream_dpo', 'fedstream_admin'] LOOP
        IF NOT pg_has_role('fedstream_api', r, 'MEMBER') THEN
            EXECUTE format('GRANT %I TO fedstream_api', r);
        END IF;
    END LOOP;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname IN ('fedstream_app', 'fedstream_api')
               AND (rolsuper OR rolbypassrls OR rolcreatedb OR rolcreaterole OR rolreplication)) THEN
        ALTER ROLE fedstream_app NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
        ALTER ROLE fedstream_api NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
    END IF;
END $$;

-- The API's user directory (018): looked up by token hash, and each TOTP step spent once (UPDATE). Adding
-- users stays with the owner (`fedstream api user add` runs with the owner's login). No group role gets it.
GRANT USAGE ON SCHEMA admin_api TO fedstream_api;
GRANT SELECT, UPDATE ON admin_api.users TO fedstream_api;

-- Both logins check at start that the owner has migrated (fedstream.storage.postgres.wait_until_migrated).
GRANT SELECT ON schema_migrations TO fedstream_service, fedstream_api;

-- Nobody but the owner creates objects in public (PostgreSQL 15+ already defaults to this; older ones do not).
-- It also keeps the SECURITY DEFINER function below from resolving a name to an object a login planted there.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;

-- Validation's timer creates the time series' month partitions ahead (012). Creating and attaching a
-- partition needs ownership, so this runs as the owner: no arguments (only these two tables), a fixed
-- search_path (pg_temp last, so no temporary object shadows a table), EXECUTE for the services only.
-- New partitions then get the grants and policies every table gets.
CREATE FUNCTION fedstream_extend_metric_partitions() RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    created integer;
BEGIN
    created := fedstream_create_metric_partitions('round_metrics') + fedstream_create_metric_partitions('participant_metrics');
    IF created > 0 THEN
        PERFORM fedstream_secure_tables();
    END IF;
    RETURN created;
END $$;
REVOKE EXECUTE ON FUNCTION fedstream_extend_metric_partitions() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION fedstream_extend_metric_partitions() TO fedstream_service;
-- The general one (any partitioned table) is the owner's alone now.
REVOKE EXECUTE ON FUNCTION fedstream_create_metric_partitions(regclass, integer) FROM PUBLIC;
