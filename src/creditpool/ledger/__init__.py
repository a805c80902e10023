"""The append-only ledger, the balance, and the invariant check."""
