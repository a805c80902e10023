"""The body of a ledger change's request, made from its command (``creditpool.commands``).

A body class names its command (``__command__``) and declares only what is HTTP's: a
field's example or description for the OpenAPI document, a rule the wire adds. Every other
field of the command's body comes from the command, typed by the wire type of the rule the
command declares with the field (``WIRE``: one per kind of field, with its limits),
required or optional as the command has it. So a field added to a command is in its body,
its document and its client at once.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, StrictBool, StrictInt

from creditpool import validation as check
from creditpool.commands import Command
from creditpool.http.schemas import (
    Body,
    Breakdown,
    Count,
    Credits,
    DeclaredModelMeta,
    FeatureName,
    Id,
    Instant,
    Metadata,
    Quantity,
    ShortText,
    SignedCredits,
    Text,
    UsageAction,
    whole_number,
)
from creditpool.settings import HOLD_TTL_S_MAX

# The document allows what any server could; a server whose ``hold_ttl_s_max`` is lower
# refuses more with 422 (the library's check).
TtlS = Annotated[
    StrictInt,
    Field(ge=1, le=HOLD_TTL_S_MAX, description="Seconds until the hold expires"),
    BeforeValidator(whole_number),
]

# Each rule of a command's field (``validation.Rule``, declared with the field) as the wire
# takes it: the same limits, said in the OpenAPI document.
WIRE: dict[check.Rule, Any] = {
    check.ID: Id,
    check.QUANTITY: Quantity,
    check.CREDITS: Credits,
    check.SIGNED_CREDITS: SignedCredits,
    check.SECONDS: TtlS,
    check.FEATURE_NAME: FeatureName,
    check.ACTION: UsageAction,
    check.SHORT_TEXT: ShortText,
    check.TEXT: Text,
    check.METADATA: Metadata,
    check.BREAKDOWN: Breakdown,
    check.COUNT: Count,
    check.INSTANT: Instant,
    # Strict: 0, 1 or "yes" are not booleans (pydantic would read them as such).
    check.FLAG: StrictBool,
}


def _fill(namespace: dict[str, Any], command: type[Command[Any]]) -> None:
    """Put the command's body fields the class does not declare in its namespace, in the
    command's order, before pydantic reads it."""
    declared: dict[str, Any] = namespace.get("__annotations__", {})
    fields = {f.name: f for f in dataclasses.fields(command)}
    annotations: dict[str, Any] = {}
    for name in command.body_fields():
        if name in declared:
            annotations[name] = declared[name]
            continue
        field = fields[name]
        wire = WIRE[field.metadata["rule"]]
        annotations[name] = wire | None if str(field.type).endswith("| None") else wire
        if field.default is not dataclasses.MISSING:
            namespace[name] = field.default
    annotations.update({k: v for k, v in declared.items() if k not in annotations})
    namespace["__annotations__"] = annotations


class _CommandBodyMeta(DeclaredModelMeta):
    declaration = "__command__"
    fill = staticmethod(_fill)


class CommandBody(Body, metaclass=_CommandBodyMeta):
    """A request body made from a command (set ``__command__``)."""
