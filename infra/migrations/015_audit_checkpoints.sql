-- Signed Merkle checkpoints of the audit trail (services/compliance/checkpoints.py): the tree head over
-- rows 1..tree_size, signed by the compliance service's Ed25519 key, with the RFC 6962 consistency proof
-- from the previous checkpoint. Append-only like the trail itself; each one is also published as
-- AuditCheckpointSigned on fedstream.audit, so a copy outside this database exists.
CREATE TABLE audit_checkpoints (
    tree_size          bigint      PRIMARY KEY CHECK (tree_size > 0),
    root_hash          text        NOT NULL CHECK (root_hash ~ '^[0-9a-f]{64}$'),
    signed_at          timestamptz NOT NULL,
    key_id             text        NOT NULL,
    public_key         text        NOT NULL,
    signature          text        NOT NULL,
    previous_size      bigint      NOT NULL CHECK (previous_size >= 0 AND previous_size < tree_size),
    consistency_proof  text[]      NOT NULL,
    event_id           uuid        NOT NULL UNIQUE,
    recorded_at        timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION audit_checkpoints_are_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_checkpoints is append-only: % refused', TG_OP;
END $$;

CREATE TRIGGER audit_checkpoints_no_update_or_delete BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_checkpoints_are_append_only();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION audit_checkpoints_are_append_only();
