"""Page routes: thin. Parse, call the web service (which reads through the library),
render. Forms POST with the session's CSRF token; every other route is a GET that changes
nothing. Not in the OpenAPI document: pages are not the API."""

from __future__ import annotations

import secrets
import uuid
from datetime import date
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from creditpool import commands
from creditpool import validation as check
from creditpool.auth.models import Role
from creditpool.core.errors import InvalidInput, NotFound
from creditpool.credit_requests.models import CreditRequest
from creditpool.grants.models import Grant
from creditpool.http.cookies import Sessions
from creditpool.http.deps import ObjectId, OrgId, Pool, TeamId
from creditpool.http.downloads import download_response, span_days_max
from creditpool.http.security import Action, Principal
from creditpool.orgs.models import Org
from creditpool.pool import CreditPool
from creditpool.reports.models import ReportFormat, ReportKind, ReportPeriod
from creditpool.sessions import service as sessions_service
from creditpool.sessions.models import SessionClaims
from creditpool.web import service
from creditpool.web.auth import CsrfRefused, form_caller, page_claims, sessions
from creditpool.web.forms import (
    Csrf,
    FormText,
    Posted,
    Visit,
    Visited,
    attempt,
    refusal,
    see_other,
    text_fields,
)
from creditpool.web.render import fragment, page

router = APIRouter(include_in_schema=False)
LOGIN_CSRF_COOKIE = "creditpool_login_csrf"
Text = Annotated[str | None, Query(max_length=200)]


def _optional(value: str | None) -> str | None:
    return value.strip() or None if value is not None else None


def _identifier(value: str | None, field: str) -> str | None:
    value = _optional(value)
    return None if value is None else check.identifier(value, field)


def _day(value: str | None, field: str) -> date | None:
    value = _optional(value)
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{field} must be a date (YYYY-MM-DD): {value[:20]!r}") from None


# -- signing in and out ------------------------------------------------------------------


@router.get("/portal/{token}", name="portal_sign_in")
def portal_sign_in(token: str, request: Request, pool: Pool) -> Response:
    """A one-time link: open a session for its org and user, then show the usage page."""
    link = sessions_service.use_link(pool.db, token)
    if link is None:
        raise NotFound("this sign-in link does not exist")
    browser = sessions(request)
    claims = browser.new_claims(
        link.role.value, org_id=link.org_id, user_id=link.user_id, name=link.user_id
    )
    response = RedirectResponse(f"/app/orgs/{link.org_id}", status_code=303)
    browser.start(response, request, claims)
    return response


@router.post("/app/logout")
def app_logout(request: Request, csrf: Csrf = "") -> Response:
    form_caller(request, csrf)
    response = page(request, "signed_out.html")
    sessions(request).end(response)
    return response


def _login_page(request: Request, status_code: int = 200, error: str | None = None) -> Response:
    """The sign-in form with a fresh login CSRF token, in the form and in a cookie (there
    is no session yet to hold one)."""
    token = secrets.token_urlsafe(24)
    response = page(
        request, "staff_login.html", status_code=status_code, login_csrf=token, error=error
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE, token, max_age=3600, httponly=True, samesite="strict",
        secure=request.url.scheme == "https", path="/staff/login",
    )  # fmt: skip
    return response


@router.get("/staff/login")
def staff_login_form(request: Request) -> Response:
    return _login_page(request)


@router.post("/staff/login")
def staff_login(
    request: Request,
    pool: Pool,
    key: Annotated[str, Form(max_length=200)] = "",
    csrf: Csrf = "",
) -> Response:
    """Sign staff in with a staff API key; the session acts as that key."""
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not secrets.compare_digest(expected, csrf):
        raise CsrfRefused("reload the sign-in page and try again")
    found = pool.authenticate(key.strip())
    if found is None or found.role is not Role.STAFF:
        return _login_page(request, 401, "That is not a valid staff key.")
    browser = sessions(request)
    claims = browser.new_claims(
        Role.STAFF.value, org_id=None, user_id=None, name=found.name, key_id=found.id
    )
    response = RedirectResponse("/staff", status_code=303)
    browser.start(response, request, claims)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/staff/login")
    return response


@router.post("/staff/logout")
def staff_logout(request: Request, csrf: Csrf = "") -> Response:
    form_caller(request, csrf)
    response = RedirectResponse("/staff/login", status_code=303)
    sessions(request).end(response)
    return response


