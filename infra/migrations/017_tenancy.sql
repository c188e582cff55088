-- Tenant isolation (issue 5 §3). Tenant = organisation. Application roles are NOLOGIN groups that own
-- nothing and cannot bypass RLS; the migrating role (the owner) keeps ownership. A login role joins one
-- group; `fedstream.storage.tenancy.tenant_transaction` switches to a group with SET LOCAL ROLE and sets
-- the tenant for that transaction only (set_config(..., true)), so a pooled connection never carries it on.
--
--   fedstream_service  the six services: cross-tenant processors, trusted by design, every row
--   fedstream_tenant   site operators: read-only, rows of their organisation's participants only
--   fedstream_auditor  read-only, all tenants: audit trail, privacy ledger, registry (no participant lists)
--   fedstream_dpo      data protection officer: read-only, all tenants, all participant data
--   fedstream_admin    platform admin: read-only, registry and participants/enrolments (not ledger, not audit)

DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['fedstream_service', 'fedstream_tenant', 'fedstream_auditor', 'fedstream_dpo', 'fedstream_admin'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN', r);
        END IF;
        -- Also for a role that existed before (roles are cluster-wide): never privileged, whoever made it.
        -- (Only when it is: altering these attributes needs a superuser, even to set them as they are.)
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r
                   AND (rolsuper OR rolbypassrls OR rolcanlogin OR rolcreatedb OR rolcreaterole OR rolreplication)) THEN
            EXECUTE format('ALTER ROLE %I NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS', r);
        END IF;
        -- A migrating role that is not a superuser (which would bypass RLS) is subject to FORCE ROW LEVEL
        -- SECURITY as the tables' owner: as a member of the groups it gets the services' policies for its
        -- own work and may SET ROLE to the others in tenant_transaction. (Where a DBA made the roles, the
        -- DBA grants this membership beforehand.)
        IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AND NOT pg_has_role(current_user, r, 'MEMBER') THEN
            EXECUTE format('GRANT %I TO %I', r, current_user);
        END IF;
    END LOOP;
END $$;

-- The login the six services are meant to use instead of the owner: a member of fedstream_service that owns
-- nothing and cannot bypass RLS. No password here: the embedded stack trusts loopback; a deployment sets one.
-- (Migrations keep running as the owner: this login may not create anything.)
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'fedstream_app') THEN
        CREATE ROLE fedstream_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS IN ROLE fedstream_service;
    END IF;
END $$;

-- The tenant of the current transaction; NULL when unset (or reset to '' after an earlier transaction).
CREATE FUNCTION fedstream_current_tenant() RETURNS text LANGUAGE sql STABLE
AS $$ SELECT nullif(current_setting('fedstream.tenant', true), '') $$;

-- The current tenant's participants. SECURITY INVOKER (the default): the caller's own privileges and
-- policies apply to the lookup too, so it can widen nothing. participant_enrolments (migration 014,
-- one row per participant, PRIMARY KEY participant_id) is the single source of who belongs to whom.
SET LOCAL check_function_bodies = off;
CREATE FUNCTION fedstream_tenant_participants() RETURNS SETOF text LANGUAGE sql STABLE
AS $$ SELECT participant_id FROM participant_enrolments WHERE organisation = fedstream_current_tenant() $$;

-- (Re)applies grants, RLS and policies to every table and view present. Idempotent: a later migration
-- that adds a table holding participant rows ends with `SELECT fedstream_secure_tables();`.
CREATE FUNCTION fedstream_secure_tables() RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
    t record;
    tenant_rows text;
