"""Ingestion: admits or rejects every submitted update, with a machine-readable reason."""
