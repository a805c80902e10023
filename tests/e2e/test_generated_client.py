"""A client generated from the served document by openapi-python-client runs the whole flow:
the contract is what a generator reads, not only what the server means.

The client is generated into the test's temporary folder (with no configuration: a
generator's defaults) and imported from there; every step reads its answer through the
generated models (``parsed``), so a schema the generator cannot read fails here.
"""

from __future__ import annotations

import importlib
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import pytest

from tests.e2e.conftest import Server

PACKAGE = "creditpool_generated"
GENERATE_S_MAX = 120


class Generated:
    """The generated package: ``api("consumptions.consume")``, ``model("ConsumeBody")``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.clients: list[Any] = []

    def api(self, name: str) -> Any:
        return importlib.import_module(f"{PACKAGE}.api.{name}")

    def model(self, name: str) -> Any:
        return getattr(importlib.import_module(f"{PACKAGE}.models"), name)

    def client(self, server: Server, role: str) -> Any:
        module = importlib.import_module(PACKAGE)
        client = module.AuthenticatedClient(
            base_url=server.base_url, token=server.keys[role], raise_on_unexpected_status=True
        )
        self.clients.append(client)
        return client

    def close(self) -> None:
        for client in self.clients:
            client.get_httpx_client().close()


def generate(server: Server, into: Path) -> subprocess.CompletedProcess[str]:
    document = into / "openapi.json"
    document.write_bytes(httpx.get(f"{server.base_url}/openapi.json").content)
    tool = Path(sys.executable).parent / "openapi-python-client"
    if not tool.exists():
        pytest.fail("openapi-python-client is not installed (a dev dependency: uv sync)")
    # The generator formats its output with ruff: the environment's own.
    env = {**os.environ, "PATH": f"{tool.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    command = [str(tool), "generate", "--path", str(document), "--meta", "none"]
    command += ["--output-path", str(into / PACKAGE)]
    return subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=GENERATE_S_MAX, check=False
    )


@pytest.fixture
def generated(server: Server, tmp_path: Path) -> Iterator[Generated]:
    result = generate(server, tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    # Every schema and operation read: no warning, no endpoint left out.
    assert "Warning" not in output, output
    sys.path.insert(0, str(tmp_path))
    package = Generated(tmp_path / PACKAGE)
    try:
        yield package
    finally:
        package.close()
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


def ok(response: Any, status: int) -> Any:
    assert response.status_code == status, response.content
    assert response.parsed is not None, response.content
    return response.parsed


def test_a_generated_client_runs_the_whole_flow(server: Server, generated: Generated) -> None:
    g = generated
    service, staff = g.client(server, "service"), g.client(server, "staff")
    org = ok(
        g.api("organizations.create_org").sync_detailed(
            client=service,
            body=g.model("OrgCreate")(id="gen", timezone=g.model("TimeZone").EUROPE_BERLIN),
        ),
        201,
    )
    assert org.id == "gen"
    price = g.model("FixedPrice")(cost="1.50", name="Generated report")
    ok(g.api("features.put_feature").sync_detailed("gen-report", client=service, body=price), 200)
    grant = g.model("GrantCreate")(amount="10.00")
    ok(g.api("grants.create_grant").sync_detailed("gen", client=staff, body=grant), 201)
    before_use = datetime.now(UTC)
    used = consume_and_refund(g, service)
    balance = g.api("balance_and_ledger.get_balance")
    then = ok(balance.sync_detailed("gen", client=service, at=before_use), 200)
    assert Decimal(then.left) == Decimal("10")
    now = ok(balance.sync_detailed("gen", client=service), 200)
    assert Decimal(now.left) == Decimal("10") - 4 * Decimal("1.50")
    assert page_through(g, service) == used
    workbook = usage_report(g, service)
    rows = list(workbook.active.iter_rows(values_only=True))
    assert rows[0][0] == "Usage time"
    assert len(rows) == 1 + 4  # the header, then the uses not refunded


def consume_and_refund(g: Generated, service: Any) -> list[int]:
    """Five uses, one refunded, and a dry run; the ids of the uses, newest first."""
    consume = g.api("consumptions.consume")
    body = g.model("ConsumeBody")
    dry = ok(
        consume.sync_detailed("gen", client=service, body=body("gen-report", "u-1", dry_run=True)),
        200,
    )
    assert dry.status == g.model("ConsumptionStatus").DRY_RUN
    assert dry.id is None
    assert Decimal(dry.cost) == Decimal("1.50")
    ids = []
    for i in range(5):
        used = ok(
            consume.sync_detailed("gen", client=service, body=body("gen-report", f"u-{i}")), 201
        )
        assert used.status == g.model("ConsumptionStatus").PAID
        ids.append(used.id)
    refund = g.model("RefundBody")(reason="generated")
    refunded = ok(
        g.api("consumptions.refund_consumption").sync_detailed(
            "gen", ids[0], client=service, body=refund
        ),
        200,
    )
    assert Decimal(refunded.restored) == Decimal("1.50")
    return ids[::-1]


def page_through(g: Generated, service: Any) -> list[int]:
    """Every consumption, two a page, following ``next_cursor`` to the last page."""
    listing = g.api("consumptions.list_consumptions")
    seen: list[int] = []
    cursor: Any = None
    for _ in range(10):
        kwargs = {} if cursor is None else {"cursor": cursor}
        page = ok(listing.sync_detailed("gen", client=service, limit=2, **kwargs), 200)
        seen += [item.id for item in page.data]
        if not page.has_more:
            assert page.next_cursor is None
            return seen
        cursor = page.next_cursor
    raise AssertionError(f"no last page after {seen}")


def usage_report(g: Generated, service: Any) -> Any:
    report = g.api("reports.get_usage_report")
    xlsx = g.model("ReportFormat").XLSX
    answer = ok(report.sync_detailed("gen", client=service, format_=xlsx), 200)
    content = answer.payload.read()
    assert isinstance(content, bytes)
    csv = ok(report.sync_detailed("gen", client=service), 200).payload.read()
    assert csv.decode("utf-8").startswith("Usage time,")
    return openpyxl.load_workbook(io.BytesIO(content))


def test_a_generated_client_reads_refusals_as_problems(
    server: Server, generated: Generated
) -> None:
    g = generated
    service = g.client(server, "service")
    server.pool.grant("acme", "100")
    server.pool.grant("globex", "0.0001")
    consume = g.api("consumptions.consume")
    body = g.model("ConsumeBody")
    problem = g.model("Problem")
    service.raise_on_unexpected_status = False
    poor = consume.sync_detailed("globex", client=service, body=body("report", "u-1"))
    assert poor.status_code == 402
    assert isinstance(poor.parsed, problem)
    assert poor.parsed.code == "insufficient_credits"
    assert Decimal(poor.parsed.left) == Decimal("0.0001")
    first = consume.sync_detailed(
        "acme", client=service, body=body("report", "u-1"), idempotency_key="gen-k1"
    )
    assert first.status_code == 201, first.content
    other = consume.sync_detailed(
        "acme", client=service, body=body("report", "u-2"), idempotency_key="gen-k1"
    )
    assert other.status_code == 409
    assert isinstance(other.parsed, problem)
    assert other.parsed.code == "idempotency_conflict"
