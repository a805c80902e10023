"""The Python client of the creditpool HTTP API.

``Client`` and ``AsyncClient`` (httpx) have the ``CreditPool`` library's method names and
keyword arguments, return its pydantic models and raise its exceptions, mapped back from the
problem's stable ``code``. Amounts go out as exact decimal strings (floats are refused before
any request). Every mutation carries an ``Idempotency-Key`` (a uuid4 unless given) that stays
the same when the client retries a lost connection, a 429 or a 5xx, so nothing is applied twice.

    from creditpool.client import Client

    with Client("http://127.0.0.1:8000", api_key="cp_...") as client:
        client.consume("acme", "report", user_id="u-1")
        print(client.balance("acme").left)
"""

from creditpool.client._async import AsyncClient
from creditpool.client._errors import error_from
from creditpool.client._retry import Retry
from creditpool.client._routes import (
    IDEMPOTENCY_HEADER,
    MISSING,
    REPLAYED_HEADER,
    Amount,
    Health,
    Page,
)
from creditpool.client._sync import Client

__all__ = [
    "IDEMPOTENCY_HEADER",
    "MISSING",
    "REPLAYED_HEADER",
    "Amount",
    "AsyncClient",
    "Client",
    "Health",
    "Page",
    "Retry",
    "error_from",
]
