-- The registry. Two kinds of tables:
--   registry_state: the registry's own decision state (current round, latest version);
--   everything else: read views materialised from the event stream only (replayable).
-- Seed §2.2: models (model_id, version, created_at, updated_at, status), updates, audit trails.

CREATE TABLE registry_state (
    federation_id  text    PRIMARY KEY,
    spec           jsonb   NOT NULL,
    current_round  integer NOT NULL,
    latest_version integer NOT NULL,
    latest_model   jsonb   NOT NULL,
    completed      boolean NOT NULL
);

CREATE TABLE federations (
    federation_id       text        PRIMARY KEY,
    project_name        text        NOT NULL,
    use_case            text        NOT NULL,
    crypto              text        NOT NULL,
    spec                jsonb       NOT NULL,
    created_at          timestamptz NOT NULL,
    completed_at        timestamptz,
    completion_reason   text,
    rounds_run          integer,
    final_model_version integer
);

CREATE TABLE participants (
    federation_id  text        NOT NULL REFERENCES federations,
    participant_id text        NOT NULL,
    organisation   text        NOT NULL,
    kind           text        NOT NULL,
    enrolled_at    timestamptz NOT NULL,
    PRIMARY KEY (federation_id, participant_id)
);

CREATE TABLE models (
    model_id      text        PRIMARY KEY,
    federation_id text        NOT NULL REFERENCES federations,
    architecture  text        NOT NULL,
    spec          jsonb       NOT NULL,
    params        jsonb       NOT NULL,
    status        text        NOT NULL CHECK (status IN ('training', 'completed')),
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);

CREATE TABLE model_versions (
    model_id    text        NOT NULL REFERENCES models,
    version     integer     NOT NULL,
    round       integer,
    blob_uri    text        NOT NULL,
    sha256      text        NOT NULL,
    size        bigint      NOT NULL,
    metrics     jsonb,
    released_at timestamptz NOT NULL,
    PRIMARY KEY (model_id, version)
);

-- Which updates reached which model version: what an erasure request must be able to trace.
CREATE TABLE model_lineage (
    model_id       text    NOT NULL,
    version        integer NOT NULL,
    update_id      uuid    NOT NULL,
    participant_id text    NOT NULL,
    num_examples   integer NOT NULL,
    sha256         text    NOT NULL,
    PRIMARY KEY (model_id, version, update_id),
    FOREIGN KEY (model_id, version) REFERENCES model_versions
);

-- One row per round; each event fills its own columns, so projection order across topics is irrelevant.
CREATE TABLE rounds (
    federation_id    text        NOT NULL,
    round            integer     NOT NULL,
    model_version    integer,
    quorum           integer,
    deadline         timestamptz,
    participants     text[],
    opened_at        timestamptz,
    aggregated_at    timestamptz,
    closed_by        text,
    aggregate_sha256 text,
    contributors     integer,
    failed_at        timestamptz,
    failure_reason   text,
    validated_at     timestamptz,
    rejected_at      timestamptz,
    rejection_gate   text,
    metrics          jsonb,
    released_version integer,
    released_at      timestamptz,
    PRIMARY KEY (federation_id, round)
);

CREATE VIEW round_status AS
SELECT federation_id, round, model_version, opened_at, contributors, metrics,
       CASE WHEN released_at   IS NOT NULL THEN 'released'
            WHEN rejected_at   IS NOT NULL THEN 'rejected'
            WHEN validated_at  IS NOT NULL THEN 'validated'
            WHEN failed_at     IS NOT NULL THEN 'failed'
            WHEN aggregated_at IS NOT NULL THEN 'aggregated'
            ELSE 'open' END AS status,
       extract(epoch FROM (coalesce(released_at, rejected_at, failed_at) - opened_at)) AS duration_s
FROM rounds;

CREATE TABLE updates (
    update_id      uuid        PRIMARY KEY,
    federation_id  text        NOT NULL,
    round          integer     NOT NULL,
    participant_id text        NOT NULL,
    sha256         text        NOT NULL,
    size           bigint      NOT NULL,
    num_examples   integer     NOT NULL,
    train_loss     double precision,
    accepted_at    timestamptz NOT NULL
);
CREATE INDEX updates_by_round ON updates (federation_id, round);

CREATE TABLE update_rejections (
    event_id       uuid        PRIMARY KEY,
    update_id      uuid        NOT NULL,
    federation_id  text        NOT NULL,
    round          integer     NOT NULL,
    participant_id text        NOT NULL,
    reason         text        NOT NULL,
    detail         text        NOT NULL,
    rejected_by    text        NOT NULL,
    rejected_at    timestamptz NOT NULL
);
CREATE INDEX update_rejections_by_round ON update_rejections (federation_id, round);