@router.get("/demo/{role}")
def demo_sign_in(role: str, request: Request, pool: Pool) -> Response:
    """``serve --demo`` only: a fresh session for the demo admin, member or staff."""
    browser = sessions(request)
    if not browser.settings.demo or role not in ("admin", "member", "staff"):
        raise NotFound("no such page")
    from creditpool.demo import DEMO_ORG_IDS

    org_id = DEMO_ORG_IDS[0]
    if role == "staff":
        claims = _demo_staff(pool, browser)
        target = "/staff"
    else:
        user = "demo.admin" if role == "admin" else pool.members(org_id)[0].user_id
        claims = browser.new_claims(role, org_id=org_id, user_id=user, name=user)
        target = f"/app/orgs/{org_id}"
    response = RedirectResponse(target, status_code=303)
    browser.start(response, request, claims)
    return response


def _demo_staff(pool: CreditPool, browser: Sessions) -> SessionClaims:
    name = "cs@demo.example"
    every_key = pool.keys()
    live = [k for k in every_key if k.role is Role.STAFF and k.revoked_at is None]
    key = next((k for k in live if k.name == name), None)
    if key is None:
        key = pool.create_key("staff", name=name)[0]
    return browser.new_claims("staff", org_id=None, user_id=None, name=name, key_id=key.id)


# -- the usage page and the credits page -------------------------------------------------


@router.get("/app/orgs/{org}")
def usage(
    org: OrgId,
    visit: Visited,
    feature: Text = None,
    user: Text = None,
    team: Text = None,
    status: Text = None,
    start: Annotated[str | None, Query(alias="from", max_length=20)] = None,
    end: Annotated[str | None, Query(alias="to", max_length=20)] = None,
    before: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    days: Annotated[int, Query()] = 30,
) -> Response:
    caller = visit.caller(Action.BALANCE_READ, org)
    status = _optional(status)
    if status not in (None, "paid", "refunded"):
        raise InvalidInput("status must be paid or refunded")
    filters = service.HistoryFilters(
        feature=_identifier(feature, "feature"),
        user=_identifier(user, "user"),
        team=_identifier(team, "team"),
        status=status,
        start=_day(start, "from"),
        end=_day(end, "to"),
    )
    return _usage_page(visit, caller, org, filters, before, days)


def _chart_days(days: int) -> int:
    """The chart's span: one of those it offers (else the first)."""
    return days if days in service.CHART_DAYS else service.CHART_DAYS[0]


def _usage_page(
    visit: Visit,
    caller: Principal,
    org: str,
    filters: service.HistoryFilters,
    before: int | None,
    days: int,
    status_code: int = 200,
    **extra: Any,
) -> Response:
    view = service.usage_page(visit.pool.db, caller, org, filters, before, _chart_days(days))
    return visit.page(
        "usage.html", status_code, view=view, caller=caller, filters=filters, before=before,
        Action=Action, **extra,
    )  # fmt: skip


def _history_row(
    visit: Visit, org: str, consumption_id: int, *, details: bool
) -> service.HistoryRow:
    caller = visit.caller(Action.OWN_CONSUMPTIONS_READ, org)
    found = service.consumption_row(visit.pool.db, caller, org, consumption_id, details=details)
    if found is None:
        raise NotFound(f"consumption {consumption_id} not found")
    return found


@router.get("/app/orgs/{org}/history/{consumption_id}")
def history_row(org: OrgId, consumption_id: ObjectId, visit: Visited) -> Response:
    """One row of the usage history, for the page's live updates."""
    row = _history_row(visit, org, consumption_id, details=False)
    return fragment(
        "_history_row.html", c=row.consumption, org=row.org, features=row.features,
        people=row.people,
    )  # fmt: skip


@router.get("/app/orgs/{org}/history/{consumption_id}/details")
def history_details(org: OrgId, consumption_id: ObjectId, visit: Visited) -> Response:
    """What a history row opens to (its button loads it): the use's action, integration,
    breakdown, requests, metadata, the grants it drew from and, when refunded, the refund's
    reason and what was restored or lost."""
    row = _history_row(visit, org, consumption_id, details=True)
    return fragment(
        "_history_details.html", c=row.consumption, org=row.org, features=row.features,
        people=row.people, refund=row.refund,
    )  # fmt: skip


