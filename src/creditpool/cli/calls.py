"""Commands that make one library call and print its answer, written as what they take and
what they say.

Most commands do the same four things: parse their options, open the pool, call one
``CreditPool`` method with them, print the answer (its JSON with ``--json``). ``change``
and ``listing`` do the last three. The function they decorate declares the rest: its
parameters after the first are the command's arguments and options (Typer reads them, help
and all; ``ctx`` and ``--json``, last, are added), its first parameter is the method's
answer and what it returns is the words shown for it (a line, or a table's title).

The arguments go to the method by name. A ledger change's method is made from its
command (``creditpool.commands``), so its parameters are the command's fields: a CLI
option named like a field needs nothing more, ``renamed`` maps the others (``user`` is
``user_id``), and ``local`` ones are the CLI's own (read by ``check`` and the words only).
A parameter whose default is an ``Options`` group stands for the group's options, spliced
in at its place; the method gets their values by name, the function as one mapping.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import typer

from creditpool.cli import render
from creditpool.cli.context import JsonFlag, Options, open_pool, who

Words = Callable[..., Any]  # (the answer, the command's arguments) -> a line or a title
Command = Callable[..., None]
Shows = Callable[[Any, bool, Callable[[], Any], Mapping[str, Any]], None]


def change(
    method: str,
    *,
    by: str | None = None,
    by_default: Callable[[str | None], str] = who,
    local: Sequence[str] = (),
    check: Callable[..., None] | None = None,
    create: bool = False,
    **renamed: str,
) -> Callable[[Words], Command]:
    """A change (of the ledger, the directory, the keys...): ``CreditPool.<method>``'s
    answer as JSON with ``--json``, else the line the function makes of it. ``--by`` (the
    parameter ``by``) goes as the method's ``by`` argument, ``by_default`` filling it in;
    ``check`` sees the arguments before the pool is opened (a refusal there is a usage
    error); ``create``: the command may create a missing SQLite file (see ``open_pool``)."""

    def show(done: Any, as_json: bool, words: Callable[[], Any], given: Mapping[str, Any]) -> None:
        if as_json:
            render.emit_json(done)
        else:
            render.line(words())

    def prepare(given: Mapping[str, Any], args: dict[str, Any]) -> None:
        if check is not None:
            check(**given)
        if by is not None:
            args[by] = by_default(args[by])

    sent = Sent(method, {"by": by, **renamed} if by else renamed, tuple(local))
    return lambda words: _command(words, sent, show, prepare, create=create)


def listing(
    method: str, columns: render.Columns, *, more: str | None = None, **renamed: str
) -> Callable[[Words], Command]:
    """A list: ``CreditPool.<method>``'s answer as JSON with ``--json``, else a table of
    ``columns`` titled by what the function returns, and when the list is newest first and
    a page of it is full, ``more``: the option that asks for the next (``--before-id``,
    see ``render.next_page``; the command's ``limit`` says when it is full)."""

    def show(found: Any, as_json: bool, words: Callable[[], Any], given: Mapping[str, Any]) -> None:
        title = None if as_json else words()
        page = None if more is None else render.next_page(found, given["limit"], more)
        render.records(found, as_json, title, columns, page)

    return lambda words: _command(words, Sent(method, renamed), show)


@dataclass(frozen=True)
class Sent:
    """What a command made here sends: the method's name, and the names its arguments go
    by (``renamed``; not at all: ``local``). ``arguments`` are those a command sends, on
    the command (``command.sent``) for a test to check against the method."""

    method: str
    renamed: Mapping[str, str]
    local: tuple[str, ...] = ()
    arguments: tuple[str, ...] = ()

    def args(self, given: Mapping[str, Any]) -> dict[str, Any]:
        return {self.renamed.get(k, k): v for k, v in given.items() if k not in self.local}


@dataclass(frozen=True)
class _Interface:
    """The parameters Typer reads (the function's after the answer, groups spliced in),
    and where the groups stand."""

    parameters: list[inspect.Parameter]
    groups: dict[str, Options]
    takes_ctx: bool

    @classmethod
    def of(cls, words: Words) -> _Interface:
        namespace = words.__globals__
        declared = list(inspect.signature(words).parameters.values())[1:]
        params: list[inspect.Parameter] = []
        groups: dict[str, Options] = {}
        for p in declared:
            if isinstance(p.default, Options):
                groups[p.name] = p.default
                params.extend(p.default.parameters())
                continue
            # Typer needs the hints themselves, not their postponed text (``from __future__
            # import annotations``); read one by one, as get_type_hints would fail on the
            # answer's type, imported for type checkers only (no pydantic for ``--help``).
            hint = p.annotation
            if isinstance(hint, str):
                hint = eval(hint, namespace)
            params.append(p.replace(annotation=hint))
        takes_ctx = any(p.name == "ctx" for p in params)
        if not takes_ctx:
            params.insert(0, inspect.Parameter("ctx", _KEYWORD, annotation=typer.Context))
        params.append(inspect.Parameter("as_json", _KEYWORD, default=False, annotation=JsonFlag))
        return cls([p.replace(kind=_KEYWORD) for p in params], groups, takes_ctx)

    def packed(self, given: dict[str, Any]) -> dict[str, Any]:
        """The arguments as the function takes them: each group's values in one mapping."""
        out = dict(given)
        for name, group in self.groups.items():
            out[name] = {option: out.pop(option) for option in group}
        return out


_KEYWORD = inspect.Parameter.KEYWORD_ONLY


def _command(
    words: Words,
    sent: Sent,
    show: Shows,
    prepare: Callable[[Mapping[str, Any], dict[str, Any]], None] | None = None,
    *,
    create: bool = False,
) -> Command:
    """The command Typer runs: the method called with the command's arguments (groups
    spread; ``prepare`` may check them and fill some in), its answer shown by ``show``."""
    interface = _Interface.of(words)

    def command(ctx: typer.Context, as_json: bool = False, **given: Any) -> None:
        args = sent.args(given)
        if prepare is not None:
            prepare(given, args)
        done = getattr(open_pool(ctx, create=create), sent.method)(**args)
        packed = interface.packed(given)
        if interface.takes_ctx:
            packed["ctx"] = ctx
        show(done, as_json, lambda: words(done, **packed), packed)

    command.__name__ = command.__qualname__ = words.__name__
    command.__doc__ = words.__doc__
    command.__module__ = words.__module__
    command.__signature__ = inspect.Signature(interface.parameters)  # type: ignore[attr-defined]
    own = [p.name for p in interface.parameters if p.name not in ("ctx", "as_json")]
    arguments = tuple(sent.args(dict.fromkeys(own)))
    command.sent = dataclasses.replace(sent, arguments=arguments)  # type: ignore[attr-defined]
    return command
