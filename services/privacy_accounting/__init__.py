"""Privacy accounting: every accepted update is charged in a ledger before aggregation may count it.

Updates trained with DP carry their mechanism's parameters; the ledger recomputes ε from them with
two accountants (RDP and PLD), composes it per participant × dataset, and refuses (``BudgetExhausted``)
an update that would overspend its federation's budget. Plaintext updates are recorded with no ε.
"""
