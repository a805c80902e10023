"""Requests per API key: a moving window kept in memory by the ``limits`` package.

``CREDITPOOL_RATE_LIMIT`` is the sustained rate ("100/second") and
``CREDITPOOL_RATE_LIMIT_BURST`` how many requests may come at once (default: the rate's
count). Both make one moving window: a key may send ``burst`` requests in any
``burst / rate`` seconds. So ``burst`` is the most it may send at once, and sending as
fast as it is let, it gets the rate on average: ``100/second`` with a burst of 10 is 10
requests in any 100 ms. The window is counted in milliseconds (``limits``' own items stop
at whole seconds, which would make that 10 a second), rounded up to a whole one: the rate
may come out lower by less than a millisecond's worth, never higher. Over it: a 429 problem
with ``Retry-After``.

The count is per server process (see docs/DEPLOYMENT.md and docs/ARCHITECTURE.md,
Operations): with N workers a key may reach N times the rate, and N times the burst. It is
checked after the key is authenticated (the route class does that first), so it counts by
key id; requests without a key (health, docs, pages signed in with a session) are not
limited here.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from limits import RateLimitItem, parse
from limits.limits import Granularity
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from creditpool.http import problems
from creditpool.http.security import _PRINCIPAL, Principal


class RateLimitItemPerMillisecond(RateLimitItem):
    """``amount`` per ``multiples`` milliseconds. ``limits`` counts its windows in seconds
    (``get_expiry``) and its memory storage keeps them as floats, so a finer unit is only
    this item (it also registers "millisecond" for ``parse``, harmless)."""

    # Granularity says int, but every use of it is arithmetic on seconds.
    GRANULARITY = Granularity(0.001, "millisecond")  # type: ignore[arg-type]


class RateLimited(Exception):
    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"rate limit reached: retry in {retry_after_s} s")
        self.retry_after_s = retry_after_s


@dataclass(frozen=True, slots=True)
class RateLimiter:
    item: RateLimitItem
    limiter: MovingWindowRateLimiter

    @classmethod
    def of(cls, rate: str | None, burst: int | None) -> RateLimiter | None:
        """From the settings; None without a rate. A rate that does not parse is an error
        at start-up, not at the first request."""
        if not rate:
            return None
        try:
            base = parse(rate)
        except ValueError as error:
            raise ValueError(f"CREDITPOOL_RATE_LIMIT: {error} (try '100/second')") from None
        burst = burst or base.amount
        # burst / rate, in whole milliseconds (exact for any rate of whole seconds whose
        # count divides burst * 1000): rounded up, so the rate is never exceeded.
        window_ms = max(1, math.ceil(burst * base.get_expiry() * 1000 / base.amount))
        return cls(
            RateLimitItemPerMillisecond(burst, window_ms),
            MovingWindowRateLimiter(MemoryStorage()),
        )

    def check(self, key_id: str) -> None:
        """Count one request of ``key_id``; ``RateLimited`` when over the limit."""
        if self.limiter.hit(self.item, key_id):
            return
        reset_at, _ = self.limiter.get_window_stats(self.item, key_id)
        raise RateLimited(max(1, math.ceil(reset_at - time.time())))


async def rate_limited(request: Request) -> None:
    """A dependency of every route: counts the request against its caller's key. The
    route class has authenticated the caller by then (API routes); without one, nothing."""
    limiter: RateLimiter | None = getattr(request.app.state, "rate_limiter", None)
    caller: Principal | None = request.scope.get(_PRINCIPAL)
    if limiter is not None and caller is not None:
        limiter.check(caller.key.id)


def install(app: FastAPI, limiter: RateLimiter | None) -> None:
    app.state.rate_limiter = limiter

    @app.exception_handler(RateLimited)
    async def _over(_: Request, error: RateLimited) -> JSONResponse:
        return problems.problem(
            429,
            "rate_limited",
            "Too many requests",
            f"this key sent more requests than allowed: retry in {error.retry_after_s} s",
            {"Retry-After": str(error.retry_after_s)},
        )