BEGIN
    GRANT USAGE ON SCHEMA public TO fedstream_service, fedstream_tenant, fedstream_auditor, fedstream_dpo, fedstream_admin;
    GRANT EXECUTE ON FUNCTION fedstream_current_tenant(), fedstream_tenant_participants() TO fedstream_tenant;

    -- The services: everything, except rewriting history.
    GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO fedstream_service;
    GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO fedstream_service;
    REVOKE UPDATE, DELETE, TRUNCATE ON audit_trail FROM fedstream_service;
    -- Signed checkpoints are history too: appended, never rewritten.
    REVOKE UPDATE, DELETE, TRUNCATE ON audit_checkpoints FROM fedstream_service;

    -- Registry reference data (no participant rows): every human role reads it. A site operator does not
    -- see rounds.participants (other tenants' participant ids).
    GRANT SELECT ON federations, models, model_versions TO fedstream_tenant, fedstream_auditor, fedstream_dpo, fedstream_admin;
    GRANT SELECT ON rounds TO fedstream_auditor, fedstream_dpo, fedstream_admin;
    GRANT SELECT (federation_id, round, model_version, quorum, deadline, opened_at, aggregated_at, closed_by,
                  aggregate_sha256, contributors, failed_at, failure_reason, validated_at, rejected_at,
                  rejection_gate, metrics, released_version, released_at) ON rounds TO fedstream_tenant;
    GRANT SELECT ON round_status TO fedstream_tenant, fedstream_auditor, fedstream_dpo, fedstream_admin;

    -- Oversight: the audit trail and the ledgers.
    GRANT SELECT ON audit_trail, audit_checkpoints TO fedstream_auditor, fedstream_dpo;
    GRANT SELECT ON privacy_federations, privacy_budget_remaining TO fedstream_tenant, fedstream_auditor, fedstream_dpo;
    GRANT SELECT ON privacy_central_ledger TO fedstream_auditor, fedstream_dpo;
    GRANT SELECT ON privacy_ledger, privacy_refusals TO fedstream_auditor;
    GRANT SELECT ON participants TO fedstream_admin;
    IF to_regclass('participant_enrolments') IS NOT NULL THEN
        GRANT SELECT ON participant_enrolments TO fedstream_admin;
    END IF;

    -- Every table holding participant rows: RLS forced (the owner too), one policy per role.
    FOR t IN
        SELECT c.relname,
               EXISTS (SELECT 1 FROM pg_attribute a
                       WHERE a.attrelid = c.oid AND a.attname = 'participant_id' AND NOT a.attisdropped) AS by_participant
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
          AND EXISTS (SELECT 1 FROM pg_attribute a
                      WHERE a.attrelid = c.oid AND a.attname IN ('participant_id', 'organisation') AND NOT a.attisdropped)
    LOOP
        -- Enrolments (and organisation-only tables) name the tenant themselves; the rest go through the
        -- enrolment lookup (which must not be used on enrolments: the policy would recurse).
        tenant_rows := CASE WHEN t.relname = 'participant_enrolments' OR NOT t.by_participant
                            THEN 'organisation = fedstream_current_tenant()'
                            ELSE 'participant_id IN (SELECT fedstream_tenant_participants())' END;
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t.relname);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t.relname);
        EXECUTE format('DROP POLICY IF EXISTS service_all ON %I', t.relname);
        EXECUTE format('CREATE POLICY service_all ON %I TO fedstream_service USING (true) WITH CHECK (true)', t.relname);
        EXECUTE format('DROP POLICY IF EXISTS tenant_own ON %I', t.relname);
        EXECUTE format('CREATE POLICY tenant_own ON %I FOR SELECT TO fedstream_tenant USING (%s)', t.relname, tenant_rows);
        EXECUTE format('DROP POLICY IF EXISTS oversight_read ON %I', t.relname);
        EXECUTE format('CREATE POLICY oversight_read ON %I FOR SELECT TO fedstream_auditor, fedstream_dpo, fedstream_admin USING (true)', t.relname);
        EXECUTE format('GRANT SELECT ON %I TO fedstream_tenant, fedstream_dpo', t.relname);
    END LOOP;

    -- Views check their base tables with the querying role's rights and policies, not their owner's.
    FOR t IN SELECT viewname AS relname FROM pg_views WHERE schemaname = 'public' LOOP
        EXECUTE format('ALTER VIEW %I SET (security_invoker = true)', t.relname);
    END LOOP;
END $fn$;

SELECT fedstream_secure_tables();

-- Tables later migrations create are the services' to use as well (participant tables still need the
-- call above to get their policies).
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO fedstream_service;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO fedstream_service;
