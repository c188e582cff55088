-- The privacy ledger with differential privacy: each charge keeps the mechanism it paid for and the ε
-- both accountants computed; refusals are kept too; a DPO reads the remaining budgets in one view.

-- What each charge paid for (NULL for plaintext updates, which claim no ε), and ε by each accountant.
-- ``epsilon`` stays the charged figure: the cumulative ε of this participant × dataset once the
-- update counts, the tighter (min) of ``epsilon_rdp`` and ``epsilon_pld``, both valid upper bounds.
ALTER TABLE privacy_ledger
    ADD COLUMN dataset_id       text,
    ADD COLUMN noise_multiplier double precision CHECK (noise_multiplier IS NULL OR noise_multiplier > 0),
    ADD COLUMN sample_rate      double precision CHECK (sample_rate IS NULL OR (sample_rate > 0 AND sample_rate <= 1)),
    ADD COLUMN steps            integer          CHECK (steps IS NULL OR steps >= 0),
    ADD COLUMN clipping_norm    double precision CHECK (clipping_norm IS NULL OR clipping_norm > 0),
    ADD COLUMN reported_delta   double precision,
    ADD COLUMN epsilon_rdp      double precision,
    ADD COLUMN epsilon_pld      double precision,
    ADD COLUMN accountant       text             CHECK (accountant IS NULL OR accountant IN ('rdp', 'pld')),
    ADD COLUMN budget_epsilon   double precision;
ALTER TABLE privacy_ledger ADD CONSTRAINT privacy_ledger_dp_complete CHECK (
    (dataset_id IS NULL) = (noise_multiplier IS NULL)
    AND (dataset_id IS NULL) = (epsilon IS NULL)
    AND (epsilon IS NULL OR epsilon <= budget_epsilon)
);
-- Composition reads a participant's whole history on a dataset, across federations.
CREATE INDEX privacy_ledger_by_dataset ON privacy_ledger (participant_id, dataset_id, charged_at) WHERE dataset_id IS NOT NULL;

-- Each federation's budget, from its spec (seed §2.1: by data sensitivity).
CREATE TABLE privacy_federations (
    federation_id  text             PRIMARY KEY,
    budget_epsilon double precision NOT NULL CHECK (budget_epsilon > 0),
    budget_delta   double precision NOT NULL CHECK (budget_delta > 0 AND budget_delta < 1),
    requires_dp    boolean          NOT NULL
);

-- Updates the ledger refused: never charged, never aggregated. One row per update, ever.
CREATE TABLE privacy_refusals (
    update_id         uuid             PRIMARY KEY,
    federation_id     text             NOT NULL,
    participant_id    text             NOT NULL,
    round             integer          NOT NULL,
    dataset_id        text,
    reason            text             NOT NULL,
    detail            text             NOT NULL,
    epsilon_spent     double precision NOT NULL,
    epsilon_requested double precision,
    budget_epsilon    double precision NOT NULL,
    budget_delta      double precision NOT NULL,
    refused_at        timestamptz      NOT NULL
);
CREATE INDEX privacy_refusals_by_participant ON privacy_refusals (federation_id, participant_id);

-- Remaining budget per federation × participant × dataset. ε composes across federations on the
-- same dataset, so ``epsilon_spent`` is the participant's cumulative ε on the dataset (it only grows,
-- so the latest charge is the largest); ``exhausted`` once an update of this federation was refused.
CREATE VIEW privacy_budget_remaining AS
WITH subjects AS (
    SELECT federation_id, participant_id, dataset_id FROM privacy_ledger WHERE dataset_id IS NOT NULL
    UNION
    SELECT federation_id, participant_id, dataset_id FROM privacy_refusals WHERE dataset_id IS NOT NULL
), spent AS (
    SELECT participant_id, dataset_id, max(epsilon) AS epsilon_spent
    FROM privacy_ledger WHERE dataset_id IS NOT NULL GROUP BY participant_id, dataset_id
), here AS (
    SELECT federation_id, participant_id, dataset_id, count(*) AS charges, max(round) AS last_round,
           (array_agg(accountant ORDER BY epsilon DESC))[1] AS accountant
    FROM privacy_ledger WHERE dataset_id IS NOT NULL GROUP BY federation_id, participant_id, dataset_id
)
SELECT s.federation_id, s.participant_id, s.dataset_id,
       f.budget_epsilon, f.budget_delta,
       coalesce(sp.epsilon_spent, 0)                                   AS epsilon_spent,
       greatest(f.budget_epsilon - coalesce(sp.epsilon_spent, 0), 0)   AS epsilon_remaining,
       coalesce(h.charges, 0)                                          AS charges,
       h.last_round,
       h.accountant,
       EXISTS (SELECT 1 FROM privacy_refusals r
               WHERE r.federation_id = s.federation_id AND r.participant_id = s.participant_id) AS exhausted
FROM subjects s
JOIN privacy_federations f USING (federation_id)
LEFT JOIN spent sp USING (participant_id, dataset_id)
LEFT JOIN here h USING (federation_id, participant_id, dataset_id);
