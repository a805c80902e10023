"""Checks of caller input shared by every entry point (library, CLI, HTTP): clear errors,
limits on everything that can grow."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from creditpool.core.errors import InvalidInput

ID_LENGTH_MAX = 64
NAME_LENGTH_MAX = 200
TEXT_LENGTH_MAX = 2000
METADATA_BYTES_MAX = 16_384
BREAKDOWN_KEYS_MAX = 32
COUNT_MAX = 10**12


# Ids travel in URL paths and file names: letters, digits and . _ : @ + - only (no "/").
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@+\-]{0,63}$"
_ID = re.compile(ID_PATTERN, re.ASCII)
# Free text: anything printable, plus tabs and line breaks; never NUL or other controls,
# which PostgreSQL refuses in text and which have no place in a name or a note.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def identifier(value: object, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{field} must be a non-empty string")
    if not _ID.fullmatch(value):
        raise InvalidInput(
            f"{field} must be 1 to {ID_LENGTH_MAX} letters, digits or . _ : @ + -"
            f" (starting with a letter or digit): {value[:80]!r}"
        )
    return value


def text(value: object, field: str, length_max: int = NAME_LENGTH_MAX) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be a string")
    if len(value) > length_max:
        raise InvalidInput(f"{field} is longer than {length_max} characters")
    if _CONTROL.search(value):
        raise InvalidInput(f"{field} contains control characters")
    return value


def required_text(value: object, field: str, length_max: int = NAME_LENGTH_MAX) -> str:
    checked = text(value, field, length_max)
    if checked is None or not checked.strip():
        raise InvalidInput(f"{field} must be a non-empty string")
    return checked


def timezone(value: object) -> str:
    if not isinstance(value, str) or not value or len(value) > ID_LENGTH_MAX:
        raise InvalidInput("timezone must be an IANA time zone name such as 'Europe/Berlin'")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(
            f"unknown time zone {value!r}: use an IANA name such as 'Europe/Berlin'"
        ) from None
    return value


def aware(value: object, field: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise InvalidInput(f"{field} must be a datetime")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(f"{field} must be timezone-aware (with an offset)")
    return value


def count(value: object, field: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= COUNT_MAX:
        raise InvalidInput(f"{field} must be a whole number from 0 to {COUNT_MAX}")
    return value


def breakdown(value: object) -> dict[str, int] | None:
    """How many calls, emails, web searches (...) a use processed: names to counts."""
    if value is None:
        return None
    if not isinstance(value, dict) or len(value) > BREAKDOWN_KEYS_MAX:
        raise InvalidInput(
            f"breakdown must be a mapping of at most {BREAKDOWN_KEYS_MAX} names to counts"
        )
    checked: dict[str, int] = {}
    for key, number in value.items():
        name = identifier(key, "breakdown key")
        checked[name] = count(number, f"breakdown[{name!r}]") or 0
    return checked


def metadata(value: object) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidInput("metadata must be a JSON object")
    try:
        encoded = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        raise InvalidInput(
            "metadata must be JSON-serializable (no floats NaN/inf, no objects)"
        ) from None
    if "\\u0000" in encoded:
        raise InvalidInput("metadata must not contain NUL characters")
    if len(encoded.encode()) > METADATA_BYTES_MAX:
        raise InvalidInput(f"metadata is larger than {METADATA_BYTES_MAX} bytes")
    return value
