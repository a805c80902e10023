"""Consumptions and refunds."""
