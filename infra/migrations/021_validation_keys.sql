-- Validation's own projection of participants' keys (facts from fedstream.identity): it verifies the
-- signatures of heartbeats and evaluation reports itself, as ingestion does for submissions (014), and
-- shares no state with ingestion.
CREATE TABLE validation_participant_keys (
    key_id         text    PRIMARY KEY,
    participant_id text    NOT NULL,
    organisation   text    NOT NULL,
    public_key     text    NOT NULL,
    revoked        boolean NOT NULL DEFAULT false
);

-- The replay guard of the messages validation verifies: a key's nonce is used by one message (event) only.
-- Rows older than twice the freshness window are pruned: a message that old is refused as stale anyway.
CREATE TABLE validation_nonces (
    key_id    text        NOT NULL,
    nonce     text        NOT NULL,
    event_id  uuid        NOT NULL,
    signed_at timestamptz NOT NULL,
    PRIMARY KEY (key_id, nonce)
);
CREATE INDEX validation_nonces_by_time ON validation_nonces (signed_at);

SELECT fedstream_secure_tables();
