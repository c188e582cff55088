-- Participant identity (zero trust). The registry owns enrolments and decides on identity commands;
-- ingestion keeps its own projection of the facts for admission, and a durable replay backstop.

-- Registry: who is enrolled, under which organisation (the tenant), with which keys, consents and BAAs.
CREATE TABLE participant_enrolments (
    participant_id text        PRIMARY KEY,
    organisation   text        NOT NULL,
    baa_reference  text,
    enrolled_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE participant_keys (
    key_id         text        PRIMARY KEY,
    participant_id text        NOT NULL REFERENCES participant_enrolments,
    public_key     text        NOT NULL,
    enrolled_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at     timestamptz,
    revoked_reason text
);

CREATE TABLE participant_consents (
    participant_id text        NOT NULL,
    purpose        text        NOT NULL,
    scope          text        NOT NULL,  -- a federation id, or '*' for every federation
    expires_at     timestamptz NOT NULL,
    granted        boolean     NOT NULL,
    recorded_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (participant_id, purpose, scope)
);

CREATE TABLE baa_registry (
    organisation  text        PRIMARY KEY,
    reference     text        NOT NULL,
    expires_at    timestamptz NOT NULL,
    active        boolean     NOT NULL,
    recorded_at   timestamptz NOT NULL DEFAULT now()
);

-- Ingestion's projection of the identity facts (its own tables: services share no state).
CREATE TABLE ingestion_keys (
    key_id         text    PRIMARY KEY,
    participant_id text    NOT NULL,
    organisation   text    NOT NULL,
    public_key     text    NOT NULL,
    revoked        boolean NOT NULL DEFAULT false
);

CREATE TABLE ingestion_consents (
    participant_id text        NOT NULL,
    purpose        text        NOT NULL,
    scope          text        NOT NULL,
    expires_at     timestamptz NOT NULL,
    granted        boolean     NOT NULL,
    PRIMARY KEY (participant_id, purpose, scope)
);

CREATE TABLE ingestion_baas (
    organisation text        PRIMARY KEY,
    expires_at   timestamptz NOT NULL,
    active       boolean     NOT NULL
);

-- The durable replay backstop behind Redis' SET NX: a nonce is used once, even after Redis loses it.
-- Rows older than the freshness window may be pruned: a message that old is refused as stale anyway.
CREATE TABLE ingestion_nonces (
    key_id    text        NOT NULL,
    nonce     text        NOT NULL,
    event_id  uuid        NOT NULL,
    signed_at timestamptz NOT NULL,
    PRIMARY KEY (key_id, nonce)
);
CREATE INDEX ingestion_nonces_by_time ON ingestion_nonces (signed_at);

-- Submissions that arrive before ingestion has seen their federation or round open (those come on
-- another topic, so order is not guaranteed): admitted when the round opens, refused after a TTL.
CREATE TABLE ingestion_parked (
    update_id     uuid        PRIMARY KEY,
    federation_id text        NOT NULL,
    round         integer     NOT NULL,
    parked_at     timestamptz NOT NULL,
    event         jsonb       NOT NULL
);
CREATE INDEX ingestion_parked_by_round ON ingestion_parked (federation_id, round);
