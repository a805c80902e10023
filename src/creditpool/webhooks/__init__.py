"""Signed webhooks: the vendor's endpoints, and the worker that delivers the outbox's
events to them at least once (Standard Webhooks)."""
