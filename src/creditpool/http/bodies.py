"""The body of a ledger change's request, made from its command (``creditpool.commands``).

A body class names its command (``__command__``) and declares only what is HTTP's: a
field's example or description for the OpenAPI document, a rule the wire adds. Every other
field of the command's body comes from the command, typed by its wire rule here
(``WIRE``: one per field name, with its limits), required or optional as the command has
it. So a field added to a command is in its body, its document and its client at once.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, StrictBool, StrictInt
from pydantic._internal._model_construction import ModelMetaclass

from creditpool.commands import Command
from creditpool.http.schemas import (
    Body,
    Breakdown,
    Count,
    Credits,
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

# Each field of a command as the wire takes it.
WIRE: dict[str, Any] = {
    "feature": Id,
    "user_id": Id,
    "quantity": Quantity,
    "amount": Credits,
    "cost": Credits,
    "credits": SignedCredits,
    "ttl_s": TtlS,
    "feature_name": FeatureName,
    "action": UsageAction,
    "integration": ShortText,
    "metadata": Metadata,
    "breakdown": Breakdown,
    "requests": Count,
    "reason": Text,
    "note": Text,
    "message": Text,
    "reference": ShortText,
    "expires_at": Instant,
    "available_from": Instant,
    # Strict: 0, 1 or "yes" are not booleans (pydantic would read them as such).
    "dry_run": StrictBool,
}


class _CommandBodyMeta(ModelMetaclass):
    def __new__(
        mcs, name: str, bases: tuple[type[Any], ...], namespace: dict[str, Any], **kwargs: Any
    ) -> type:
        command = namespace.get("__command__")
        if command is not None:
            _fill(namespace, command)
        return super().__new__(mcs, name, bases, namespace, **kwargs)


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
        wire = WIRE[name]
        annotations[name] = wire | None if str(field.type).endswith("| None") else wire
        if field.default is not dataclasses.MISSING:
            namespace[name] = field.default
    annotations.update({k: v for k, v in declared.items() if k not in annotations})
    namespace["__annotations__"] = annotations


class CommandBody(Body, metaclass=_CommandBodyMeta):
    """A request body made from a command (set ``__command__``)."""
