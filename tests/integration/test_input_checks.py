"""The library refuses every text it could not write back out (a lone surrogate, NUL) in
every field of every change, before anything is written, on every backend; and metadata
comes back exactly as it was given."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from creditpool import CreditPool, InvalidInput
from creditpool.storage import tables
from tests.integration.test_cli import as_json, fails, ok

LONE = "\ud800"
BAD_TEXTS = [f"a{LONE}", "\udfff", "nul\x00"]


def database(pool: CreditPool) -> dict[str, list[tuple[Any, ...]]]:
    with pool.db.engine.connect() as conn:
        return {
            t.name: sorted((tuple(r) for r in conn.execute(select(t))), key=repr)
            for t in tables.metadata.sorted_tables
        }


@pytest.fixture
def acme(pool: CreditPool) -> CreditPool:
    pool.create_org("acme")
    pool.create_team("acme", "t-1")
    pool.grant("acme", "10")
    pool.consume("acme", "report", user_id="u-1")
    return pool


CHANGES: dict[str, Callable[[CreditPool, str], object]] = {
    "org name": lambda p, s: p.create_org("new", name=s),
    "org rename": lambda p, s: p.update_org("acme", name=s),
    "org time zone": lambda p, s: p.update_org("acme", timezone=f"UTC{s}"),
    "team name": lambda p, s: p.create_team("acme", "t-2", name=s),
    "team rename": lambda p, s: p.update_team("acme", "t-1", name=s),
    "feature name": lambda p, s: p.set_feature("f", name=s, cost="1"),
    "feature unit": lambda p, s: p.set_feature("f", name="F", unit_rate="1", unit=s),
    "grant note": lambda p, s: p.grant("acme", "1", note=s),
    "grant reference": lambda p, s: p.grant("acme", "1", reference=s),
    "granted by": lambda p, s: p.grant("acme", "1", granted_by=s),
    "void reason": lambda p, s: p.void_grant("acme", 1, reason=s),
    "voided by": lambda p, s: p.void_grant("acme", 1, by=s),
    "feature_name": lambda p, s: p.consume("acme", "report", user_id="u", feature_name=s),
    "action": lambda p, s: p.consume("acme", "report", user_id="u", action=s),
    "integration": lambda p, s: p.consume("acme", "report", user_id="u", integration=s),
    "user id": lambda p, s: p.consume("acme", "report", user_id=f"u{s}"),
    "breakdown key": lambda p, s: p.consume("acme", "report", user_id="u", breakdown={s: 1}),
    "metadata value": lambda p, s: p.consume("acme", "report", user_id="u", metadata={"k": s}),
    "metadata key": lambda p, s: p.consume("acme", "report", user_id="u", metadata={s: 1}),
    "deep metadata": lambda p, s: p.consume(
        "acme", "report", user_id="u", metadata={"a": [{"b": [s]}]}
    ),
    "deep metadata key": lambda p, s: p.consume(
        "acme", "report", user_id="u", metadata={"a": [{"b": {s: None}}]}
    ),
    "refund reason": lambda p, s: p.refund("acme", 1, reason=s),
    "key name": lambda p, s: p.create_key("service", name=s),
    "member id": lambda p, s: p.set_member("acme", f"u{s}"),
}


@pytest.mark.parametrize("text", BAD_TEXTS, ids=["high surrogate", "low surrogate", "NUL"])
@pytest.mark.parametrize("change", CHANGES.values(), ids=CHANGES.keys())
def test_text_that_cannot_be_written_back_is_refused_and_nothing_changes(
    acme: CreditPool, change: Callable[[CreditPool, str], object], text: str
) -> None:
    before = database(acme)
    with pytest.raises(InvalidInput):
        change(acme, text)
    assert database(acme) == before
    assert [c.user_id for c in acme.consumptions("acme")] == ["u-1"]


def nested_lists(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    "metadata",
    [
        {"n": 2**53},
        {"n": [-(2**53)]},
        {"n": 1e300},
        {"n": float("nan")},
        {"n": float("inf")},
        {"n": (1, 2)},
        {"n": {1: "int key"}},
        {"deep": nested_lists(32)},  # 33 levels, the metadata object included
    ],
    ids=["2**53", "-(2**53)", "1e300", "NaN", "infinity", "tuple", "int key", "too deep"],
)
def test_metadata_that_would_not_come_back_exactly_is_refused(
    acme: CreditPool, metadata: dict[str, Any]
) -> None:
    before = database(acme)
    with pytest.raises(InvalidInput, match="metadata"):
        acme.consume("acme", "report", user_id="u", metadata=metadata)
    assert database(acme) == before


def test_metadata_comes_back_exactly_at_its_limits(acme: CreditPool) -> None:
    metadata = {
        "deep": nested_lists(31),  # 32 levels, the metadata object included
        "ints": [2**53 - 1, -(2**53 - 1), 0],
        "floats": [0.1, -2.5, 1e-300, 9007199254740991.0],
        "text": "Équipe 🚀 \u200b\t\n",
        "flags": [True, False, None],
        "": {},
    }
    used = acme.consume("acme", "report", user_id="u", metadata=metadata)
    assert used.metadata == metadata
    assert used.id is not None
    assert acme.consumption("acme", used.id).metadata == metadata
    stored = acme.consumption("acme", used.id).metadata
    assert stored is not None
    assert [type(v) for v in stored["floats"]] == [float] * 4


@pytest.mark.parametrize(
    "option",
    [
        ["--feature-name", "caf\udce9"],  # a non-UTF-8 byte in argv arrives as a surrogate
        ["--action", "\ud800"],
        ["--metadata", '{"x": "\\ud800"}'],
        ["--metadata", '{"\\udfff": 1}'],
        ["--metadata", '{"x": [{"y": "\\u0000"}]}'],
    ],
    ids=["feature name", "action", "metadata value", "metadata key", "metadata NUL"],
)
def test_the_cli_refuses_text_that_cannot_be_written_back_in_one_line(
    db_url: str, option: list[str]
) -> None:
    ok(db_url, "orgs", "create", "acme")
    ok(db_url, "grant", "acme", "10")
    line = fails(db_url, "consume", "acme", "report", "--user", "u", *option)
    assert line.startswith("error: invalid_input:")
    assert as_json(db_url, "balance", "acme")["left"] == "10.00"
    assert as_json(db_url, "history", "acme") == []
