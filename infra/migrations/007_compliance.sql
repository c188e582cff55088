-- The audit trail: append-only (enforced by triggers) and hash-chained (verified by `fedstream audit verify`).
CREATE TABLE audit_trail (
    seq            bigint      PRIMARY KEY CHECK (seq > 0),
    event_id       uuid        NOT NULL UNIQUE,
    event_type     text        NOT NULL,
    topic          text        NOT NULL,
    federation_id  text        NOT NULL,
    round          integer,
    source         text        NOT NULL,
    occurred_at    timestamptz NOT NULL,
    recorded_at    timestamptz NOT NULL DEFAULT now(),
    payload_sha256 text        NOT NULL,
    prev_hash      text        NOT NULL,
    row_hash       text        NOT NULL
);

CREATE FUNCTION audit_trail_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_trail is append-only: % refused', TG_OP;
END $$;

CREATE TRIGGER audit_trail_no_update_or_delete BEFORE UPDATE OR DELETE ON audit_trail
    FOR EACH ROW EXECUTE FUNCTION audit_trail_is_append_only();
CREATE TRIGGER audit_trail_no_truncate BEFORE TRUNCATE ON audit_trail
    FOR EACH STATEMENT EXECUTE FUNCTION audit_trail_is_append_only();
