"""Reports: credit usage, credit balance and purchase history for a date range, streamed."""
