"""Report downloads through a real server: media types, file names, streaming, refusals,
and the CLI writing the same bytes."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import openpyxl
from typer.testing import CliRunner

from creditpool.cli.main import app
from tests.e2e.conftest import Server

HEADER = b"Usage time,Feature type,Feature name,Usage action,Integration,User ID,Credits used,"


def seed(server: Server) -> None:
    server.pool.grant("acme", "100")
    for i in range(3):
        server.pool.consume("acme", "report", user_id=f"u-{i}", feature_name=f"a, b {i}")
    server.pool.refund("acme", 2)


def test_csv_download_has_its_type_file_name_and_rows(server: Server) -> None:
    seed(server)
    admin = server.client("admin")
    today = server.pool.report("acme", "usage")
    params = {"from": str(today.start), "to": str(today.end)}
    with admin.stream("GET", "/v1/orgs/acme/reports/usage", params=params) as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "text/csv; charset=utf-8"
        assert answer.headers["content-disposition"] == (
            f'attachment; filename="acme_credit-usage_{today.start}_{today.end}.csv"'
        )
        assert "content-length" not in answer.headers  # streamed (chunked)
        chunks = answer.iter_raw()
        first = next(chunks)
        assert first.startswith(HEADER)
        body = first + b"".join(chunks)
    rows = list(csv.reader(io.StringIO(body.decode("utf-8"), newline="")))
    assert [r[2] for r in rows[1:]] == ["a, b 1", "a, b 2"]  # the refunded one is not there


def test_staff_download_xlsx_and_members_may_not(server: Server, tmp_path: Path) -> None:
    seed(server)
    answer = server.client("staff").get(
        "/v1/orgs/acme/reports/purchases", params={"format": "xlsx"}
    )
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert answer.headers["content-disposition"].endswith('.xlsx"')
    path = tmp_path / "p.xlsx"
    path.write_bytes(answer.content)
    workbook = openpyxl.load_workbook(path, read_only=True)
    try:
        rows = list(workbook.active.iter_rows(values_only=True))  # type: ignore[union-attr]
    finally:
        workbook.close()
    assert rows[1][1] == 100
    assert rows[1][4] == 99.0
    member = server.client("member").get("/v1/orgs/acme/reports/usage")
    assert member.status_code == 403


def test_bad_ranges_are_problems(server: Server) -> None:
    admin = server.client("admin")
    for params in (
        {"from": "2026-11-30", "to": "2026-11-01"},
        {"from": "2026-02-30", "to": "2026-03-01"},
        {"from": "nope"},
        {"format": "pdf"},
    ):
        answer = admin.get("/v1/orgs/acme/reports/balance", params=params)
        assert answer.status_code == 422, params
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["code"] == "invalid_input"
    # No cap on the span: years are one report (rows stream).
    years = admin.get("/v1/orgs/acme/reports/balance", params={"from": "2000-01-01"})
    assert years.status_code == 200
    assert years.text.startswith("Action date,Action,")


def test_the_openapi_document_declares_both_media_types(server: Server) -> None:
    document = server.client("admin").get("/openapi.json").json()
    content = document["paths"]["/v1/orgs/{org}/reports/usage"]["get"]["responses"]["200"]
    assert set(content["content"]) == {
        "application/octet-stream",  # the binary type client generators know
        "text/csv; charset=utf-8",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    }


def test_the_cli_writes_what_the_api_serves(server: Server, tmp_path: Path) -> None:
    seed(server)
    served = server.client("admin").get("/v1/orgs/acme/reports/balance").content
    out = tmp_path / "balance.csv"
    result = CliRunner().invoke(
        app, ["--db", server.db_url, "report", "balance", "acme", "-o", str(out)]
    )
    assert result.exit_code == 0, result.stderr
    assert out.read_bytes() == served
    piped = CliRunner().invoke(app, ["--db", server.db_url, "report", "balance", "acme"])
    assert piped.stdout_bytes == served
    refused = CliRunner().invoke(
        app, ["--db", server.db_url, "report", "usage", "acme", "--format", "xlsx"]
    )
    assert refused.exit_code == 1
    assert "-o FILE" in refused.stderr
