"""All SQL of the domains, one module per domain. Repositories never commit and import only storage and core."""
