"""Holds: credits reserved before a long job, then settled into a consumption or released."""
