-- The privacy ledger: one charge per update, ever (the primary key), readable by a DPO in SQL.
CREATE TABLE privacy_ledger (
    update_id      uuid             PRIMARY KEY,
    federation_id  text             NOT NULL,
    participant_id text             NOT NULL,
    round          integer          NOT NULL,
    mechanism      text             NOT NULL,
    epsilon        double precision CHECK (epsilon IS NULL OR epsilon >= 0),
    delta          double precision CHECK (delta IS NULL OR (delta >= 0 AND delta < 1)),
    charged_at     timestamptz      NOT NULL
);
CREATE INDEX privacy_ledger_by_participant ON privacy_ledger (federation_id, participant_id, round);
