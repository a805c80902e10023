"""schemathesis, the property-based API fuzzer, against a running server's OpenAPI document:
no 5xx, every response (status, content type, headers, body) as the document says.

Two bounded runs on a seeded server: every operation with a service key, then the grant
operations with a staff key (the only role that may grant and void). The seed is fixed so a
failure reproduces; schemathesis prints a ``curl`` line for each.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import Server

EXAMPLES_MAX = 12
RUN_S_MAX = 300  # generous: CI machines are shared and a slow run is not a failure
SEED = 20261102

HERE = Path(__file__).parent
# Every check is on, `positive_data_acceptance` included: a request the document allows is
# accepted (the document says exactly what the server takes). The settings allow 402 (a
# well-formed consumption the organization cannot pay for); the hooks keep positive data
# within the rules that relate fields or the present (a report's range, a grant's expiry)
# and forgive a consumption refused for a price the run itself set.
CONFIG = HERE / "schemathesis.toml"
HOOKS = HERE / "schemathesis_hooks.py"


def schemathesis_command() -> str:
    found = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail("schemathesis is not installed (it is a dev dependency: uv sync)")
    return found


def fuzz(server: Server, role: str, cwd: Path, *selection: str) -> subprocess.CompletedProcess[str]:
    command = [
        schemathesis_command(),
        "--config-file",
        str(CONFIG),
        "run",
        f"{server.base_url}/openapi.json",
        "--checks",
        "all",
        "--header",
        f"Authorization: Bearer {server.keys[role]}",
        "--max-examples",
        str(EXAMPLES_MAX),
        "--seed",
        str(SEED),
        "--generation-database",
        "none",
        "--request-timeout",
        "20",
        "--no-color",
        *selection,
    ]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": str(HOOKS)}
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=RUN_S_MAX, check=False
    )


def seed(server: Server) -> None:
    pool = server.pool
    for org in ("acme", "globex"):
        pool.grant(org, "1000", granted_by="setup")
        pool.create_team(org, "t-1", name="Team One", monthly_limit="100")
        pool.set_member(org, "u-1", team_id="t-1")
        used = pool.consume(org, "report", user_id="u-1")
        assert used.id is not None
        pool.refund(org, used.id)
        pool.consume(org, "action_plan", user_id="u-1")


@pytest.mark.slow
def test_schemathesis_finds_no_server_error_and_no_response_outside_the_schema(
    server: Server, tmp_path: Path
) -> None:
    seed(server)
    # The event stream never ends by itself (it is an open SSE connection until its lifetime
    # runs out): fuzzing it only waits for timeouts. tests/e2e/test_events.py covers it.
    every_operation = fuzz(server, "service", tmp_path, "--exclude-path-regex", "/events$")
    assert every_operation.returncode == 0, every_operation.stdout + every_operation.stderr
    grants = fuzz(server, "staff", tmp_path, "--include-path-regex", "/grants")
    assert grants.returncode == 0, grants.stdout + grants.stderr
    assert server.process.poll() is None
    assert server.pool.verify() == []
