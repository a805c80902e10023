"""When and how long to wait before sending a request again."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from creditpool.client._errors import problem_code

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Retry:
    """A bounded retry policy with exponential backoff and jitter.

    A request is sent at most ``attempts`` times. Between attempts the client waits
    ``backoff_s * 2**(n-1)`` (capped at ``backoff_s_max``), half of it fixed and half random,
    or what the server asks for in ``Retry-After`` if that is longer (capped at
    ``retry_after_s_max``). Retried: connection failures and timeouts, the ``statuses``, and
    for mutations a 409 ``idempotency_in_flight`` (the first attempt is still running).
    Mutations keep their idempotency key on every attempt, so none is applied twice.
    """

    attempts: int = 4
    backoff_s: float = 0.25
    backoff_s_max: float = 8.0
    retry_after_s_max: float = 60.0
    statuses: frozenset[int] = field(default=RETRY_STATUSES)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if self.backoff_s < 0 or self.backoff_s_max < 0 or self.retry_after_s_max < 0:
            raise ValueError("waits cannot be negative")

    def retries_error(self, error: httpx.TransportError) -> bool:
        """Failures where the request may be sent again; not our own malformed requests."""
        return isinstance(
            error, httpx.NetworkError | httpx.TimeoutException | httpx.RemoteProtocolError
        )

    def retries_response(self, response: httpx.Response, *, mutating: bool) -> bool:
        if response.status_code in self.statuses:
            return True
        return (
            mutating
            and response.status_code == 409
            and problem_code(response) == "idempotency_in_flight"
        )

    def delay_s(self, attempt: int, response: httpx.Response | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1 for the first)."""
        ceiling = min(self.backoff_s_max, self.backoff_s * 2 ** (attempt - 1))
        wait: float = ceiling / 2 + random.uniform(0, ceiling / 2)
        asked = retry_after_s(response) if response is not None else None
        if asked is not None:
            wait = max(wait, min(asked, self.retry_after_s_max))
        return wait

    def wait_s(
        self,
        attempt: int,
        *,
        mutating: bool,
        response: httpx.Response | None = None,
        error: httpx.TransportError | None = None,
    ) -> float | None:
        """After attempt number ``attempt`` ended in ``response`` or ``error``: the seconds
        to wait before the next attempt, or None to stop (answer, or raise the error)."""
        if attempt >= self.attempts:
            return None
        if error is not None:
            return self.delay_s(attempt) if self.retries_error(error) else None
        assert response is not None
        if not self.retries_response(response, mutating=mutating):
            return None
        return self.delay_s(attempt, response)


NO_RETRY = Retry(attempts=1)


@dataclass
class Attempts:
    """One request's attempts so far, whatever sends them (and waits, or awaits)."""

    policy: Retry
    mutating: bool
    made: int = 0

    @classmethod
    def of(cls, policy: Retry, *, retried: bool, mutating: bool) -> Attempts:
        """A request's attempts: by ``policy``, or only one when it is not ``retried``."""
        return cls(policy if retried else NO_RETRY, mutating)

    def wait_s(self, sent: httpx.Response | httpx.TransportError) -> float | None:
        """After an attempt that ``sent`` a response or failed: the seconds to wait before
        the next, or None when what it gave is the answer (or the error to raise)."""
        self.made += 1
        if isinstance(sent, httpx.TransportError):
            return self.policy.wait_s(self.made, mutating=self.mutating, error=sent)
        return self.policy.wait_s(self.made, mutating=self.mutating, response=sent)


def retry_after_s(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds: delta-seconds or an HTTP date; None when absent or bad."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
