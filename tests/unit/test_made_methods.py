"""Methods made once for several places: ``CreditPool.report`` from ``open_report``, and
the attempts of a request that both clients make."""

from __future__ import annotations

import inspect

import httpx

from creditpool import CreditPool
from creditpool.client._retry import Attempts, Retry
from creditpool.settings import REPORT_SPAN_DAYS_MAX

EMPTY = inspect.Parameter.empty


def test_report_takes_open_report_s_parameters_but_the_database() -> None:
    shown = inspect.signature(CreditPool.report.build)
    assert [(p.name, p.kind.name, p.default) for p in shown.parameters.values()] == [
        ("org_id", "POSITIONAL_OR_KEYWORD", EMPTY),
        ("kind", "POSITIONAL_OR_KEYWORD", EMPTY),
        ("start", "POSITIONAL_OR_KEYWORD", None),
        ("end", "POSITIONAL_OR_KEYWORD", None),
        ("period", "KEYWORD_ONLY", None),
        ("span_days_max", "KEYWORD_ONLY", REPORT_SPAN_DAYS_MAX),
    ]
    assert CreditPool.report.build.__name__ == "report"
    assert (CreditPool.report.__doc__ or "").startswith("The ``usage``, ``balance`` or")


def test_attempts_follow_the_policy_and_a_call_not_retried_has_one() -> None:
    policy = Retry(attempts=2, backoff_s=0)
    attempts = Attempts.of(policy, retried=True, mutating=False)
    assert attempts.wait_s(httpx.Response(503)) == 0
    assert attempts.wait_s(httpx.Response(503)) is None  # the second was the last
    assert Attempts.of(policy, retried=True, mutating=False).wait_s(httpx.Response(200)) is None
    once = Attempts.of(policy, retried=False, mutating=False)
    assert once.wait_s(httpx.ConnectError("down")) is None


def test_a_failed_connection_is_tried_again_and_a_malformed_request_is_not() -> None:
    policy = Retry(attempts=3, backoff_s=0)
    assert Attempts.of(policy, retried=True, mutating=True).wait_s(httpx.ConnectError("x")) == 0
    assert (
        Attempts.of(policy, retried=True, mutating=True).wait_s(httpx.UnsupportedProtocol("x"))
        is None
    )
