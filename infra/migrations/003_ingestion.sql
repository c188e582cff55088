-- Ingestion's admission state, projected from the registry's and aggregator's events.
CREATE TABLE ingestion_federations (
    federation_id    text    PRIMARY KEY,
    participants     text[]  NOT NULL,
    params           jsonb   NOT NULL,
    max_update_bytes bigint  NOT NULL,
    active           boolean NOT NULL
);

CREATE TABLE ingestion_rounds (
    federation_id text        NOT NULL REFERENCES ingestion_federations,
    round         integer     NOT NULL,
    participants  text[]      NOT NULL,
    deadline      timestamptz NOT NULL,
    open          boolean     NOT NULL,
    PRIMARY KEY (federation_id, round)
);

-- One admitted update per participant and round.
CREATE TABLE ingestion_admissions (
    federation_id  text    NOT NULL,
    round          integer NOT NULL,
    participant_id text    NOT NULL,
    update_id      uuid    NOT NULL UNIQUE,
    PRIMARY KEY (federation_id, round, participant_id)
);
