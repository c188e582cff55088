-- Homomorphic encryption (crypto: he). The aggregator knows, per federation, how many values an update
-- packs and, once the key custodian has published it, the public context (never a secret key).
CREATE TABLE aggregation_he_federations (
    federation_id  text    PRIMARY KEY,
    scheme         text    NOT NULL CHECK (scheme IN ('ckks', 'bfv')),
    length         integer NOT NULL CHECK (length > 0),
    slots          integer NOT NULL CHECK (slots > 0),
    fingerprint    text,            -- SHA-256 of the public context; NULL until HeContextPublished arrives
    public_context jsonb            -- its BlobRef
);

-- The key custodian's view: which federations it holds keys for, and what each decryption must satisfy.
CREATE TABLE custody_federations (
    federation_id text    PRIMARY KEY,
    scheme        text    NOT NULL CHECK (scheme IN ('ckks', 'bfv')),
    fingerprint   text    NOT NULL,
    quorum        integer NOT NULL CHECK (quorum >= 1),
    params        jsonb   NOT NULL,  -- the model's ParamSpecs: how the decrypted vector unpacks
    he            jsonb   NOT NULL   -- the HeSpec (quantisation bits for BFV)
);

-- One row per decryption: at most one per round (the primary key says so). Refusals are events only.
CREATE TABLE custody_decryptions (
    federation_id     text        NOT NULL,
    round             integer     NOT NULL,
    ciphertext_sha256 text        NOT NULL,
    model_sha256      text        NOT NULL,
    contributors      integer     NOT NULL,
    decrypted_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (federation_id, round)
);

-- Ingestion admits an HE federation's updates by their ciphertext frame: [scheme, values per ciphertext].
ALTER TABLE ingestion_federations ADD COLUMN he jsonb;
