"""Every failure of a command ends here: one line on stderr, exit code 1, no traceback.

The root group runs Typer's click in non-standalone mode so that every exception, whether the
library's (``CreditPoolError``), Typer's (a bad option value) or the database's (cannot
connect), comes back to ``CliGroup.main`` and is written the same way.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import typer
from typer.core import TyperGroup

from creditpool.core.errors import CreditPoolError

TRACEBACK_FLAG = "--traceback"
SHORT_HELP_MAX = 200


class CliError(Exception):
    """A failure the CLI itself detects (a bad database URL, a malformed option)."""


class HelpGroup(TyperGroup):
    """A group whose ``--help`` lists each command with its first sentence whole, wrapped
    (click's plain help, which ``creditpool`` uses because Typer's rich help costs half a
    second of imports, would cut it at the terminal's width with "...")."""

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=SHORT_HELP_MAX)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def group(help: str) -> typer.Typer:
    """A group of commands (``creditpool orgs ...``): its help lists them as ``HelpGroup``
    does, and run without a command it prints that help."""
    return typer.Typer(cls=HelpGroup, help=help, no_args_is_help=True)


class CliGroup(HelpGroup):
    """The root command: turns any exception into ``error: <one line>`` and exit code 1."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        # A hidden escape hatch, first on the line, for whoever debugs the CLI itself.
        show_traceback = argv[:1] == [TRACEBACK_FLAG]
        if show_traceback:
            argv = argv[1:]
        try:
            result = super().main(
                argv,
                prog_name,
                complete_var,
                standalone_mode=False,
                windows_expand_args=windows_expand_args,
                **extra,
            )
            code = result if isinstance(result, int) and not isinstance(result, bool) else 0
        except Exception as exc:
            if show_traceback:
                raise
            code = report(exc)
        if standalone_mode:
            sys.exit(code)
        return code


def report(exc: Exception) -> int:
    """Write the failure on stderr; the exit code."""
    if type(exc).__name__ == "NoArgsIsHelpError":
        return 2  # not a failure: Typer printed the help already; exit as it would
    typer.echo(f"error: {describe(exc)}", err=True)
    return 1


def describe(exc: BaseException) -> str:
    """One line that says what went wrong, in the words of whoever detected it."""
    if isinstance(exc, CreditPoolError):
        text = f"{exc.code}: {exc.detail}"
    elif isinstance(exc, typer.Abort):
        text = "aborted"
    elif isinstance(exc, typer.TyperException):
        # Typer's (vendored click's) usage errors: a bad or missing option value.
        text = exc.format_message()
        ctx = getattr(exc, "ctx", None)
        if ctx is not None:
            text += f" (see '{ctx.command_path} --help')"
    elif _is_database_error(exc):
        text = f"database: {_first_line(str(getattr(exc, 'orig', None) or exc))}"
    elif isinstance(exc, CliError):
        text = str(exc)
    else:
        text = f"unexpected {type(exc).__name__}: {exc} (run 'creditpool {TRACEBACK_FLAG} ...' for details)"
    return _one_line(text)


def _is_database_error(exc: BaseException) -> bool:
    """SQLAlchemy's errors, without importing it: a command that never loaded it (``--help``
    stays light) cannot have raised one."""
    loaded = sys.modules.get("sqlalchemy.exc")
    return loaded is not None and isinstance(exc, loaded.SQLAlchemyError)


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else "unknown database error"


def _one_line(text: str) -> str:
    return " ".join(part.strip() for part in text.splitlines() if part.strip())
