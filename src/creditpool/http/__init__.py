"""Shared HTTP machinery: problems, authorization, idempotent replay, limits, metrics, batching, live streams. Imports no routes."""
