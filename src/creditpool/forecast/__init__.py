"""The forecast: when an organization's credits run out at the recent pace."""
