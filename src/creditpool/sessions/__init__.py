"""Browser sessions: one-time portal links, signed session cookies, the shared secret."""
