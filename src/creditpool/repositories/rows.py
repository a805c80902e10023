"""Rows as the public models show them."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)


def as_model(model: type[M], row: object, **computed: Any) -> M:
    """``model`` from the row's attributes of the same names as its fields, and
    ``computed`` (the fields converted from a column, or not stored)."""
    names = model.model_fields.keys() - computed.keys()
    return model.model_validate({**{n: getattr(row, n) for n in names}, **computed})
