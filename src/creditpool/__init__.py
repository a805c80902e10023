"""creditpool: an exact prepaid credit pool for the AI features of a SaaS product.

from creditpool import CreditPool
pool = CreditPool.open("sqlite:///credits.db")
"""

from creditpool.consumptions.models import Allocation, Consumption, ConsumptionStatus, Refund
from creditpool.core.errors import (
    AlreadyExists,
    Conflict,
    CreditPoolError,
    GrantVoided,
    IdempotencyConflict,
    InsufficientCredits,
    InvalidAmount,
    InvalidInput,
    NoActiveGrant,
    NotFound,
)
from creditpool.core.grants import GrantState
from creditpool.features.models import Feature
from creditpool.grants.models import Grant
from creditpool.ledger.models import Balance, LedgerEntry
from creditpool.orgs.models import Member, Org, Team, TeamUsage
from creditpool.pool import CreditPool

__all__ = [
    "Allocation",
    "AlreadyExists",
    "Balance",
    "Conflict",
    "Consumption",
    "ConsumptionStatus",
    "CreditPool",
    "CreditPoolError",
    "Feature",
    "Grant",
    "GrantState",
    "GrantVoided",
    "IdempotencyConflict",
    "InsufficientCredits",
    "InvalidAmount",
    "InvalidInput",
    "LedgerEntry",
    "Member",
    "NoActiveGrant",
    "NotFound",
    "Org",
    "Refund",
    "Team",
    "TeamUsage",
]
