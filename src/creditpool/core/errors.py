"""Expected failures: typed, with a stable code and the HTTP status they map to."""

from __future__ import annotations

from typing import Any, ClassVar


class CreditPoolError(Exception):
    """Base of every expected failure. ``code`` is stable; ``status`` is the HTTP status."""

    code: ClassVar[str] = "error"
    status: ClassVar[int] = 400
    title: ClassVar[str] = "Request failed"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra: dict[str, Any] = extra


class InvalidInput(CreditPoolError):
    code = "invalid_input"
    status = 422
    title = "Invalid input"


class InvalidAmount(InvalidInput):
    code = "invalid_amount"
    title = "Invalid amount"


class PoolLimitExceeded(InvalidAmount):
    """A grant would take the organization's granted credits past ``MAX_POOL_CREDITS``."""

    code = "pool_limit_exceeded"
    title = "Pool limit exceeded"


class NotFound(CreditPoolError):
    code = "not_found"
    status = 404
    title = "Not found"


class Conflict(CreditPoolError):
    code = "conflict"
    status = 409
    title = "Conflict"


class AlreadyExists(Conflict):
    code = "already_exists"
    title = "Already exists"


class IdempotencyConflict(Conflict):
    code = "idempotency_conflict"
    title = "Idempotency key reused with other arguments"


class NoActiveGrant(Conflict):
    code = "no_active_grant"
    title = "No active grant to refund to"


class GrantVoided(Conflict):
    code = "grant_voided"
    title = "Grant already voided"


class HoldNotOpen(Conflict):
    """Settle or release of a hold that was already settled, released or expired;
    ``status`` (its status) is in ``extra``."""

    code = "hold_not_open"
    title = "Hold not open"


class InsufficientCredits(CreditPoolError):
    """Left < cost: nothing was charged. ``left`` and ``required`` are Decimals in ``extra``."""

    code = "insufficient_credits"
    status = 402
    title = "Insufficient credits"


# Refusals of the HTTP layer. They live here, with the others, so that the client maps their
# codes back to exceptions without importing the server.


class Unauthorized(CreditPoolError):
    code = "unauthorized"
    status = 401
    title = "Missing or invalid API key"


class Forbidden(CreditPoolError):
    code = "forbidden"
    status = 403
    title = "Not allowed for this key"


class IdempotencyInFlight(CreditPoolError):
    code = "idempotency_in_flight"
    status = 409
    title = "A request with this idempotency key is still in flight"


class PayloadTooLarge(CreditPoolError):
    code = "payload_too_large"
    status = 413
    title = "Request body too large"
