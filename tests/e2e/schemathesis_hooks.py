"""schemathesis hooks for tests/e2e/test_schemathesis.py (``SCHEMATHESIS_HOOKS``).

A few rules relate several fields or the present time, which JSON Schema cannot say: a
report's range runs forward and spans at most the configured days; a grant's expiry is in
the future and after its availability, and so is a new expiry set on a grant. A case the document allows but these rules refuse
is not generated as positive data (negative cases go through untouched). And the run
changes the catalog as it goes: a consumption refused for the price the run itself set is
not held against the document.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import httpx
import schemathesis


def _positive(case: Any) -> bool:
    meta = case.meta
    return meta is None or meta.generation.mode.is_positive


@schemathesis.hook("filter_case").apply_to(path_regex="/reports/")
def report_range_runs_forward_within_the_span(ctx: Any, case: Any) -> bool:
    if not _positive(case):
        return True
    query = case.query or {}
    try:
        start = date.fromisoformat(query["from"]) if query.get("from") else None
        end = date.fromisoformat(query["to"]) if query.get("to") else None
    except (TypeError, ValueError):
        return True
    # Any span (no cap); without ``from`` a report starts at the first entry, never after
    # ``to``.
    end = end or datetime.now(UTC).date()
    return start is None or start <= end


def _instant(value: Any) -> datetime | None:
    try:
        found = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None
    return found if found is not None and found.tzinfo is not None else None


@schemathesis.hook("filter_case").apply_to(path_regex="/grants$", method="POST")
def grant_expires_in_the_future_after_its_availability(ctx: Any, case: Any) -> bool:
    if not _positive(case) or not isinstance(case.body, dict):
        return True
    expires = _instant(case.body.get("expires_at"))
    if expires is None:
        return True
    start = _instant(case.body.get("available_from")) or datetime.now(UTC)
    return expires > max(start, datetime.now(UTC))


@schemathesis.hook("filter_case").apply_to(path_regex=r"/grants/\{grant_id\}$", method="PATCH")
def a_grant_expiry_moves_into_the_future(ctx: Any, case: Any) -> bool:
    """A grant's expiry may move earlier or later, never to an instant that has passed
    (null: permanent)."""
    if not _positive(case) or not isinstance(case.body, dict):
        return True
    expires = _instant(case.body.get("expires_at"))
    return expires is None or expires > datetime.now(UTC)


def _catalog(request: Any) -> dict[str, dict[str, Any]]:
    """The feature catalog as it stands, read with the failed request's own key."""
    base = str(request.url).split("/v1/", 1)[0]
    headers = {"Authorization": request.headers["Authorization"]}
    items = httpx.get(f"{base}/v1/features", headers=headers, timeout=20).json()["data"]
    return {item["key"]: item for item in items}


@schemathesis.hook("filter_failure").apply_to(path_regex="/(consumptions|holds)$", method="POST")
def consumption_refused_for_the_price_the_run_itself_set(
    ctx: Any, failure: Any, case: Any, response: Any
) -> bool:
    """Keep every failure but one: a consumption (or a hold priced like one) refused (422)
    because the run re-priced its feature meanwhile (PUT /v1/features): a feature priced
    per unit needs a quantity, and a use whose cost rounds to 0.00 is refused. The catalog
    decides, not the document."""
    if type(failure).__name__ != "RejectedPositiveData" or response.status_code != 422:
        return True
    body = case.body if isinstance(case.body, dict) else {}
    feature = _catalog(response.request).get(body.get("feature", ""))
    if feature is None or body.get("amount") is not None:  # a hold of an amount: no price
        return True
    if feature["unit_rate"] is not None and body.get("quantity") is None:
        return False
    rate = Decimal(feature["unit_rate"] or feature["cost"])
    cost = (rate * Decimal(body.get("quantity") or 1)).quantize(Decimal("0.0001"), ROUND_HALF_UP)
    return cost != 0


@schemathesis.hook("filter_failure").apply_to(path_regex="/webhook-endpoints")
def webhook_url_refused_for_where_it_points(
    ctx: Any, failure: Any, case: Any, response: Any
) -> bool:
    """Keep every failure but one: a webhook URL refused (422) because its host is an
    address webhooks may not reach (loopback, private, metadata: the SSRF guard) or does
    not resolve, or a port above 65535. Where a host points only the server can tell; the
    document cannot."""
    if type(failure).__name__ != "RejectedPositiveData" or response.status_code != 422:
        return True
    detail = str(response.json().get("detail", ""))
    # a port the pattern admits (5 digits) but TCP does not (above 65535)
    # or a URL the parser refuses (a bad IPv6 literal, a port above 65535, a lone surrogate)
    return not detail.startswith("url")
