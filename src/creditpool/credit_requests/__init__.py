"""An organization admin's request for more credits, answered by staff with a grant (which
closes it) or a dismissal."""
