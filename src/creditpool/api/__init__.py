"""The HTTP API: FastAPI over the library. Endpoints live beside each domain."""
