"""The library's shared checks of caller input (``creditpool.validation``): every text that
is stored can be written back out (no lone surrogates, no NUL), at any depth of metadata."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from creditpool import validation as check
from creditpool.core.errors import InvalidInput

LONE = "\ud800"  # a lone surrogate: a Python str, but no UTF-8 and no JSON text can hold it
LOW = "\udfff"


def nested(value: Any, depth: int) -> Any:
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


@pytest.mark.parametrize(
    "value",
    [
        f"a{LONE}b",
        LOW,
        f"{LONE}{LOW}"[::-1],  # a low then a high surrogate: no pair
        "nul\x00",
    ],
    ids=["high surrogate", "low surrogate", "reversed pair", "NUL"],
)
@pytest.mark.parametrize("checker", ["text", "required_text"])
def test_free_text_that_cannot_be_written_back_is_refused(checker: str, value: str) -> None:
    with pytest.raises(InvalidInput, match="note"):
        getattr(check, checker)(value, "note")


def test_free_text_keeps_every_real_character() -> None:
    value = "Équipe 🚀 — 東京\tline\nnext \u200b\ufffd"
    assert check.text(value, "note") == value
    assert check.required_text(value, "name") == value


@pytest.mark.parametrize("value", [LONE, f"x{LOW}", "\x00", "\U0010ffff\x00"])
def test_an_identifier_with_a_surrogate_or_nul_is_refused(value: str) -> None:
    with pytest.raises(InvalidInput):
        check.identifier(value, "user_id")


METADATA_REFUSED: dict[str, Any] = {
    "surrogate in a value": {"x": LONE},
    "surrogate in a key": {LONE: 1},
    "surrogate in a nested key": {"a": {"b": [{f"k{LOW}": True}]}},
    "surrogate in a nested list": {"a": [1, [2, ["ok", f"{LONE}"]]]},
    "NUL in a key": {"a\x00": 1},
    "NUL deep in a value": {"a": [{"b": "c\x00"}]},
    "NaN": {"x": float("nan")},
    "infinity deep": {"x": [{"y": float("-inf")}]},
    "integer over 2**53": {"x": 2**53},
    "integer under -(2**53)": {"x": [-(2**53)]},
    "huge integer": {"x": 10**400},
    "huge float": {"x": 1e300},
    "non-string key": {1: "x"},
    "nested non-string key": {"x": {(1, 2): "y"}},
    "a set": {"x": {1, 2}},
    "bytes": {"x": b"raw"},
    "too deep": nested("leaf", check.METADATA_DEPTH_MAX + 1),
    "too large": {"x": "y" * check.METADATA_BYTES_MAX},
}


@pytest.mark.parametrize("value", METADATA_REFUSED.values(), ids=METADATA_REFUSED.keys())
def test_metadata_that_cannot_round_trip_through_json_storage_is_refused(value: Any) -> None:
    with pytest.raises(InvalidInput, match="metadata"):
        check.metadata(value)


def test_metadata_at_the_limits_is_kept_and_round_trips_exactly() -> None:
    value = {
        "deep": nested("leaf", check.METADATA_DEPTH_MAX - 1),
        "ints": [2**53 - 1, -(2**53 - 1), 0],
        "floats": [1.5, -0.25, 9007199254740991.0, 1e-300],
        "text": "Équipe 🚀 \u200b",
        "": None,
        "flags": [True, False],
    }
    assert check.metadata(value) == value
    assert json.loads(json.dumps(check.metadata(value))) == value


def test_a_surrogate_pair_is_one_real_character_and_is_kept() -> None:
    decoded = json.loads('{"x": "\\ud83d\\ude80"}')  # a pair decodes to U+1F680
    assert check.metadata(decoded) == {"x": "🚀"}


@pytest.mark.parametrize("value", [{"k": LONE}, {LONE: 1}, {"k": 2**60}])
def test_breakdown_keys_and_counts_are_checked(value: dict[Any, Any]) -> None:
    with pytest.raises(InvalidInput):
        check.breakdown(value)


@pytest.mark.parametrize("value", ["Europe/Berlin", "UTC", "America/Argentina/Buenos_Aires"])
def test_a_known_time_zone_is_accepted(value: str) -> None:
    assert check.timezone(value) == value


@pytest.mark.parametrize(
    "value", ["", "Mars/Olympus", "europe/berlin", "Europe/Berlin\n", LONE, "Europe/../UTC"]
)
def test_only_the_names_of_the_time_zone_database_are_time_zones(value: str) -> None:
    with pytest.raises(InvalidInput, match="time zone"):
        check.timezone(value)


def test_the_time_zones_are_exactly_the_ones_the_library_accepts() -> None:
    zones = check.time_zones()
    assert "Europe/Berlin" in zones
    assert "UTC" in zones
    for zone in sorted(zones)[:50]:
        assert check.timezone(zone) == zone


def test_a_blank_name_is_blank_for_the_library_and_for_the_document_alike() -> None:
    """``NAME_PATTERN`` (the HTTP schema) and ``required_text`` (``str.strip``) agree."""
    spaces = {chr(c) for c in range(0x110000) if chr(c).isspace()}
    controls = {c for c in spaces if re.fullmatch(check.TEXT_PATTERN, c) is None}
    documented = {c for c in spaces if re.fullmatch(f"[{check.SPACES}]", c)}
    assert documented == spaces - controls
    for c in sorted(spaces - controls):
        assert re.fullmatch(check.NAME_PATTERN, f"{c}{c}") is None
        assert re.fullmatch(check.NAME_PATTERN, f"{c}x{c}") is not None
