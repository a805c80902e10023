"""Expected failures: typed, with a stable code and the HTTP status they map to.

Each failure is one line: a class whose keywords give its ``code``, HTTP ``status``
(inherited when left out) and ``title``. They stay real classes, so that callers catch them
and mypy checks them like any other exception.
"""

from __future__ import annotations

from typing import Any, ClassVar


class CreditPoolError(Exception):
    """Base of every expected failure. ``code`` is stable; ``status`` is the HTTP status."""

    code: ClassVar[str] = "error"
    status: ClassVar[int] = 400
    title: ClassVar[str] = "Request failed"

    def __init_subclass__(
        cls,
        *,
        code: str | None = None,
        status: int | None = None,
        title: str | None = None,
        **kwargs: Any,
    ) -> None:
        """Set what the keywords give; the rest is inherited (or set in the class body)."""
        super().__init_subclass__(**kwargs)
        if code is not None:
            cls.code = code
        if status is not None:
            cls.status = status
        if title is not None:
            cls.title = title

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra: dict[str, Any] = extra


class InvalidInput(CreditPoolError, code="invalid_input", status=422, title="Invalid input"):
    pass


class InvalidAmount(InvalidInput, code="invalid_amount", title="Invalid amount"):
    pass


class PoolLimitExceeded(InvalidAmount, code="pool_limit_exceeded", title="Pool limit exceeded"):
    """A grant would take the organization's granted credits past ``MAX_POOL_CREDITS``."""


class NotFound(CreditPoolError, code="not_found", status=404, title="Not found"):
    pass


class Conflict(CreditPoolError, code="conflict", status=409, title="Conflict"):
    pass


class AlreadyExists(Conflict, code="already_exists", title="Already exists"):
    pass


class IdempotencyConflict(
    Conflict, code="idempotency_conflict", title="Idempotency key reused with other arguments"
):
    pass


class NoActiveGrant(Conflict, code="no_active_grant", title="No active grant to refund to"):
    pass


class GrantVoided(Conflict, code="grant_voided", title="Grant already voided"):
    pass


class GrantExpired(Conflict, code="grant_expired", title="Grant already expired"):
    """A correction of a grant whose expiry has passed: its credits left the pool."""


class GrantCreditsShort(
    Conflict, code="grant_credits_short", title="Not that many credits left on the grant"
):
    """A partial void of more than the grant has left; ``remaining`` is in ``extra``."""


class NoRoomToCredit(
    Conflict, code="no_room_to_credit", title="The active grants have no room for these credits"
):
    """A credit adjustment larger than what the active grants have used (credits go back
    like a refund's, never above a grant's amount); ``room`` is in ``extra``. Grant new
    credits instead."""


class HoldNotOpen(Conflict, code="hold_not_open", title="Hold not open"):
    """Settle or release of a hold that was already settled, released or expired;
    ``status`` (its status) is in ``extra``."""


class InsufficientCredits(
    CreditPoolError, code="insufficient_credits", status=402, title="Insufficient credits"
):
    """Left < cost: nothing was charged. ``left`` and ``required`` are Decimals in ``extra``."""


# Refusals of the HTTP layer. They live here, with the others, so that the client maps their
# codes back to exceptions without importing the server.


class Unauthorized(
    CreditPoolError, code="unauthorized", status=401, title="Missing or invalid API key"
):
    pass


class Forbidden(CreditPoolError, code="forbidden", status=403, title="Not allowed for this key"):
    pass


class IdempotencyInFlight(
    CreditPoolError,
    code="idempotency_in_flight",
    status=409,
    title="A request with this idempotency key is still in flight",
):
    pass


class PayloadTooLarge(
    CreditPoolError, code="payload_too_large", status=413, title="Request body too large"
):
    pass
