"""Grants: deposits of credits into an organization's pool."""
