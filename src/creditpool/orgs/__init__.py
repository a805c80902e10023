"""Organizations, their teams and members, and team usage against monthly limits."""
