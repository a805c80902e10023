"""The one place that parses and formats credits.

Below the API every amount is an ``int`` of ten-thousandths of a credit (a "unit").
Rates of variable-cost features carry 8 fractional digits (a "rate unit"), so that a
cost rate x quantity can be rounded half-up to 4 digits exactly.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import TypeAlias

from creditpool.core.errors import InvalidAmount

SCALE = 4
UNIT: int = 10**SCALE  # units per credit
RATE_SCALE = 8
RATE_UNIT: int = 10**RATE_SCALE
MAX_CREDITS = 10**12  # one trillion credits: anything above is a typo, not a purchase
MAX_UNITS = MAX_CREDITS * UNIT
# What one organization may ever be granted, net of voided credits: ten times the largest
# grant. Every sum the pool keeps or reports (Left, Total, upcoming, paid usage per team,
# day or report, a ledger entry's before/after) is at most this, so it fits a signed 64-bit
# integer of units (about 9.2 * 10**18) with a factor of 90 to spare.
MAX_POOL_CREDITS = 10**13
MAX_POOL_UNITS = MAX_POOL_CREDITS * UNIT
MAX_QUANTITY = 10**9
TEXT_LENGTH_MAX = 64
# ASCII digits, an optional minus sign and fraction: no exponents, underscores or other scripts
_PLAIN_DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?", re.ASCII)

Amount: TypeAlias = str | int | Decimal


def _to_decimal(value: object, field: str) -> Decimal:
    if isinstance(value, bool | float):
        raise InvalidAmount(f"{field} must be a decimal string, an int or a Decimal, not a float")
    if isinstance(value, Decimal):
        d = value
    elif isinstance(value, int):
        d = Decimal(value)
    elif isinstance(value, str):
        d = _parse_text(value, field)
    else:
        raise InvalidAmount(f"{field} must be a decimal string, an int or a Decimal")
    if not d.is_finite():
        raise InvalidAmount(f"{field} must be a finite number, not {value!r}")
    return d


def _parse_text(value: str, field: str) -> Decimal:
    text = value
    if text != text.strip() and text.strip():
        raise InvalidAmount(f"{field} has spaces around it: {value!r}")
    if len(text) > TEXT_LENGTH_MAX:
        raise InvalidAmount(f"{field} is not a number (over {TEXT_LENGTH_MAX} characters)")
    try:
        d = Decimal(text)
    except InvalidOperation:
        raise InvalidAmount(f"{field} is not a number: {value!r}") from None
    if d.is_finite() and not _PLAIN_DECIMAL.fullmatch(text):
        raise InvalidAmount(f'{field} is not a plain decimal number such as "0.50": {value!r}')
    return d


def _scaled(d: Decimal, scale: int, field: str, value: object) -> int:
    exponent = d.as_tuple().exponent
    assert isinstance(exponent, int)  # finite decimals have an int exponent
    if exponent < -scale and d != d.quantize(Decimal(1).scaleb(-scale)):
        raise InvalidAmount(f"{field} has more than {scale} fractional digits: {value!r}")
    scaled: int = int(d.scaleb(scale))
    return scaled


def _parse(value: object, field: str, scale: int, too_large: str, maximum: int) -> int:
    """``value`` in units of ``10**-scale``: exact and at most ``maximum`` either way (the
    caller says which sign it takes)."""
    d = _to_decimal(value, field)
    if d.copy_abs() > maximum:
        raise InvalidAmount(f"{field} is too large{too_large}: {value!r}")
    return _scaled(d, scale, field, value)


def parse_credits(value: object, *, field: str = "amount", allow_zero: bool = False) -> int:
    """Parse an amount of credits into units; refuse anything inexact or out of range."""
    units = _parse(value, field, SCALE, f" (at most {MAX_CREDITS} credits)", MAX_CREDITS)
    if units < 0 or (units == 0 and not allow_zero):
        need = "zero or more" if allow_zero else "more than zero"
        raise InvalidAmount(f"{field} must be {need}: {value!r}")
    return units


def parse_signed_credits(value: object, *, field: str = "credits") -> int:
    """Parse a signed, non-zero amount of credits (an adjustment: negative debits)."""
    units = _parse(value, field, SCALE, f" (at most {MAX_CREDITS} credits either way)", MAX_CREDITS)
    if units == 0:
        raise InvalidAmount(f"{field} must not be zero: {value!r}")
    return units


def parse_rate(value: object, *, field: str = "unit_rate") -> int:
    """Parse a per-unit rate (up to 8 fractional digits) into rate units."""
    return _positive(_parse(value, field, RATE_SCALE, "", MAX_CREDITS), field, value)


def parse_quantity(value: object, *, field: str = "quantity") -> int:
    """Parse a quantity (up to 4 fractional digits) into ten-thousandths."""
    too_large = f" (at most {MAX_QUANTITY})"
    return _positive(_parse(value, field, SCALE, too_large, MAX_QUANTITY), field, value)


def _positive(units: int, field: str, value: object) -> int:
    if units <= 0:
        raise InvalidAmount(f"{field} must be more than zero: {value!r}")
    return units


def cost_units(rate: int, quantity: int) -> int:
    """rate (rate units) x quantity (ten-thousandths), rounded half-up to whole units."""
    product = rate * quantity  # scale: RATE_SCALE + SCALE fractional digits
    divisor = RATE_UNIT
    return (product + divisor // 2) // divisor


def to_decimal(units: int, scale: int = SCALE) -> Decimal:
    """Units to an exact Decimal, written with at least two fractional digits."""
    return Decimal(format_units(units, scale))


def format_units(units: int, scale: int = SCALE) -> str:
    """Exact text: at least two fractional digits, no trailing zeros past them."""
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(units), 10**scale)
    digits = f"{frac:0{scale}d}".rstrip("0").ljust(2, "0")
    return f"{sign}{whole}.{digits}"


def format_credits(units: int) -> str:
    return format_units(units, SCALE)
