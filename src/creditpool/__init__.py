"""creditpool: an exact prepaid credit pool for the AI features of a SaaS product.

from creditpool import CreditPool
pool = CreditPool.open("sqlite:///credits.db")

Every name here is imported when it is first asked for: ``import creditpool.client`` or
``import creditpool.core.money`` loads no database code (SQLAlchemy, Alembic) on the way.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from creditpool.consumptions.models import Allocation, Consumption, ConsumptionStatus, Refund
    from creditpool.core.errors import (
        AlreadyExists,
        Conflict,
        CreditPoolError,
        GrantCreditsShort,
        GrantExpired,
        GrantVoided,
        HoldNotOpen,
        IdempotencyConflict,
        InsufficientCredits,
        InvalidAmount,
        InvalidInput,
        NoActiveGrant,
        NoRoomToCredit,
        NotFound,
        PoolLimitExceeded,
    )
    from creditpool.core.events import EventType
    from creditpool.core.forecast import ForecastStatus
    from creditpool.core.grants import GrantState
    from creditpool.corrections.models import Adjustment, Correction, CorrectionKind
    from creditpool.credit_requests.models import CreditRequest, CreditRequestStatus
    from creditpool.features.models import Feature, FeaturePrice
    from creditpool.forecast.models import ExpiringUnused, Forecast, TeamForecast
    from creditpool.grants.models import Grant
    from creditpool.holds.models import Hold, HoldStatus
    from creditpool.ledger.models import Balance, LedgerEntry
    from creditpool.orgs.models import Member, Org, Team, TeamUsage
    from creditpool.pool import CreditPool
    from creditpool.webhooks.models import (
        DeliveryAttempt,
        DeliveryStatus,
        Event,
        WebhookDelivery,
        WebhookEndpoint,
        WebhookEndpointWithSecret,
    )

__all__ = [
    "Adjustment",
    "Allocation",
    "AlreadyExists",
    "Balance",
    "Conflict",
    "Consumption",
    "ConsumptionStatus",
    "Correction",
    "CorrectionKind",
    "CreditPool",
    "CreditPoolError",
    "CreditRequest",
    "CreditRequestStatus",
    "DeliveryAttempt",
    "DeliveryStatus",
    "Event",
    "EventType",
    "ExpiringUnused",
    "Feature",
    "FeaturePrice",
    "Forecast",
    "ForecastStatus",
    "Grant",
    "GrantCreditsShort",
    "GrantExpired",
    "GrantState",
    "GrantVoided",
    "Hold",
    "HoldNotOpen",
    "HoldStatus",
    "IdempotencyConflict",
    "InsufficientCredits",
    "InvalidAmount",
    "InvalidInput",
    "LedgerEntry",
    "Member",
    "NoActiveGrant",
    "NoRoomToCredit",
    "NotFound",
    "Org",
    "PoolLimitExceeded",
    "Refund",
    "Team",
    "TeamForecast",
    "TeamUsage",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookEndpointWithSecret",
]

# The module each exported name comes from; the imports above are the same, for type checkers.
_HOMES = {
    "creditpool.consumptions.models": ("Allocation", "Consumption", "ConsumptionStatus", "Refund"),
    "creditpool.corrections.models": ("Adjustment", "Correction", "CorrectionKind"),
    "creditpool.core.errors": (
        "AlreadyExists",
        "Conflict",
        "CreditPoolError",
        "GrantCreditsShort",
        "GrantExpired",
        "GrantVoided",
        "HoldNotOpen",
        "IdempotencyConflict",
        "InsufficientCredits",
        "InvalidAmount",
        "InvalidInput",
        "NoActiveGrant",
        "NoRoomToCredit",
        "NotFound",
        "PoolLimitExceeded",
    ),
    "creditpool.core.events": ("EventType",),
    "creditpool.core.forecast": ("ForecastStatus",),
    "creditpool.core.grants": ("GrantState",),
    "creditpool.credit_requests.models": ("CreditRequest", "CreditRequestStatus"),
    "creditpool.features.models": ("Feature", "FeaturePrice"),
    "creditpool.forecast.models": ("ExpiringUnused", "Forecast", "TeamForecast"),
    "creditpool.grants.models": ("Grant",),
    "creditpool.holds.models": ("Hold", "HoldStatus"),
    "creditpool.ledger.models": ("Balance", "LedgerEntry"),
    "creditpool.orgs.models": ("Member", "Org", "Team", "TeamUsage"),
    "creditpool.pool": ("CreditPool",),
    "creditpool.webhooks.models": (
        "DeliveryAttempt",
        "DeliveryStatus",
        "Event",
        "WebhookDelivery",
        "WebhookEndpoint",
        "WebhookEndpointWithSecret",
    ),
}
_HOME_OF = {name: module for module, names in _HOMES.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _HOME_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'creditpool' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # asked once: later lookups do not come here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
