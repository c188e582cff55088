-- Central DP-FedAvg: the aggregator needs each round's base model (deltas are clipped against it) and
-- each federation's central policy with its current clipping norm (adaptive clipping moves it).
ALTER TABLE aggregation_rounds ADD COLUMN base_model jsonb;

CREATE TABLE aggregation_policies (
    federation_id          text             PRIMARY KEY,
    noise_multiplier       double precision NOT NULL CHECK (noise_multiplier >= 0),
    clip_norm              double precision NOT NULL CHECK (clip_norm > 0),
    adaptive               boolean          NOT NULL,
    target_quantile        double precision NOT NULL,
    clipping_learning_rate double precision NOT NULL
);

-- The ledger of the central mechanism (seed: ε = 1.0 for aggregate statistics): one row per round,
-- ε cumulative over the federation's rounds, by both accountants, the tighter one charged.
CREATE TABLE privacy_central_ledger (
    federation_id    text             NOT NULL,
    round            integer          NOT NULL,
    noise_multiplier double precision NOT NULL,
    clip_norm        double precision NOT NULL,
    fraction_clipped double precision NOT NULL,
    epsilon          double precision,
    epsilon_rdp      double precision,
    epsilon_pld      double precision,
    delta            double precision NOT NULL,
    charged_at       timestamptz      NOT NULL,
    PRIMARY KEY (federation_id, round)
);
