-- Validation's alert stream processor: windowed health state (kept in the same transaction as the inbox,
-- so a redelivered event is counted once), the alerts raised, and round/participant metrics as time series.

CREATE TABLE health_federations (
    federation_id      text             PRIMARY KEY,
    rounds_total       integer          NOT NULL,
    target_metric      double precision,
    budget_epsilon     double precision,
    config             jsonb            NOT NULL,
    failure_streak     integer          NOT NULL DEFAULT 0,
    streak_start_round integer,
    completed          boolean          NOT NULL DEFAULT false
);

-- Tumbling windows of admissions per participant (participant ids as claimed: rejections may name strangers).
CREATE TABLE health_participant_windows (
    federation_id  text        NOT NULL,
    participant_id text        NOT NULL,
    window_start   timestamptz NOT NULL,
    window_end     timestamptz NOT NULL,
    accepted       integer     NOT NULL DEFAULT 0,
    rejected       integer     NOT NULL DEFAULT 0,
    suspicious     integer     NOT NULL DEFAULT 0,
    PRIMARY KEY (federation_id, participant_id, window_start)
);

-- Accepted, not yet charged: the start of the accepted → charged latency (resource saturation).
CREATE TABLE health_pending_charges (
    update_id     uuid        PRIMARY KEY,
    federation_id text        NOT NULL,
    accepted_at   timestamptz NOT NULL
);

CREATE TABLE health_rounds (
    federation_id text        NOT NULL,
    round         integer     NOT NULL,
    opened_at     timestamptz NOT NULL,
    PRIMARY KEY (federation_id, round)
);

CREATE TABLE health_participants (
    federation_id  text             NOT NULL,
    participant_id text             NOT NULL,
    last_seen      timestamptz      NOT NULL,
    ttl_s          double precision NOT NULL,
    live           boolean          NOT NULL,
    session        integer          NOT NULL,
    PRIMARY KEY (federation_id, participant_id)
);
CREATE INDEX health_participants_live ON health_participants (last_seen) WHERE live;

-- One row per fact alerted: the dedup key makes "raised once per window" hold across events and instances.
CREATE TABLE alerts_raised (
    dedup_key     text        PRIMARY KEY,
    event_id      uuid        NOT NULL,
    federation_id text        NOT NULL,
    kind          text        NOT NULL,
    severity      text        NOT NULL,
    raised_at     timestamptz NOT NULL,
    alert         jsonb       NOT NULL
);
CREATE INDEX alerts_raised_by_federation ON alerts_raised (federation_id, raised_at);

-- Time series. No primary key: a hypertable's unique indexes must include the time column, and the
-- consumer's inbox already makes each event add its row once.
CREATE TABLE round_metrics (
    time          timestamptz      NOT NULL,
    federation_id text             NOT NULL,
    round         integer          NOT NULL,
    outcome       text             NOT NULL,
    contributions integer          NOT NULL,
    duration_s    double precision,
    loss          double precision,
    accuracy      double precision,
    auc           double precision
);

CREATE TABLE participant_metrics (
    time           timestamptz      NOT NULL,
    federation_id  text             NOT NULL,
    participant_id text             NOT NULL,
    round          integer          NOT NULL,
    kind           text             NOT NULL,
    num_examples   integer,
    train_loss     double precision,
    epsilon        double precision,
    latency_s      double precision,
    loss           double precision,
    accuracy       double precision,
    reason         text
);

-- Native fallback: month partitions created ahead by fedstream_create_metric_partitions (validation calls it
-- on a timer); a DEFAULT partition catches anything outside them (a replay of old events, a timer that fell
-- behind), and creating a partition later moves its rows out of the default, so no insert ever fails.
CREATE FUNCTION fedstream_create_metric_partitions(parent regclass, months_ahead integer DEFAULT 3)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    month date := date_trunc('month', now() - interval '1 month')::date;
    last_month date := date_trunc('month', now() + make_interval(months => months_ahead))::date;
    part text;
    created integer := 0;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_partitioned_table WHERE partrelid = parent) THEN
        RETURN 0;  -- a hypertable: TimescaleDB makes its own chunks
    END IF;
    WHILE month <= last_month LOOP
        part := format('%s_%s', parent::text, to_char(month, 'YYYYMM'));
        IF to_regclass(part) IS NULL THEN
            EXECUTE format('CREATE TABLE %I (LIKE %s INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part, parent);
            EXECUTE format(
                'WITH moved AS (DELETE FROM %s WHERE time >= %L AND time < %L RETURNING *) INSERT INTO %I SELECT * FROM moved',
                parent::text || '_default', month, (month + interval '1 month')::date, part);
            EXECUTE format('ALTER TABLE %s ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                           parent, part, month, (month + interval '1 month')::date);
            created := created + 1;
        END IF;
        month := (month + interval '1 month')::date;
    END LOOP;
    RETURN created;
END $$;

DO $$
DECLARE
    timescale boolean := EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')
        -- the extension only loads when preloaded (the timescale/timescaledb image does this)
        AND current_setting('shared_preload_libraries', true) LIKE '%timescaledb%';
    series text;
BEGIN
    IF timescale THEN
        CREATE EXTENSION IF NOT EXISTS timescaledb;
        -- the generalised interface (TimescaleDB 2.13+; the compose image is newer)
        PERFORM create_hypertable('round_metrics', by_range('time', interval '7 days'), if_not_exists => true);
        PERFORM create_hypertable('participant_metrics', by_range('time', interval '1 day'), if_not_exists => true);
    ELSE
        FOREACH series IN ARRAY ARRAY['round_metrics', 'participant_metrics'] LOOP
            -- swap the plain table for a partitioned one of the same shape (it is empty: created above)
            EXECUTE format('ALTER TABLE %I RENAME TO %I', series, series || '_template');
            EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING ALL) PARTITION BY RANGE (time)', series, series || '_template');
            EXECUTE format('DROP TABLE %I', series || '_template');
            EXECUTE format('CREATE TABLE %I PARTITION OF %I DEFAULT', series || '_default', series);
            PERFORM fedstream_create_metric_partitions(series::regclass);
        END LOOP;
    END IF;
END $$;

CREATE INDEX round_metrics_by_federation ON round_metrics (federation_id, time);
CREATE INDEX participant_metrics_by_federation ON participant_metrics (federation_id, time);
