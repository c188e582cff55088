-- Validation's state: candidates awaiting federated evaluation, the reports, and accepted scores.
CREATE TABLE validation_federations (
    federation_id         text             PRIMARY KEY,
    spec                  jsonb            NOT NULL,
    evaluation_deadline_s double precision NOT NULL
);

CREATE TABLE validation_candidates (
    federation_id text        NOT NULL,
    round         integer     NOT NULL,
    candidate     jsonb       NOT NULL,
    contributions jsonb       NOT NULL,
    deadline      timestamptz NOT NULL,
    decided       boolean     NOT NULL,
    accepted      boolean,
    score         double precision,
    PRIMARY KEY (federation_id, round)
);
CREATE INDEX validation_candidates_due ON validation_candidates (deadline) WHERE NOT decided;

CREATE TABLE validation_evaluations (
    federation_id    text    NOT NULL,
    round            integer NOT NULL,
    participant_id   text    NOT NULL,
    candidate_sha256 text    NOT NULL,
    report           jsonb   NOT NULL,
    PRIMARY KEY (federation_id, round, participant_id)
);
