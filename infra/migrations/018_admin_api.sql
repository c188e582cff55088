-- Users of the admin/compliance API (issue 5 §6). Bearer tokens are stored as SHA-256 only (they are
-- 256-bit random, so a fast hash suffices); the TOTP secret is the second factor for privileged actions.
-- A schema of its own: no application role has USAGE on it, and 017's grants and default privileges,
-- which cover schema public, never reach it.
CREATE SCHEMA admin_api;

CREATE TABLE admin_api.users (
    user_id        text        PRIMARY KEY,
    role           text        NOT NULL CHECK (role IN ('admin', 'auditor', 'dpo', 'site_operator')),
    -- A site operator acts for exactly one organisation (tenant); the other roles for none.
    tenant         text        CHECK ((role = 'site_operator') = (tenant IS NOT NULL)),
    token_sha256   text        NOT NULL UNIQUE CHECK (token_sha256 ~ '^[0-9a-f]{64}$'),
    totp_secret    text        NOT NULL,
    -- The last TOTP time step accepted: a code is good once, so an overheard one cannot be replayed.
    totp_last_step bigint,
    created_at     timestamptz NOT NULL DEFAULT now(),
    disabled       boolean     NOT NULL DEFAULT false
);

