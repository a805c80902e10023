"""``Client`` is generated from ``AsyncClient``: the two cannot drift apart."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def generator() -> ModuleType:
    path = ROOT / "scripts" / "generate_sync_client.py"
    spec = importlib.util.spec_from_file_location("generate_sync_client", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_sync_client_is_the_async_one_regenerated() -> None:
    gen = generator()
    expected: str = gen.generate()
    committed = gen.TARGET.read_text(encoding="utf-8")
    assert committed == expected, (
        f"{gen.TARGET.relative_to(ROOT)} is not what {gen.SOURCE.relative_to(ROOT)} generates: "
        "edit the async client, then run `uv run python scripts/generate_sync_client.py`"
    )


def test_the_generated_client_has_no_async_left() -> None:
    text = generator().generate()
    for word in ("async ", "await ", "asyncio", "Async", "Awaitable", "aclose", "__aenter__"):
        assert word not in text, word
