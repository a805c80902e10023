from __future__ import annotations

from creditpool.ledger.models import Balance, LedgerEntry
from creditpool.models import Model


class LedgerEvent(Model):
    """The data of one ``ledger`` event: the entry, and the organization's balance as of
    the newest entry of the batch the event was delivered in."""

    entry: LedgerEntry
    balance: Balance
