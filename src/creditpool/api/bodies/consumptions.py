"""Bodies of consume and refund: the commands' fields (``http.bodies``) and what the
document adds."""

from __future__ import annotations

from pydantic import Field

from creditpool import commands as cmd
from creditpool.http.bodies import CommandBody
from creditpool.http.schemas import Id, Quantity


class ConsumeBody(CommandBody):
    __command__ = cmd.Consume

    feature: Id = Field(examples=["report"])
    quantity: Quantity | None = Field(default=None, description="For variable-cost features")


class RefundBody(CommandBody):
    __command__ = cmd.Refund
