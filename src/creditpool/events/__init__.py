"""Real time: every ledger change of an organization, pushed as server-sent events."""
