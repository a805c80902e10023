"""Idempotency keys: a repeated mutation returns its first result."""
