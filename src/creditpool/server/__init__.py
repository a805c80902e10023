"""The server: one module assembles the app (API routes and web pages), one runs it."""
