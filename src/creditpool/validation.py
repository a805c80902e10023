"""Checks of caller input shared by every entry point (library, CLI, HTTP): clear errors,
limits on everything that can grow.

Every text that is stored must be written back out: in a JSON answer, a CSV report, a
PostgreSQL column. So no text anywhere (names, notes, ids, metadata keys and values at any
depth) may hold NUL or a lone surrogate (half of a UTF-16 pair: a Python string can hold
one, UTF-8 cannot), and metadata holds only what JSON storage gives back exactly. Each is
refused here, before anything is written.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cache, partial
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from creditpool.core.errors import InvalidInput
from creditpool.core.money import parse_credits, parse_quantity, parse_signed_credits

ID_LENGTH_MAX = 64
NAME_LENGTH_MAX = 200
TEXT_LENGTH_MAX = 2000
# The descriptive fields of a use of a feature (a consumption, a hold, a settle), and a
# feature's unit: the library's checks and the HTTP document both read these.
FEATURE_NAME_LENGTH_MAX = 500
ACTION_LENGTH_MAX = 64
UNIT_LENGTH_MAX = 64
METADATA_BYTES_MAX = 16_384
METADATA_DEPTH_MAX = 32  # objects and lists nested in metadata, metadata itself included
# Integers beyond 2**53 lose digits in JavaScript and most JSON readers (RFC 7493, I-JSON)
METADATA_NUMBER_MAX = 2**53 - 1
BREAKDOWN_KEYS_MAX = 32
COUNT_MAX = 10**12


# Ids travel in URL paths and file names: letters, digits and . _ : @ + - only (no "/").
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@+\-]{0,63}$"
_ID = re.compile(ID_PATTERN, re.ASCII)
# Free text: anything printable, plus tabs and line breaks; never NUL or other controls,
# which PostgreSQL refuses in text and which have no place in a name or a note.
CONTROLS = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f"
TEXT_PATTERN = rf"^[^{CONTROLS}]*$"
# What str.strip() removes, less the controls refused anyway: a name of only these is blank.
SPACES = r"\t\n\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
NAME_PATTERN = rf"^[^{CONTROLS}]*[^{CONTROLS}{SPACES}][^{CONTROLS}]*$"
_CONTROL = re.compile(rf"[{CONTROLS}]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_NUL_OR_SURROGATE = re.compile(r"[\x00\ud800-\udfff]")


def identifier(value: object, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{field} must be a non-empty string")
    if not _ID.fullmatch(value):
        raise InvalidInput(
            f"{field} must be 1 to {ID_LENGTH_MAX} letters, digits or . _ : @ + -"
            f" (starting with a letter or digit): {_shown(value)}"
        )
    return value


PAGE_SIZE_MAX = 1000  # the most a library list call returns at once


def page_limit(limit: object) -> int:
    """A list call's ``limit``: a whole number from 1 to ``PAGE_SIZE_MAX``."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= PAGE_SIZE_MAX:
        raise InvalidInput(f"limit must be a whole number from 1 to {PAGE_SIZE_MAX}")
    return limit


def positive_id(value: object, field: str) -> int:
    """An item's number (a grant's, a hold's, a page's cursor): a whole number from 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InvalidInput(f"{field} must be a positive whole number")
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
    if _SURROGATE.search(value):
        raise InvalidInput(f"{field} is not valid Unicode (it holds a lone surrogate)")
    return value


def required_text(value: object, field: str, length_max: int = NAME_LENGTH_MAX) -> str:
    checked = text(value, field, length_max)
    if checked is None or not checked.strip():
        raise InvalidInput(f"{field} must be a non-empty string")
    return checked


@cache
def time_zones() -> frozenset[str]:
    """The IANA time zone names accepted: those of the installed tz database, less
    ``localtime``, which is this machine's own setting rather than a zone of the database."""
    return frozenset(available_timezones() - {"localtime"})


