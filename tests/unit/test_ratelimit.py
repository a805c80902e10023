"""The rate limit of a key, on a clock the test moves: sending as fast as it is let, a key
gets the configured rate on average, and never more than the burst at once."""

from __future__ import annotations

from collections import Counter

import limits.storage.memory
import pytest
from limits import parse

from creditpool.http import ratelimit
from creditpool.http.ratelimit import RateLimited, RateLimiter

KEY = "key-1"


class Clock:
    """Stands in for the ``time`` module of the limiter and of ``limits``' memory storage."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(limits.storage.memory, "time", fake)
    monkeypatch.setattr(ratelimit, "time", fake)
    return fake


def let_through(limiter: RateLimiter, clock: Clock, duration_s: float) -> list[float]:
    """The instants of the requests let through when a key sends as fast as it is let:
    again at once after a success, and just after the window's reset after a refusal."""
    start, passed = clock.now, []
    while clock.now - start < duration_s:
        try:
            limiter.check(KEY)
        except RateLimited:
            reset_at, _ = limiter.limiter.get_window_stats(limiter.item, KEY)
            assert reset_at > clock.now
            clock.now = reset_at + 1e-6
        else:
            passed.append(clock.now - start)
    return passed


@pytest.mark.parametrize(
    ("rate", "burst"),
    [
        ("100/second", 10),  # a burst below the count per second: 10 in any 100 ms
        ("100/second", None),  # the default burst: the rate's count
        ("100/second", 250),  # a burst above it: 250 in any 2.5 s
        ("6000/minute", 1),  # one at a time, every 10 ms
        ("3/second", 2),  # 2 in any 667 ms (rounded up to the millisecond)
        ("10/minute", 4),
    ],
)
def test_a_key_gets_the_rate_on_average_and_the_burst_at_most_at_once(
    clock: Clock, rate: str, burst: int | None
) -> None:
    limiter = RateLimiter.of(rate, burst)
    assert limiter is not None
    item = parse(rate)
    per_s = item.amount / item.get_expiry()
    most = burst or item.amount
    duration_s = 100 * most / per_s  # 100 windows

    passed = let_through(limiter, clock, duration_s)

    at_once = Counter(passed)
    assert at_once[0.0] == most  # the first burst is all of it
    assert max(at_once.values()) == most  # and no later one is bigger
    assert len(passed) <= per_s * duration_s + most  # the rate is never exceeded
    assert len(passed) >= 0.99 * per_s * duration_s  # nor cut


def test_over_the_burst_the_refusal_says_when_to_retry_in_whole_seconds(clock: Clock) -> None:
    limiter = RateLimiter.of("10/minute", 2)
    assert limiter is not None
    limiter.check(KEY)
    limiter.check(KEY)
    with pytest.raises(RateLimited) as over:
        limiter.check(KEY)
    assert over.value.retry_after_s == 12  # 2 in any 12 s: the first leaves at 12 s
    clock.now += 12.001
    limiter.check(KEY)
    limiter.check("key-2")  # another key has its own window


def test_a_rate_that_does_not_parse_is_refused_at_start_up() -> None:
    assert RateLimiter.of(None, None) is None
    with pytest.raises(ValueError, match="CREDITPOOL_RATE_LIMIT"):
        RateLimiter.of("lots", None)