@router.post("/app/orgs/{org}/teams/{team}/limit")
def set_team_limit(
    org: OrgId,
    team: TeamId,
    visit: Visited,
    monthly_limit: FormText = "",
    csrf: Csrf = "",
) -> Response:
    """A team's monthly limit (the form sends no nonce: setting it twice sets it once)."""
    caller = form_caller(visit.request, csrf)
    caller.require(Action.TEAM_LIMIT, org)

    def again(status_code: int, error: str | None) -> Response:
        return _usage_page(
            visit, caller, org, service.HistoryFilters(), None, 30, status_code,
            limit_error=(team, error),
        )  # fmt: skip

    return attempt(
        lambda: visit.pool.update_team(org, team, monthly_limit=_optional(monthly_limit)),
        again,
        lambda _: see_other(f"/app/orgs/{org}?saved={team}#teams"),
        refused=InvalidInput,
    )


@router.get("/app/orgs/{org}/live")
def usage_live(org: OrgId, visit: Visited, days: Annotated[int, Query()] = 30) -> Response:
    """The usage page's team table and chart, for its live updates (the balance and the
    history come with the events themselves)."""
    caller = visit.caller(Action.BALANCE_READ, org)
    view = service.usage_live(visit.pool.db, caller, org, _chart_days(days))
    claims = page_claims(visit.request)
    return fragment(
        "_usage_live.html", view=view, org=view.org, caller=caller, Action=Action,
        csrf=claims.csrf,
    )  # fmt: skip


@router.get("/app/orgs/{org}/credits")
def credits(
    org: OrgId,
    visit: Visited,
    requested: Annotated[int | None, Query(ge=1, le=2**62)] = None,
) -> Response:
    caller = visit.caller(Action.GRANTS_READ, org)
    return _credits_page(visit, caller, org, requested=requested)


def _credits_page(
    visit: Visit, caller: Principal, org: str, status_code: int = 200, **extra: Any
) -> Response:
    """The credits page; an organization admin also sees the form to ask for more credits
    and the organization's latest requests."""
    asking = caller.may(Action.CREDIT_REQUESTS_CREATE)
    view = service.credits_page(visit.pool.db, org, with_requests=asking)
    shown = {
        "report_error": None, "report_form": {}, "requested": None, "request_error": None,
    } | extra  # fmt: skip
    return visit.page(
        "credits.html", status_code, view=view, caller=caller, Action=Action, asking=asking,
        nonce=uuid.uuid4().hex, **shown,
    )  # fmt: skip


AskFields = Annotated[dict[str, str], text_fields(*commands.RequestCredits.body_fields())]


@router.post("/app/orgs/{org}/credit-requests")
def request_credits(org: OrgId, post: Posted, form: AskFields) -> Response:
    """An organization admin asks for more credits (staff answer from the console). The
    form's nonce is the idempotency key: a double submit asks once."""
    caller = post.caller(Action.CREDIT_REQUESTS_CREATE, org)

    def make() -> CreditRequest:
        return post.pool.request_credits(
            org,
            form["amount"].strip(),
            requested_by=caller.key.user_id or caller.key.name,
            message=_optional(form["message"]),
            idempotency_key=post.key("credit-request"),
        )

    def again(status_code: int, error: str | None) -> Response:
        return _credits_page(post, caller, org, status_code, request_error=error, form=form)

    def done(asked: CreditRequest) -> Response:
        return see_other(f"/app/orgs/{org}/credits?requested={asked.id}#request")

    return attempt(make, again, done, refused=InvalidInput)


@router.get("/app/orgs/{org}/credits/report")
async def download_report(
    org: OrgId,
    visit: Visited,
    kind: Annotated[ReportKind, Query()] = ReportKind.USAGE,
    start: Annotated[str | None, Query(alias="from", max_length=20)] = None,
    end: Annotated[str | None, Query(alias="to", max_length=20)] = None,
    fmt: Annotated[ReportFormat, Query(alias="format")] = ReportFormat.CSV,
    period: Annotated[ReportPeriod | None, Query()] = None,
) -> Response:
    """The report as the API serves it (the same library call, the same bytes). A preset
    button sends its ``period`` (the typed days are then ignored); after a refusal the
    page shows the form as it was sent."""
    caller = visit.caller(Action.REPORTS_READ, org)
    days = (None, None) if period is not None else (_optional(start), _optional(end))
    report_of = partial(visit.pool.report, period=period, span_days_max=span_days_max())
    try:
        report = await run_in_threadpool(report_of, org, kind, *days)
    except InvalidInput as error:
        sent = {"kind": kind.value, "from": start or "", "to": end or "", "format": fmt.value}
        return await run_in_threadpool(
            _credits_page, visit, caller, org, 422, report_error=error.detail, report_form=sent
        )
    return await download_response(report, fmt)