def timezone(value: object) -> str:
    if not isinstance(value, str) or not value or len(value) > ID_LENGTH_MAX:
        raise InvalidInput("timezone must be an IANA time zone name such as 'Europe/Berlin'")
    if value not in time_zones():
        raise InvalidInput(
            f"unknown time zone {_shown(value)}: use an IANA name such as 'Europe/Berlin'"
        )
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):  # listed, yet unreadable: a broken install
        raise InvalidInput(f"time zone {value!r} cannot be read") from None
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
    """Free-form JSON about a use: an object of objects, lists, strings, numbers, booleans
    and nulls that JSON storage (SQLite, PostgreSQL) gives back exactly."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidInput("metadata must be a JSON object")
    _json_value(value, "metadata", 1)
    encoded = json.dumps(value, allow_nan=False, ensure_ascii=False)
    if len(encoded.encode()) > METADATA_BYTES_MAX:
        raise InvalidInput(f"metadata is larger than {METADATA_BYTES_MAX} bytes")
    return value


def _json_value(value: object, where: str, depth: int) -> None:
    """Refuse what JSON storage would not give back exactly, or not at all."""
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, str):
        if _NUL_OR_SURROGATE.search(value):
            raise InvalidInput(f"{where} holds NUL or a lone surrogate (not valid Unicode text)")
        return
    if isinstance(value, int | float):
        if not -METADATA_NUMBER_MAX <= value <= METADATA_NUMBER_MAX:  # NaN fails this too
            raise InvalidInput(
                f"{where} holds a number that is not finite or not within"
                f" ±{METADATA_NUMBER_MAX} (2**53 - 1), which JSON readers keep exactly"
            )
        return
    if not isinstance(value, dict | list):
        raise InvalidInput(
            f"{where} holds a {type(value).__name__}: metadata is JSON (objects, lists,"
            " strings, numbers, booleans, null)"
        )
    if depth > METADATA_DEPTH_MAX:
        raise InvalidInput(f"metadata is nested too deep (at most {METADATA_DEPTH_MAX} levels)")
    if isinstance(value, list):
        for i, item in enumerate(value):
            _json_value(item, f"{where}[{i}]", depth + 1)
        return
    for key, item in value.items():
        if not isinstance(key, str):
            raise InvalidInput(f"{where} has a key that is not a string: {key!r}")
        if _NUL_OR_SURROGATE.search(key):
            raise InvalidInput(f"{where} has a key with NUL or a lone surrogate")
        _json_value(item, f"{where}[{key[:40]!r}]", depth + 1)


def seconds(value: object, field: str, most: int | None = None) -> int:
    """A whole number of seconds, at least 1 and at most ``most`` (None: no bound)."""
    if (
        isinstance(value, int)
        and not isinstance(value, bool)
        and value >= 1
        and (most is None or value <= most)
    ):
        return value
    top = "" if most is None else f" to {most}"
    raise InvalidInput(f"{field} must be a whole number of seconds from 1{top}")


def strict_bool(value: object, field: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput(f"{field} must be true or false")
    return value


# -- what a command's field accepts, declared with the field ----------------------------


@dataclass(frozen=True, slots=True, eq=False)
class Rule:
    """What one kind of field accepts. A command declares each field's rule with the field
    (``commands.rule``). ``check(value, field_name)`` is the library's check: it raises
    InvalidInput or gives the value as it is kept (amounts in units); a field whose default
    is None is checked only when given. ``http.bodies.WIRE`` gives each rule's type in a
    request's body, with the same limits. So a new field of a kind that exists names its
    rule once, where it is declared."""

    check: Callable[[object, str], Any]


def _named(parse: Callable[..., Any]) -> Callable[[object, str], Any]:
    return lambda value, field: parse(value, field=field)


ID = Rule(identifier)
SHORT_TEXT = Rule(text)  # a name, a reference, an integration: up to NAME_LENGTH_MAX
TEXT = Rule(partial(text, length_max=TEXT_LENGTH_MAX))  # a reason, a note, a message
FEATURE_NAME = Rule(partial(text, length_max=FEATURE_NAME_LENGTH_MAX))
ACTION = Rule(partial(text, length_max=ACTION_LENGTH_MAX))
COUNT = Rule(count)
BREAKDOWN = Rule(lambda value, _: breakdown(value))
METADATA = Rule(lambda value, _: metadata(value))
INSTANT = Rule(aware)
FLAG = Rule(strict_bool)
CREDITS = Rule(_named(parse_credits))  # more than 0
SIGNED_CREDITS = Rule(_named(parse_signed_credits))  # not 0, either sign
QUANTITY = Rule(_named(parse_quantity))
# A number of seconds, at least 1. A hold's ``ttl_s`` is checked against the pool's most
# instead (``holds.service.HoldRequest.of``, which names it in the error).
SECONDS = Rule(seconds)


def _shown(value: str) -> str:
    """A caller's text in an error message, safe to write out (no lone surrogates)."""
    return ascii(value[:80])


# -- JSON read strictly: the same rules for HTTP bodies and the CLI's JSON options ----


class _Refused(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise _Refused(f"duplicate key {ascii(key)[:80]} in an object")
        found[key] = value
    return found


def _no_constant(name: str) -> Any:
    raise _Refused(f"{name} is not a JSON number")


def strict_json(body: bytes) -> Any:
    """``body`` as JSON, or ``json.JSONDecodeError`` (which FastAPI answers with a 422)
    saying why not: not UTF-8, malformed, a duplicate key, NaN or Infinity, a number of
    thousands of digits, nesting too deep for the parser."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise json.JSONDecodeError("the body is not UTF-8", "", error.start) from None
    try:
        return json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except json.JSONDecodeError:
        raise
    except _Refused as error:
        raise json.JSONDecodeError(str(error), text, 0) from None
    except ValueError as error:  # an integer of more digits than Python converts
        raise json.JSONDecodeError(f"a number is too long ({error})", text, 0) from None
    except RecursionError:
        raise json.JSONDecodeError("the JSON is nested too deep", text, 0) from None
