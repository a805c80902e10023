"""``AsyncClient``: the HTTP API with the library's methods, models and exceptions.

The one implementation: ``_sync.py`` (``Client``) is generated from this file by
``scripts/generate_sync_client.py``. Edit this file, then regenerate.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar

import httpx

from creditpool.audit.models import AuditRecord
from creditpool.auth.models import ApiKey
from creditpool.client import _routes as routes
from creditpool.client._retry import NO_RETRY, Retry
from creditpool.client._routes import MISSING, Amount, Call, Health, Missing, Page
from creditpool.client._settings import client_headers
from creditpool.consumptions.models import Consumption, Refund
from creditpool.core.forecast import WINDOW_DAYS_DEFAULT
from creditpool.corrections.models import Adjustment, Correction
from creditpool.credit_requests.models import CreditRequest, CreditRequestStatus
from creditpool.features.models import Feature, FeaturePrice
from creditpool.forecast.models import Forecast
from creditpool.grants.models import Grant, GrantDetail
from creditpool.holds.models import Hold
from creditpool.ledger.models import Balance, LedgerEntry
from creditpool.orgs.models import Member, Org, Team, TeamUsage
from creditpool.webhooks.models import (
    DeliveryStatus,
    Event,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEndpointWithSecret,
)

T = TypeVar("T")


class AsyncClient:
    """A creditpool server, called like the ``CreditPool`` library.

    Every method returns the library's models and raises the library's exceptions (plus
    ``Unauthorized``, ``Forbidden``, ``IdempotencyInFlight`` and ``PayloadTooLarge``, also in
    ``creditpool.core.errors``); ``httpx.TransportError`` when the server stays unreachable.
    Each mutation sends an ``Idempotency-Key`` (a new uuid4 unless ``idempotency_key`` is
    given) and keeps it on every retry, so a retried consumption is charged once.

        async with AsyncClient("http://127.0.0.1:8000", api_key="cp_...") as client:
            await client.consume("acme", "report", user_id="u-1")
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float | httpx.Timeout = 30.0,
        retry: Retry | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.retry = retry or Retry()
        self._http = httpx.AsyncClient(
            base_url=base_url,
            headers=client_headers(api_key, headers),
            timeout=timeout,
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _run(self, call: Call[T]) -> T:
        policy = self.retry if call.retry else NO_RETRY
        request = call.request(self._http)
        attempt = 1
        while True:
            try:
                response = await self._http.send(request)
            except httpx.TransportError as error:
                if attempt >= policy.attempts or not policy.retries_error(error):
                    raise
                wait = policy.delay_s(attempt)
            else:
                retry = policy.retries_response(response, mutating=call.mutating)
                if attempt >= policy.attempts or not retry:
                    return call.result(response)
                wait = policy.delay_s(attempt, response)
            await asyncio.sleep(wait)
            attempt += 1

    # -- operations ----------------------------------------------------------------------

    async def healthz(self) -> Health:
        """Whether the server process is alive."""
        return await self._run(routes.healthz())

    async def readyz(self) -> Health:
        """Whether the server reaches its database at the newest migration (never retried)."""
        return await self._run(routes.readyz())

    # -- organizations, teams, members ---------------------------------------------------

    async def create_org(
        self,
        org_id: str,
        *,
        name: str | None = None,
        timezone: str = "UTC",
        low_balance_thresholds: list[Amount] | tuple[Amount, ...] = (),
        expiry_notice_days: int | None = None,
        idempotency_key: str | None = None,
    ) -> Org:
        """Create an organization; ``org_id`` is the vendor's own identifier. Its low-balance
        alerts and expiry notice period (default 7 days) may be set at once."""
        call = routes.create_org(
            org_id, name, timezone, low_balance_thresholds, expiry_notice_days, idempotency_key
        )
        return await self._run(call)

    async def orgs(
        self, *, cursor: str | None = None, limit: int | None = None, search: str | None = None
    ) -> Page[Org]:
        """One page of organizations in id order, optionally matching ``search``."""
        return await self._run(routes.orgs(cursor, limit, search))

    def iter_orgs(
        self, *, search: str | None = None, limit: int | None = None
    ) -> AsyncIterator[Org]:
        """Every organization, fetching page after page of ``limit``."""
        return _walk(lambda cursor: self.orgs(cursor=cursor, limit=limit, search=search))

    async def org(self, org_id: str) -> Org:
        return await self._run(routes.org(org_id))

    async def update_org(
        self,
        org_id: str,
        *,
        name: str | Missing = MISSING,
        timezone: str | Missing = MISSING,
        low_balance_thresholds: list[Amount] | tuple[Amount, ...] | Missing | None = MISSING,
        expiry_notice_days: int | Missing = MISSING,
        idempotency_key: str | None = None,
    ) -> Org:
        """Change the name, time zone, low-balance thresholds or expiry notice period;
        others stay as they are."""
        call = routes.update_org(
            org_id, name, timezone, low_balance_thresholds, expiry_notice_days, idempotency_key
        )
        return await self._run(call)

    async def create_team(
        self,
        org_id: str,
        team_id: str,
        *,
        name: str | None = None,
        monthly_limit: Amount | None = None,
        idempotency_key: str | None = None,
    ) -> Team:
        """Create a team, optionally with an (informational) monthly limit."""
        return await self._run(
            routes.create_team(org_id, team_id, name, monthly_limit, idempotency_key)
        )

    async def teams(
        self, org_id: str, *, after: str | None = None, limit: int | None = None
    ) -> list[Team]:
        """Teams in id order after ``after``: ``limit`` of them, or all (page by page)."""
        return await _pages(
            lambda cursor: self._run(routes.teams(org_id, cursor, limit)), after, limit
        )

    async def update_team(
        self,
        org_id: str,
        team_id: str,
        *,
        name: str | Missing = MISSING,
        monthly_limit: Amount | Missing | None = MISSING,
        idempotency_key: str | None = None,
    ) -> Team:
        """Change the name or the monthly limit (None removes the limit)."""
        call = routes.update_team(org_id, team_id, name, monthly_limit, idempotency_key)
        return await self._run(call)

    async def set_team_limit(
        self,
        org_id: str,
        team_id: str,
        monthly_limit: Amount | None,
        *,
        idempotency_key: str | None = None,
    ) -> Team:
        """Set (or with None remove) a team's monthly limit."""
        return await self.update_team(
            org_id, team_id, monthly_limit=monthly_limit, idempotency_key=idempotency_key
        )

    async def set_member(
        self,
        org_id: str,
        user_id: str,
        *,
        team_id: str | None = None,
        display_name: str | None = None,
        idempotency_key: str | None = None,
    ) -> Member:
        """Put a member in a team (or in none); future consumptions are attributed to it.
        The member is replaced as a whole: None is no team, no display name."""
        return await self._run(
            routes.set_member(org_id, user_id, team_id, display_name, idempotency_key)
        )

    async def member(self, org_id: str, user_id: str) -> Member:
        return await self._run(routes.member(org_id, user_id))

    async def members(
        self,
        org_id: str,
        *,
        team_id: str | None = None,
        after: str | None = None,
        limit: int | None = None,
    ) -> list[Member]:
        """Members in user id order after ``after``: ``limit`` of them, or all."""
        return await _pages(
            lambda cursor: self._run(routes.members(org_id, team_id, cursor, limit)), after, limit
        )

    async def team_usage(
        self,
        org_id: str,
        month: str | None = None,
        *,
        after: str | None = None,
        limit: int | None = None,
    ) -> list[TeamUsage]:
        """Paid usage per team in a calendar month (``YYYY-MM``; default: this month): teams
        in id order after ``after``, then "no team"; ``limit`` of them, or all."""
        return await _pages(
            lambda cursor: self._run(routes.team_usage(org_id, month, cursor, limit)), after, limit
        )

    # -- features ------------------------------------------------------------------------

    async def features(
        self, *, after: str | None = None, limit: int | None = None
    ) -> list[Feature]:
        """Features in key order after ``after``: ``limit`` of them, or all."""
        return await _pages(lambda cursor: self._run(routes.features(cursor, limit)), after, limit)

    async def set_feature(
        self,
        key: str,
        *,
        name: str | None = None,
        cost: Amount | None = None,
        unit_rate: Amount | None = None,
        unit: str | None = None,
        idempotency_key: str | None = None,
    ) -> Feature:
        """Price a feature from now on: a fixed ``cost`` per use, or a ``unit_rate`` per
        ``unit`` (its history records the API key's name as ``changed_by``)."""
        call = routes.set_feature(key, name, cost, unit_rate, unit, idempotency_key)
        return await self._run(call)

    async def feature_prices(
        self, key: str, *, before_id: int | None = None, limit: int | None = None
    ) -> list[FeaturePrice]:
        """The feature's prices, newest first, older than the row ``before_id``: ``limit``
        of them, or all."""
        return await _pages(
            lambda cursor: self._run(routes.feature_prices(key, cursor, limit)), before_id, limit
        )

    # -- grants --------------------------------------------------------------------------

    async def grant(
        self,
        org_id: str,
        amount: Amount,
        *,
        expires_at: datetime | None = None,
        available_from: datetime | None = None,
        note: str | None = None,
        reference: str | None = None,
        idempotency_key: str | None = None,
    ) -> Grant:
        """Deposit credits (a staff key; ``granted_by`` is the key's name)."""
        return await self._run(routes.grant(org_id, locals()))

    async def grants(
        self, org_id: str, *, after_id: int | None = None, limit: int | None = None
    ) -> list[Grant]:
        """Grants in id order after ``after_id``: ``limit`` of them, or all."""
        return await _pages(
            lambda cursor: self._run(routes.grants(org_id, cursor, limit)), after_id, limit
        )

    async def grant_info(self, org_id: str, grant_id: int) -> GrantDetail:
        """A grant with the consumptions it ``funded``."""
        return await self._run(routes.grant_info(org_id, grant_id))

    async def void_grant(
        self,
        org_id: str,
        grant_id: int,
        *,
        amount: Amount | None = None,
        reason: str | None = None,
        idempotency_key: str | None = None,
    ) -> Grant:
        """Void a mistaken grant: its remaining credits leave the pool. With ``amount``,
        only that much of what it has left (staff); the grant stays."""
        return await self._run(routes.void_grant(org_id, grant_id, amount, reason, idempotency_key))

    async def change_grant_expiry(
        self,
        org_id: str,
        grant_id: int,
        expires_at: datetime | None,
        *,
        reason: str | None = None,
        idempotency_key: str | None = None,
    ) -> Grant:
        """Move a grant's expiry earlier or later (None: permanent); staff."""
        return await self._run(
            routes.change_grant_expiry(org_id, grant_id, expires_at, reason, idempotency_key)
        )

    async def adjust(
        self,
        org_id: str,
        credits: Amount,
        *,
        reason: str,
        idempotency_key: str | None = None,
    ) -> Adjustment:
        """A manual adjustment (staff): negative ``credits`` debit the pool, positive
        credit it back."""
        return await self._run(routes.adjust(org_id, credits, reason, idempotency_key))

    async def adjustment(self, org_id: str, adjustment_id: int) -> Adjustment:
        return await self._run(routes.adjustment(org_id, adjustment_id))

    async def audit_log(
        self, org_id: str, *, cursor: str | int | None = None, limit: int | None = None
    ) -> Page[AuditRecord]:
        """One page of the organization's audit trail (settings, keys, portal links,
        refunds: who, when, what), newest first."""
        return await self._run(routes.audit_log(org_id, cursor, limit))

    async def corrections(
        self,
        org_id: str,
        *,
        kind: str | None = None,
        grant_id: int | None = None,
        cursor: str | int | None = None,
        limit: int | None = None,
    ) -> Page[Correction]:
        """One page of the staff corrections (who, when, why), newest first."""
        return await self._run(routes.corrections(org_id, kind, grant_id, cursor, limit))

    # -- consumptions and refunds --------------------------------------------------------

    async def consume(
        self,
        org_id: str,
        feature: str,
        *,
        user_id: str,
        quantity: Amount | None = None,
        feature_name: str | None = None,
        action: str | None = None,
        integration: str | None = None,
        breakdown: Mapping[str, int] | None = None,
        requests: int | None = None,
        metadata: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        dry_run: bool = False,
    ) -> Consumption:
        """Charge one use of ``feature`` by ``user_id``: all or nothing.

        Raises InsufficientCredits (``extra["left"]``, ``extra["required"]``) when the pool
        holds too little. With ``dry_run`` nothing is charged: the answer shows the cost
        and the grants it would draw from.
        """
        return await self._run(routes.consume(org_id, locals()))

    async def consumptions(
        self,
        org_id: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        feature: str | None = None,
        user_id: str | None = None,
        team_id: str | None = None,
        status: str | None = None,
        cursor: str | int | None = None,
        limit: int | None = None,
    ) -> Page[Consumption]:
        """One page of consumptions, newest first (``status``: paid or refunded)."""
        call = routes.consumptions(
            org_id,
            since=since,
            until=until,
            feature=feature,
            user_id=user_id,
            team_id=team_id,
            status=status,
            cursor=cursor,
            limit=limit,
        )
        return await self._run(call)

    def iter_consumptions(
        self,
        org_id: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        feature: str | None = None,
        user_id: str | None = None,
        team_id: str | None = None,
        status: str | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[Consumption]:
        """Every matching consumption, newest first, page after page."""
        return _walk(
            lambda cursor: self.consumptions(
                org_id,
                since=since,
                until=until,
                feature=feature,
                user_id=user_id,
                team_id=team_id,
                status=status,
                cursor=cursor,
                limit=limit,
            )
        )

    async def consumption(self, org_id: str, consumption_id: int) -> Consumption:
        return await self._run(routes.consumption(org_id, consumption_id))

    async def refund(
        self,
        org_id: str,
        consumption_id: int,
        *,
        reason: str | None = None,
        idempotency_key: str | None = None,
    ) -> Refund:
        """Refund a paid consumption; a second refund returns the first result."""
        return await self._run(routes.refund(org_id, consumption_id, reason, idempotency_key))

    # -- holds ---------------------------------------------------------------------------

    async def hold(
        self,
        org_id: str,
        feature: str,
        *,
        user_id: str,
        quantity: Amount | None = None,
        amount: Amount | None = None,
        ttl_s: int | None = None,
        feature_name: str | None = None,
        action: str | None = None,
        integration: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Hold:
        """Reserve ``amount`` credits (or the price of ``quantity`` of ``feature``) for
        ``ttl_s`` seconds (default: the server's); InsufficientCredits when Left is less."""
        return await self._run(routes.hold(org_id, locals()))

    async def settle(
        self,
        org_id: str,
        hold_id: int,
        *,
        cost: Amount | None = None,
        quantity: Amount | None = None,
        user_id: str | None = None,
        feature_name: str | None = None,
        action: str | None = None,
        integration: str | None = None,
        breakdown: Mapping[str, int] | None = None,
        requests: int | None = None,
        metadata: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Consumption:
        """Turn an open hold into one paid consumption of its real cost (fields not given
        come from the hold). HoldNotOpen (``extra["status"]``) when it is not open;
        InsufficientCredits when a cost above the hold cannot be paid (it stays open)."""
        return await self._run(routes.settle(org_id, hold_id, locals()))

    async def release(
        self, org_id: str, hold_id: int, *, idempotency_key: str | None = None
    ) -> Hold:
        """Give an open hold's credits back; HoldNotOpen when it is not open."""
        return await self._run(routes.release(org_id, hold_id, idempotency_key))

    async def holds(
        self,
        org_id: str,
        *,
        status: str | None = None,
        cursor: str | int | None = None,
        limit: int | None = None,
    ) -> Page[Hold]:
        """One page of holds, newest first (``status``: open, settled, released, expired)."""
        return await self._run(routes.holds(org_id, status, cursor, limit))

    def iter_holds(
        self, org_id: str, *, status: str | None = None, limit: int | None = None
    ) -> AsyncIterator[Hold]:
        """Every matching hold, newest first, page after page."""
        return _walk(lambda cursor: self.holds(org_id, status=status, cursor=cursor, limit=limit))

    async def hold_of(self, org_id: str, hold_id: int) -> Hold:
        return await self._run(routes.hold_of(org_id, hold_id))

    # -- balance and ledger --------------------------------------------------------------

    async def balance(self, org_id: str, at: datetime | None = None) -> Balance:
        """Total, used, left, held and upcoming, now or at a past instant ``at``."""
        return await self._run(routes.balance(org_id, at))

    async def forecast(self, org_id: str, *, window_days: int = WINDOW_DAYS_DEFAULT) -> Forecast:
        """When Left reaches zero at the pace of the paid usage of the last ``window_days``
        days (1 to 365) ending now, what expires unused, and each team's projected month-end
        usage against its limit (``teams`` is None for a member's key)."""
        return await self._run(routes.forecast(org_id, window_days))

    async def ledger(
        self,
        org_id: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        cursor: str | int | None = None,
        limit: int | None = None,
    ) -> Page[LedgerEntry]:
        """One page of ledger entries, oldest first."""
        return await self._run(routes.ledger(org_id, since, until, cursor, limit))

    def iter_ledger(
        self,
        org_id: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[LedgerEntry]:
        """Every ledger entry in order, page after page."""
        return _walk(
            lambda cursor: self.ledger(org_id, since=since, until=until, cursor=cursor, limit=limit)
        )

    # -- events and webhooks -------------------------------------------------------------

    async def events(
        self,
        org_id: str,
        *,
        type: str | None = None,
        before: str | None = None,
        limit: int = 50,
    ) -> list[Event]:
        """The organization's events, newest first (``before``: an event id, to page)."""
        return (await self._run(routes.event_log(org_id, type, before, limit))).data

    async def create_webhook_endpoint(
        self,
        url: str,
        *,
        event_types: list[str] | None = None,
        description: str | None = None,
        enabled: bool = True,
    ) -> WebhookEndpointWithSecret:
        """A new endpoint (a service key); its secret is in the answer, and never again."""
        call = routes.create_webhook_endpoint(url, event_types, description, enabled)
        return await self._run(call)

    async def webhook_endpoints(
        self, *, after: str | None = None, limit: int | None = None
    ) -> list[WebhookEndpoint]:
        """Endpoints in id order after ``after``: ``limit`` of them, or all (page by page)."""
        return await _pages(
            lambda cursor: self._run(routes.webhook_endpoints(cursor, limit)), after, limit
        )

    async def webhook_endpoint(self, endpoint_id: str) -> WebhookEndpoint:
        return await self._run(routes.webhook_endpoint(endpoint_id))

    async def update_webhook_endpoint(self, endpoint_id: str, **changes: Any) -> WebhookEndpoint:
        """Change ``url``, ``event_types``, ``description`` or ``enabled``; only those given."""
        return await self._run(routes.update_webhook_endpoint(endpoint_id, changes))

    async def delete_webhook_endpoint(self, endpoint_id: str) -> None:
        await self._run(routes.delete_webhook_endpoint(endpoint_id))

    async def rotate_webhook_secret(self, endpoint_id: str) -> WebhookEndpointWithSecret:
        """A new secret; the old one keeps signing beside it for 24 hours."""
        return await self._run(routes.rotate_webhook_secret(endpoint_id))

    async def webhook_deliveries(
        self,
        endpoint_id: str,
        *,
        status: DeliveryStatus | None = None,
        before: int | None = None,
        limit: int = 50,
    ) -> list[WebhookDelivery]:
        """The endpoint's deliveries, newest first, each with its attempts."""
        call = routes.webhook_deliveries(endpoint_id, status, before, limit)
        return (await self._run(call)).data

    async def webhook_delivery(self, endpoint_id: str, delivery_id: int) -> WebhookDelivery:
        return await self._run(routes.webhook_delivery(endpoint_id, delivery_id))

    async def retry_webhook_delivery(self, endpoint_id: str, delivery_id: int) -> WebhookDelivery:
        """Send a delivery again now."""
        return await self._run(routes.retry_webhook_delivery(endpoint_id, delivery_id))

    async def test_webhook_endpoint(self, endpoint_id: str) -> WebhookDelivery:
        """Send the endpoint a ``webhook.test`` event."""
        return await self._run(routes.test_webhook_endpoint(endpoint_id))

    # -- credit requests -----------------------------------------------------------------

    async def request_credits(
        self,
        org_id: str,
        amount: Amount,
        *,
        message: str | None = None,
        idempotency_key: str | None = None,
    ) -> CreditRequest:
        """Ask for more credits (``requested_by`` is the caller): a ``credits.requested``
        event."""
        return await self._run(routes.request_credits(org_id, amount, message, idempotency_key))

    async def credit_requests(
        self,
        org_id: str,
        *,
        status: CreditRequestStatus | None = None,
        before_id: int | None = None,
        limit: int | None = None,
    ) -> list[CreditRequest]:
        """Newest first, older than ``before_id``: ``limit`` of them, or all."""
        return await _pages(
            lambda cursor: self._run(routes.credit_requests(org_id, status, cursor, limit)),
            before_id,
            limit,
        )

    async def grant_credit_request(
        self,
        org_id: str,
        request_id: int,
        *,
        amount: Amount | None = None,
        expires_at: datetime | None = None,
        note: str | None = None,
        idempotency_key: str | None = None,
    ) -> Grant:
        """Answer an open request with a grant (of the amount asked for unless ``amount``),
        which closes it; ``by`` is the caller."""
        call = routes.grant_credit_request(
            org_id, request_id, amount, expires_at, note, idempotency_key
        )
        return await self._run(call)

    async def dismiss_credit_request(
        self, org_id: str, request_id: int, *, idempotency_key: str | None = None
    ) -> CreditRequest:
        """Close an open request without a grant."""
        return await self._run(routes.dismiss_credit_request(org_id, request_id, idempotency_key))

    # -- an organization's API keys ------------------------------------------------------

    async def create_key(
        self,
        role: str,
        *,
        org_id: str | None = None,
        user_id: str | None = None,
        name: str | None = None,
        idempotency_key: str | None = None,
    ) -> tuple[ApiKey, str]:
        """A new ``admin`` or ``member`` (with ``user_id``) key of ``org_id`` and its secret
        token, shown once (a retry with the same ``idempotency_key`` shows it again)."""
        return await self._run(routes.create_key(org_id, role, user_id, name, idempotency_key))

    async def keys(
        self, *, org_id: str | None = None, after: str | None = None, limit: int | None = None
    ) -> list[ApiKey]:
        """``org_id``'s keys in the order they were made (revoked ones too), after the key
        ``after``: ``limit`` of them, or all."""
        return await _pages(
            lambda cursor: self._run(routes.keys(org_id, cursor, limit)), after, limit
        )

    async def revoke_key(
        self, key_id: str, *, org_id: str | None = None, idempotency_key: str | None = None
    ) -> ApiKey:
        """Revoke one of ``org_id``'s keys: it stops working within seconds."""
        return await self._run(routes.revoke_key(org_id, key_id, idempotency_key))


async def _walk(fetch: Callable[[str | None], Awaitable[Page[T]]]) -> AsyncIterator[T]:
    """The items of page after page until the last."""
    cursor: str | None = None
    while True:
        page = await fetch(cursor)
        for item in page.data:
            yield item
        if not page.has_more:
            return
        cursor = page.next_cursor


async def _pages(
    fetch: Callable[[str | None], Awaitable[Page[T]]], start: object, limit: int | None
) -> list[T]:
    """One page of ``limit`` items from the cursor ``start`` (the library's ``after`` or
    ``before``: an id is its item's cursor), or without a limit every item to the end."""
    found: list[T] = []
    cursor = None if start is None else str(start)
    while True:
        page = await fetch(cursor)
        found.extend(page.data)
        if limit is not None or not page.has_more:
            return found
        cursor = page.next_cursor
