-- Exactly-once effects on top of at-least-once delivery (PRODUCT.md §3).

-- The inbox: a consumer records each event id in the same transaction as its state change, so a
-- redelivered message is recognised and changes nothing.
CREATE TABLE processed_messages (
    consumer     text        NOT NULL,
    event_id     uuid        NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);

-- The outbox: events a handler emits are written here in its transaction; a relay publishes them
-- to Kafka after commit and deletes the rows it has published.
CREATE TABLE outbox (
    id            bigserial   PRIMARY KEY,
    service       text        NOT NULL,
    topic         text        NOT NULL,
    key           bytea       NOT NULL,
    value         bytea       NOT NULL,
    header_keys   text[]      NOT NULL,
    header_values bytea[]     NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbox_by_service ON outbox (service, id);
