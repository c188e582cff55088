-- Aggregation's durable round state machine: a restarted aggregator resumes every round from here.
CREATE TABLE aggregation_rounds (
    federation_id text        NOT NULL,
    round         integer     NOT NULL,
    quorum        integer     NOT NULL,
    deadline      timestamptz NOT NULL,
    participants  text[]      NOT NULL,
    received      integer     NOT NULL DEFAULT 0,  -- counted contributions, kept with the row lock
    status        text        NOT NULL CHECK (status IN ('collecting', 'aggregated', 'failed')),
    closed_by     text,
    closed_at     timestamptz,
    PRIMARY KEY (federation_id, round)
);
CREATE INDEX aggregation_rounds_due ON aggregation_rounds (deadline) WHERE status = 'collecting';

-- One counted update per participant and round: the primary key is what makes "counted at most once" true.
CREATE TABLE aggregation_contributions (
    federation_id  text    NOT NULL,
    round          integer NOT NULL,
    participant_id text    NOT NULL,
    update_id      uuid    NOT NULL UNIQUE,
    num_examples   integer NOT NULL CHECK (num_examples > 0),
    blob           jsonb   NOT NULL,
    PRIMARY KEY (federation_id, round, participant_id),
    FOREIGN KEY (federation_id, round) REFERENCES aggregation_rounds (federation_id, round)
);
