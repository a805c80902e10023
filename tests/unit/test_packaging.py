"""What each way in loads: the client and ``creditpool --help`` stay light, the server is an
extra, and a command that needs a missing extra says which one in a line.

Each check runs in a fresh interpreter: this process has imported everything already.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

SERVER_PACKAGES = (
    "fastapi",
    "starlette",
    "uvicorn",
    "jinja2",
    "itsdangerous",
    "python_multipart",
    "prometheus_client",
)
DATABASE_PACKAGES = ("sqlalchemy", "alembic", "psycopg")

# Print, as JSON, which of these top-level packages the code before it has loaded.
LOADED = """
import json, sys
watched = {watched!r}
print(json.dumps(sorted({{m.split(".")[0] for m in sys.modules}} & set(watched))))
"""


def run_python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120
    )


def loaded_by(code: str, watched: tuple[str, ...]) -> list[str]:
    done = run_python(code + LOADED.format(watched=watched))
    assert done.returncode == 0, done.stderr
    loaded: list[str] = json.loads(done.stdout.splitlines()[-1])
    return loaded


def test_the_client_loads_neither_the_server_nor_the_database() -> None:
    code = "import creditpool.client\nfrom creditpool.client import AsyncClient, Client\n"
    watched = (*SERVER_PACKAGES, *DATABASE_PACKAGES, "creditpool.pool", "creditpool.api")
    assert loaded_by(code, watched) == []


def test_the_client_loads_no_creditpool_module_above_the_public_models() -> None:
    code = "import creditpool.client\n"
    done = run_python(
        code + "import sys\nprint('\\n'.join(m for m in sys.modules if m.startswith('creditpool')))"
    )
    assert done.returncode == 0, done.stderr
    loaded = set(done.stdout.split())
    allowed_prefixes = ("creditpool.client", "creditpool.core")
    domains = (
        "audit",  # the AuditRecord model of the audit trail
        "auth",  # the ApiKey model of an organization's keys
        "consumptions",
        "corrections",
        "credit_requests",
        "features",
        "forecast",
        "grants",
        "holds",
        "ledger",
        "orgs",
        "webhooks",
    )
    allowed = {
        "creditpool",
        "creditpool.models",
        "creditpool.commands",  # the ledger's commands: both clients' methods are made from them
        "creditpool.validation",  # the rules a command declares with its fields
        "creditpool.queries",  # the list reads: both clients' list methods are made from them
        *(f"creditpool.{d}" for d in domains),
        *(f"creditpool.{d}.models" for d in domains),
    }
    unexpected = {m for m in loaded if m not in allowed and not m.startswith(allowed_prefixes)}
    assert unexpected == set()


def test_importing_creditpool_loads_the_pool_only_when_it_is_asked_for() -> None:
    assert loaded_by("import creditpool\n", DATABASE_PACKAGES) == []
    assert loaded_by("from creditpool import InsufficientCredits, Org\n", DATABASE_PACKAGES) == []
    assert "sqlalchemy" in loaded_by("from creditpool import CreditPool\n", DATABASE_PACKAGES)


def test_creditpool_exports_every_name_of_its_all_and_no_other() -> None:
    import creditpool

    for name in creditpool.__all__:
        assert getattr(creditpool, name).__name__ == name
    assert set(creditpool._HOME_OF) == set(creditpool.__all__)
    assert set(creditpool.__all__) <= set(dir(creditpool))


def test_creditpool_refuses_names_it_does_not_export() -> None:
    import creditpool

    with pytest.raises(AttributeError, match="NoSuchThing"):
        creditpool.NoSuchThing  # type: ignore[attr-defined]  # noqa: B018


# ``creditpool`` the console script is ``creditpool.cli.main:app``.
CLI = "import sys\nfrom creditpool.cli.main import app\napp(prog_name='creditpool')\n"


def test_cli_help_prints_the_commands_without_loading_the_server() -> None:
    probe = (
        "import atexit, json, sys\n"
        f"watched = set({SERVER_PACKAGES!r})\n"
        "atexit.register(lambda: print('LOADED', json.dumps(sorted("
        "{m.split('.')[0] for m in sys.modules} & watched))))\n"
    )
    done = run_python(probe + CLI, "--help")
    assert done.returncode == 0, done.stderr
    assert "Usage: creditpool" in done.stdout
    assert "serve" in done.stdout
    last = done.stdout.splitlines()[-1]
    assert last.startswith("LOADED ")
    assert json.loads(last.removeprefix("LOADED ")) == []


def test_serve_without_the_server_extra_names_the_extra_in_one_line() -> None:
    hide = "import sys\nsys.modules['fastapi'] = None  # as if it were not installed\n"
    done = run_python(hide + CLI, "--db", "sqlite:///:memory:", "serve")
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ")
    assert "pip install 'creditpool[server]'" in lines[0]
    assert "fastapi" in lines[0]


def test_a_postgresql_url_without_the_driver_names_the_extra_in_one_line() -> None:
    hide = "import sys\nsys.modules['psycopg'] = None  # as if it were not installed\n"
    url = "postgresql://nobody@127.0.0.1:1/nothing"
    done = run_python(hide + CLI, "--db", url, "balance", "acme")
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: database URL postgresql://")
    assert "pip install 'creditpool[postgres]'" in lines[0]


def test_the_library_names_the_postgres_extra_when_the_driver_is_missing() -> None:
    code = (
        "import sys\nsys.modules['psycopg'] = None\n"
        "from creditpool import CreditPool\n"
        "try:\n    CreditPool.open('postgresql://nobody@127.0.0.1:1/nothing')\n"
        "except ModuleNotFoundError as error:\n    print(error.name, '|', error)\n"
    )
    done = run_python(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("psycopg | ")
    assert "pip install 'creditpool[postgres]'" in done.stdout
