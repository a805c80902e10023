"""The client maps every problem ``code`` back to the exception the library defines for it."""

from __future__ import annotations

import httpx
import pytest

from creditpool.client import error_from
from creditpool.client._errors import ERRORS
from creditpool.core import errors


def error_classes() -> list[type[errors.CreditPoolError]]:
    return [
        value
        for value in vars(errors).values()
        if isinstance(value, type)
        and issubclass(value, errors.CreditPoolError)
        and value is not errors.CreditPoolError
    ]


def test_every_error_has_a_code_of_its_own() -> None:
    codes = [cls.code for cls in error_classes()]
    assert len(codes) == len(set(codes))


@pytest.mark.parametrize("cls", error_classes(), ids=lambda cls: cls.code)
def test_a_problem_becomes_the_exception_of_its_code(cls: type[errors.CreditPoolError]) -> None:
    body = {"type": "t", "title": cls.title, "status": cls.status, "detail": "d", "code": cls.code}
    error = error_from(httpx.Response(cls.status, json=body))
    assert type(error) is cls
    assert ERRORS[cls.code] is cls
    assert error.detail == "d"


def test_the_http_layer_s_refusals_are_defined_once_below_it() -> None:
    from creditpool.http import problems

    assert problems.Unauthorized is errors.Unauthorized
    assert problems.IdempotencyInFlight is errors.IdempotencyInFlight
