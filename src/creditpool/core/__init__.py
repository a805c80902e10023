"""Pure rules of the credit pool: no I/O, no clock reads, no SQL.

Everything here works on integer ten-thousandths of a credit ("units") and on
timezone-aware UTC datetimes handed in by the caller.
"""
