-- Charged updates that reach the aggregator before it has seen their round open (the two come on different
-- topics, so their order is not guaranteed): parked here, counted when the round opens.
CREATE TABLE aggregation_parked (
    update_id      uuid    PRIMARY KEY,
    federation_id  text    NOT NULL,
    round          integer NOT NULL,
    participant_id text    NOT NULL,
    num_examples   integer NOT NULL,
    blob           jsonb   NOT NULL
);
CREATE INDEX aggregation_parked_by_round ON aggregation_parked (federation_id, round);
