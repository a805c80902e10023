"""The HTTP API routes, one module per domain; shared machinery is in creditpool.http."""
