"""API keys: roles, scopes, hashed secrets."""
