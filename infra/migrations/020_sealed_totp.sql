-- Two secrets that must not outlive their purpose at rest.
--
-- 1. Admin API TOTP secrets, sealed (libs/fedstream/api/totp_secrets.py): AES-256-GCM under a fresh data key
--    wrapped by the key manager (the envelope format of fedstream.storage.envelope), bound to the user id.
--    The plaintext column goes. SQL cannot seal, and a secret that has sat in plaintext in the table (and so
--    in WAL, the WAL archive and backups) is better treated as exposed than re-sealed: existing users keep
--    their bearer token but have no second factor until an operator issues a new one
--    (`fedstream api user rotate-totp USER`); privileged actions refuse them meanwhile, and the API says at
--    start how many users are waiting for one.
ALTER TABLE admin_api.users ADD COLUMN totp_secret_sealed bytea;
ALTER TABLE admin_api.users DROP COLUMN totp_secret;

-- 2. Crash-safe crypto-shredding (services/compliance/erasure.py). An erasure's key can only be destroyed
--    once the erasure has committed; the erasure's own transaction records here that the key is due, so a
--    crash between commit and destruction leaves a row the compliance service's timer finds (at start too),
--    destroys the key for and deletes. The participant's id is needed to name the key: it stays here only
--    until then (normally one timer tick). keys_destroyed_at: when that was recorded (NULL with no pending
--    row: an erasure made before this migration, whose key was destroyed after commit on a best-effort basis).
ALTER TABLE erasures ADD COLUMN keys_destroyed_at timestamptz;

CREATE TABLE erasure_pending_keys (
    pseudonym      text PRIMARY KEY REFERENCES erasures (pseudonym),
    participant_id text NOT NULL
);

SELECT fedstream_secure_tables();
