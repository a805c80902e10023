"""Storage: the schema, the engine set-up, and migrations. All SQL lives below here."""
