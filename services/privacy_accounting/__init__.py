"""Privacy accounting: every accepted update is charged in a ledger before aggregation may count it.

The foundation records plaintext charges (no ε); the differential-privacy issue plugs a real
accountant into the ``Accountant`` port without touching the handler.
"""
