"""Compliance: every event, appended to a hash-chained, append-only audit trail that `fedstream audit
verify` can check link by link."""
