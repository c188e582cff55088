"""Zero-trust building blocks: canonical JSON, Ed25519 signing, participant key files, rate limits."""