# -- the staff console -------------------------------------------------------------------


@router.get("/staff")
def staff_home(
    visit: Visited,
    q: Annotated[str | None, Query(max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")] = None,
    after: Text = None,
) -> Response:
    caller = visit.staff(Action.ORGS_LIST)
    rows, next_after = service.org_rows(visit.pool.db, _optional(q), _identifier(after, "after"))
    return visit.page(
        "staff_orgs.html", caller=caller, rows=rows, q=_optional(q) or "",
        next_after=next_after, after=_optional(after),
    )  # fmt: skip


@router.get("/staff/orgs/{org}")
def staff_org(
    org: OrgId,
    visit: Visited,
    before: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    granted: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    voided: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    dismissed: Annotated[int | None, Query(ge=1, le=2**62)] = None,
) -> Response:
    caller = visit.staff(Action.GRANTS_READ, org)
    return _staff_org_page(
        visit, caller, org, before, granted=granted, voided=voided, dismissed=dismissed
    )


def _staff_org_page(
    visit: Visit,
    caller: Principal,
    org: str,
    before: int | None = None,
    status_code: int = 200,
    **extra: Any,
) -> Response:
    visit.pool.sweep(org)  # what fell due is written first: the ledger and hold statuses are exact
    view = service.staff_org_page(visit.pool.db, org, before)
    shown = {
        "form": {}, "form_error": None, "granted": None, "voided": None, "dismissed": None,
    } | extra  # fmt: skip
    return visit.page(
        "staff_org.html", status_code, view=view, caller=caller, nonce=uuid.uuid4().hex,
        summary=service.event_summary, **shown,
    )  # fmt: skip


@router.get("/staff/orgs/{org}/holds/open")
def staff_open_holds(org: OrgId, visit: Visited) -> Response:
    """The rows of the open holds, for the console's live updates."""
    visit.staff(Action.HOLDS_READ, org)
    visit.pool.sweep(org)  # holds that ran out are written first, as for the page
    holds, org_model, names, people = service.open_holds_view(visit.pool.db, org)
    return fragment("_open_holds.html", holds=holds, org=org_model, features=names, people=people)


@router.get("/staff/orgs/{org}/ledger/{seq}")
def staff_ledger_row(org: OrgId, seq: ObjectId, visit: Visited) -> Response:
    """One row of the console's ledger, for its live updates."""
    visit.staff(Action.LEDGER_READ, org)
    visit.pool.sweep(org)
    org_model, entry = service.ledger_row(visit.pool.db, org, seq)
    if entry is None:
        raise NotFound(f"ledger entry {seq} not found")
    return fragment("_ledger_row.html", e=entry, org=org_model)


GrantFields = Annotated[dict[str, str], text_fields(*commands.Grant.body_fields())]


@router.post("/staff/orgs/{org}/grants")
def staff_grant(org: OrgId, post: Posted, form: GrantFields) -> Response:
    """Grant credits. The form's nonce is the idempotency key: a double submit grants once."""
    caller = post.caller(Action.GRANTS_WRITE, org)
    pool = post.pool

    def make() -> Grant:
        zone = pool.org(org).timezone
        return pool.grant(
            org,
            form["amount"].strip(),
            expires_at=service.local_instant(form["expires_at"], zone, "expiry"),
            available_from=service.local_instant(
                form["available_from"], zone, "availability start"
            ),
            granted_by=caller.key.name,
            note=_optional(form["note"]),
            reference=_optional(form["reference"]),
            idempotency_key=post.key("grant"),
        )

    def again(status_code: int, error: str | None) -> Response:
        return _staff_org_page(post, caller, org, status_code=status_code, form=form,
                               form_error=error)  # fmt: skip

    return attempt(make, again, lambda made: see_other(f"/staff/orgs/{org}?granted={made.id}"))


def _void_page(
    visit: Visit, caller: Principal, org: str, grant_id: int, status_code: int = 200, **extra: Any
) -> Response:
    org_model, grant = service.void_view(visit.pool.db, org, grant_id)
    shown = {"form": {}, "form_error": None} | extra
    return visit.page(
        "staff_void.html", status_code, caller=caller, org=org_model, grant=grant,
        nonce=uuid.uuid4().hex, **shown,
    )  # fmt: skip


@router.get("/staff/orgs/{org}/grants/{grant_id}/void")
def staff_void_confirm(org: OrgId, grant_id: ObjectId, visit: Visited) -> Response:
    caller = visit.staff(Action.GRANTS_WRITE, org)
    return _void_page(visit, caller, org, grant_id)


VoidFields = Annotated[dict[str, str], text_fields(*commands.VoidGrant.body_fields())]


@router.post("/staff/orgs/{org}/grants/{grant_id}/void")
def staff_void(org: OrgId, grant_id: ObjectId, post: Posted, form: VoidFields) -> Response:
    """Void the grant whole, or ``amount`` of what it has left (it stays); a refusal shows
    the page again with why."""
    caller = post.caller(Action.GRANTS_WRITE, org)

    def make() -> Grant:
        return post.pool.void_grant(
            org, grant_id, amount=form["amount"].strip() or None, by=caller.key.name,
            reason=_optional(form["reason"]), idempotency_key=post.key("void"),
        )  # fmt: skip

    def again(status_code: int, error: str | None) -> Response:
        return _void_page(post, caller, org, grant_id, status_code, form=form, form_error=error)

    return attempt(
        make, again, lambda _: see_other(f"/staff/orgs/{org}?voided={grant_id}"), message=refusal
    )


# -- credit requests and webhooks in the console --------------------------------------------


@router.get("/staff/orgs/{org}/credit-requests/{request_id}/grant")
def staff_request_confirm(org: OrgId, request_id: ObjectId, visit: Visited) -> Response:
    """Granting a request asks first, with the amount asked for (which staff may change)."""
    caller = visit.staff(Action.CREDIT_REQUESTS_ANSWER, org)
    caller.require(Action.GRANTS_WRITE, org)
    org_model, asked = service.credit_request_view(visit.pool.db, org, request_id)
    return _request_confirm_page(visit, caller, org_model, asked)


def _request_confirm_page(
    visit: Visit,
    caller: Principal,
    org: Org,
    asked: CreditRequest,
    status_code: int = 200,
    **extra: Any,
) -> Response:
    shown = {"form": {"amount": str(asked.amount)}, "form_error": None} | extra
    return visit.page(
        "staff_request_grant.html", status_code, caller=caller, org=org, asked=asked,
        nonce=uuid.uuid4().hex, **shown,
    )  # fmt: skip


RequestGrantFields = Annotated[
    dict[str, str], text_fields(*commands.GrantCreditRequest.body_fields())
]


@router.post("/staff/orgs/{org}/credit-requests/{request_id}/grant")
def staff_request_grant(
    org: OrgId, request_id: ObjectId, post: Posted, form: RequestGrantFields
) -> Response:
    """Answer a request with a grant (which closes it); a double submit grants once."""
    caller = post.caller(Action.GRANTS_WRITE, org)
    caller.require(Action.CREDIT_REQUESTS_ANSWER, org)
    org_model, asked = service.credit_request_view(post.pool.db, org, request_id)

    def make() -> Grant:
        return post.pool.grant_credit_request(
            org,
            request_id,
            amount=_optional(form["amount"]),
            expires_at=service.local_instant(form["expires_at"], org_model.timezone, "expiry"),
            by=caller.key.name,
            note=_optional(form["note"]),
            idempotency_key=post.key("request-grant"),
        )

    def again(status_code: int, error: str | None) -> Response:
        return _request_confirm_page(post, caller, org_model, asked, status_code, form=form,
                                     form_error=error)  # fmt: skip

    return attempt(
        make, again, lambda made: see_other(f"/staff/orgs/{org}?granted={made.id}"),
        refused=InvalidInput,
    )  # fmt: skip


@router.post("/staff/orgs/{org}/credit-requests/{request_id}/dismiss")
def staff_request_dismiss(org: OrgId, request_id: ObjectId, post: Posted) -> Response:
    caller = post.caller(Action.CREDIT_REQUESTS_ANSWER, org)
    key = post.key("request-dismiss")
    post.pool.dismiss_credit_request(org, request_id, by=caller.key.name, idempotency_key=key)
    return see_other(f"/staff/orgs/{org}?dismissed={request_id}")


@router.get("/staff/webhooks")
def staff_webhooks(visit: Visited) -> Response:
    """The vendor's webhook endpoints and their health (read only: the vendor manages them
    through the API)."""
    caller = visit.staff(Action.WEBHOOKS_READ)
    rows = service.webhooks_page(visit.pool.db)
    return visit.page("staff_webhooks.html", caller=caller, rows=rows)
