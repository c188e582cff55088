-- GDPR erasure (services/compliance/erasure.py). One row per erasure carried out: the pseudonym that
-- replaced the participant's id everywhere, and the certificate published as ErasureCertified. The id
-- itself is stored nowhere: the pseudonym is a keyed hash under the participant's own key, which the
-- erasure destroys, so nothing here can be linked back to it.
CREATE TABLE erasures (
    request_id  uuid        PRIMARY KEY,
    pseudonym   text        NOT NULL UNIQUE,
    erased_at   timestamptz NOT NULL,
    certificate jsonb       NOT NULL
);
