"""Key custody: holds each HE federation's secret key, apart from aggregation, and decrypts only aggregates
of at least a quorum of a closed round's updates; every decryption and refusal is an audited event."""
