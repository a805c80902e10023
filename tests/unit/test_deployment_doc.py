"""docs/DEPLOYMENT.md lists every setting an operator can give."""

from __future__ import annotations

from pathlib import Path

from creditpool.settings import Settings

DEPLOYMENT = Path(__file__).parents[2] / "docs" / "DEPLOYMENT.md"


def test_every_setting_is_in_the_deployment_table() -> None:
    text = DEPLOYMENT.read_text("utf-8")
    table = "\n".join(line for line in text.splitlines() if line.startswith("| `"))
    names = [f"CREDITPOOL_{name.upper()}" for name in Settings.model_fields]
    assert [n for n in (*names, "PROMETHEUS_MULTIPROC_DIR") if f"`{n}`" not in table] == []
