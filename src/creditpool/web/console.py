"""The console's corrections of an organization that are not ledger changes: creating it
and editing its settings, its admin and member keys, one-time sign-in links for its users.
Each asks for a confirmation first (``web.confirm``) and is done as the staff member's key
(who is audited as ``by``). Not in the OpenAPI document: pages are not the API."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from creditpool.auth.models import ApiKeyWithSecret
from creditpool.core.errors import NotFound
from creditpool.http.deps import OrgId
from creditpool.http.security import Action, Principal
from creditpool.orgs.models import Org
from creditpool.pool import CreditPool
from creditpool.sessions.models import PortalLink
from creditpool.validation import time_zones
from creditpool.web import console_views as views
from creditpool.web.auth import sessions
from creditpool.web.confirm import Confirmation, Step, confirm_page, org_crumbs, reviewed
from creditpool.web.forms import FormText, Posted, Visit, Visited, see_other, text_fields
from creditpool.web.render import local_time

router = APIRouter(include_in_schema=False)
KeyId = Annotated[str, Path(pattern=r"^[0-9a-f]{1,32}$")]
ZONES = sorted(time_zones())
SETTING_LABELS = {
    "name": "Name",
    "timezone": "Time zone",
    "thresholds": "Low-balance alerts",
    "expiry_notice_days": "Expiry notice (days)",
}


# -- creating an organization and editing its settings -----------------------------------


def _org_form(
    visit: Visit,
    caller: Principal,
    org: Org | None,
    form: dict[str, str],
    status_code: int = 200,
    error: str | None = None,
) -> Response:
    return visit.page(
        "staff_org_form.html", status_code, caller=caller, org=org, form=form,
        form_error=error, zones=ZONES,
    )  # fmt: skip


# The settings form's fields, as sent (creating an organization adds its id).
SETTINGS = ("name", "timezone", "thresholds", "expiry_notice_days")
SettingsFields = Annotated[dict[str, str], text_fields(*SETTINGS)]


@router.get("/staff/new-org")
def new_org_form(visit: Visited) -> Response:
    caller = visit.staff(Action.ORGS_CREATE)
    form = {"id": "", "name": "", "timezone": "UTC", "thresholds": "", "expiry_notice_days": "7"}
    return _org_form(visit, caller, None, form)


@router.post("/staff/new-org")
def new_org(
    post: Posted, fields: SettingsFields, id: FormText = "", step: Step = "review"
) -> Response:
    """Review a new organization, then create it (once per confirmation form)."""
    caller = post.staff(Action.ORGS_CREATE)
    form = {"id": id.strip(), **fields}

    def create(checked: tuple[str, views.OrgSettings]) -> str:
        org_id, settings = checked
        args = settings.arguments()
        post.once(caller, org_id, "org-create", {"id": org_id, **args},
                  lambda: post.pool.create_org(org_id, **args, by=caller.key.name))  # fmt: skip
        return org_id

    return reviewed(
        step,
        partial(_org_form, post, caller, None, form),
        lambda: views.check_new_org(post.pool.db, form, existing=step == "review"),
        lambda checked: confirm_page(post, caller, _new_org_confirmation(*checked)),
        create,
        lambda org_id: see_other(f"/staff/orgs/{org_id}?created=1"),
    )


def _new_org_confirmation(org_id: str, settings: views.OrgSettings) -> Confirmation:
    facts = [("Id", org_id)] + [
        (SETTING_LABELS[k], v or "none")
        for k, v in settings.form.items()
        if k in SETTING_LABELS and k != "name"
    ]
    return Confirmation(
        title=f"Create {settings.name}?",
        action="/staff/new-org",
        fields=settings.form,
        facts=[("Name", settings.name), *facts],
        warning="A new organization with an empty pool: grant it credits once it exists.",
        submit="Create organization",
        cancel="/staff",
        crumbs=[("/staff", "Organizations")],
    )


@router.get("/staff/orgs/{org}/settings")
def org_settings_form(org: OrgId, visit: Visited) -> Response:
    caller = visit.staff(Action.ORGS_UPDATE, org)
    found = visit.pool.org(org)
    return _org_form(visit, caller, found, views.org_form(found))


@router.post("/staff/orgs/{org}/settings")
def org_settings(
    org: OrgId, post: Posted, fields: SettingsFields, step: Step = "review"
) -> Response:
    """Review what the settings change (each before and after), then change them."""
    caller = post.staff(Action.ORGS_UPDATE, org)
    current = post.pool.org(org)
    form = {"id": org.strip(), **fields}

    def save(settings: views.OrgSettings) -> None:
        args = settings.arguments()
        post.once(caller, org, "org-settings", args,
                  lambda: post.pool.update_org(org, by=caller.key.name, **args))  # fmt: skip

    return reviewed(
        step,
        partial(_org_form, post, caller, current, form),
        lambda: views.parse_settings(form, default_name=current.name),
        lambda settings: _settings_review(post, caller, current, settings),
        save,
        lambda _: see_other(f"/staff/orgs/{org}?saved=settings"),
    )


def _settings_review(
    visit: Visit, caller: Principal, org: Org, settings: views.OrgSettings
) -> Response:
    changes = views.setting_changes(org, settings)
    if not changes:
        error = "Nothing to change: these are the settings it has."
        return _org_form(visit, caller, org, settings.form, 422, error)
    facts = [
        (SETTING_LABELS[k], f"{before or 'none'} → {after or 'none'}")
        for k, (before, after) in changes.items()
    ]
    confirmation = Confirmation(
        title=f"Change the settings of {org.name}?",
        action=f"/staff/orgs/{org.id}/settings",
        fields=settings.form,
        facts=facts,
        submit="Save settings",
        cancel=f"/staff/orgs/{org.id}",
        crumbs=org_crumbs(org),
    )
    return confirm_page(visit, caller, confirmation)


# -- an organization's keys --------------------------------------------------------------


@router.get("/staff/orgs/{org}/keys")
def org_keys(
    org: OrgId,
    visit: Visited,
    after: str | None = Query(default=None, pattern=r"^[0-9a-f]{1,32}$"),
    revoked: str | None = Query(default=None, pattern=r"^[0-9a-f]{1,32}$"),
) -> Response:
    caller = visit.staff(Action.KEYS_READ, org)
    return _keys_page(visit, caller, org, after=after, revoked=revoked)


def _keys_page(
    visit: Visit, caller: Principal, org: str, status_code: int = 200, **extra: Any
) -> Response:
    after = extra.pop("after", None)
    view = views.keys_page(visit.pool.db, org, after)
    shown = {"form": {"role": "admin"}, "form_error": None, "revoked": None} | extra
    return visit.page(
        "staff_keys.html", status_code, caller=caller, view=view, after=after, **shown
    )


KeyFields = Annotated[dict[str, str], text_fields("role", "user_id", "name")]


@router.post("/staff/orgs/{org}/keys")
def create_org_key(org: OrgId, post: Posted, sent: KeyFields, step: Step = "review") -> Response:
    """Review a new key, then make it and show its secret, once."""
    caller = post.staff(Action.KEYS_WRITE, org)
    form = {"role": sent["role"], "user_id": sent["user_id"].strip(), "name": sent["name"].strip()}

    def again(status_code: int, error: str | None) -> Response:
        return _keys_page(post, caller, org, status_code, form=form, form_error=error)

    def make(new: views.NewKey) -> bytes:
        return post.once(caller, org, "key-create", form,
                         lambda: _new_key(post.pool, org, new, caller.key.name),
                         seal=post.pool.secret_box)  # fmt: skip

    def shown(made: bytes) -> Response:
        key = ApiKeyWithSecret.model_validate_json(made)
        return _secret_page(post, caller, post.pool.org(org), key)

    return reviewed(
        step,
        again,
        lambda: views.parse_new_key(form),
        lambda new: confirm_page(post, caller, _key_confirmation(post.pool.org(org), new, form)),
        make,
        shown,
    )


def _new_key(pool: CreditPool, org: str, new: views.NewKey, by: str) -> ApiKeyWithSecret:
    key, secret = pool.create_key(new.role, org_id=org, user_id=new.user_id, name=new.name, by=by)
    return ApiKeyWithSecret.model_validate({**key.model_dump(), "secret": secret})


def _key_confirmation(org: Org, new: views.NewKey, form: dict[str, str]) -> Confirmation:
    scope = "the whole organization" if new.role == "admin" else f"user {new.user_id}'s usage"
    return Confirmation(
        title=f"Create a {new.role} key for {org.name}?",
        action=f"/staff/orgs/{org.id}/keys",
        fields=form,
        facts=[("Role", f"{new.role}: {scope}"), ("Name", new.name or f"{new.role}-…")],
        warning="Its secret is shown once, on the next page: hand it over safely.",
        submit="Create key",
        cancel=f"/staff/orgs/{org.id}/keys",
        crumbs=org_crumbs(org),
    )


def _secret_page(visit: Visit, caller: Principal, org: Org, key: ApiKeyWithSecret) -> Response:
    facts = [("Id", key.id), ("Name", key.name), ("Role", key.role.value)]
    if key.user_id:
        facts.append(("User", key.user_id))
    return visit.page(
        "staff_secret.html", caller=caller, org=org, title=f"Key {key.id} created",
        facts=facts, secret=key.secret, secret_label="Secret (Authorization: Bearer …)",
        warning="Copy the secret now: it is shown this once and cannot be read again.",
        done=f"/staff/orgs/{org.id}/keys",
    )  # fmt: skip


@router.get("/staff/orgs/{org}/keys/{key_id}/revoke")
def revoke_key_confirm(org: OrgId, key_id: KeyId, visit: Visited) -> Response:
    caller = visit.staff(Action.KEYS_WRITE, org)
    org_model, key = views.org_key(visit.pool.db, org, key_id)
    if key is None:
        raise NotFound(f"key {key_id!r} not found in organization {org!r}")
    made = local_time(key.created_at, org_model.timezone)
    confirmation = Confirmation(
        title=f"Revoke key {key.id}?",
        action=f"/staff/orgs/{org}/keys/{key.id}/revoke",
        fields={},
        facts=[
            ("Name", key.name),
            ("Role", key.role.value),
            ("User", key.user_id or "—"),
            ("Created", made),
        ],
        warning=(
            f"Already revoked on {local_time(key.revoked_at, org_model.timezone)}."
            if key.revoked_at
            else "It stops working within seconds; whoever uses it is refused from then on."
        ),
        submit="Revoke key",
        danger=True,
        cancel=f"/staff/orgs/{org}/keys",
        crumbs=org_crumbs(org_model),
        editable=False,
    )
    return confirm_page(visit, caller, confirmation)


@router.post("/staff/orgs/{org}/keys/{key_id}/revoke")
def revoke_key(org: OrgId, key_id: KeyId, post: Posted, step: Step = "confirm") -> Response:
    caller = post.staff(Action.KEYS_WRITE, org)
    post.once(caller, org, "key-revoke", {"key_id": key_id},
              lambda: post.pool.revoke_key(key_id, org_id=org, by=caller.key.name))  # fmt: skip
    return see_other(f"/staff/orgs/{org}/keys?revoked={key_id}")


# -- sign-in links for an organization's users -------------------------------------------


def _portal_form(
    visit: Visit,
    caller: Principal,
    org: Org,
    form: dict[str, str],
    status_code: int = 200,
    error: str | None = None,
) -> Response:
    minutes = max(1, sessions(visit.request).settings.portal_link_ttl_s // 60)
    return visit.page(
        "staff_portal_form.html", status_code, caller=caller, org=org, form=form,
        form_error=error, ttl_minutes=minutes,
    )  # fmt: skip


@router.get("/staff/orgs/{org}/portal-link")
def portal_link_form(org: OrgId, visit: Visited) -> Response:
    caller = visit.staff(Action.PORTAL_CREATE, org)
    return _portal_form(visit, caller, visit.pool.org(org), {"role": "member"})


PortalFields = Annotated[dict[str, str], text_fields("user_id", "role")]


@router.post("/staff/orgs/{org}/portal-link")
def portal_link(org: OrgId, post: Posted, sent: PortalFields, step: Step = "review") -> Response:
    """Review, then mint a one-time link and show it with its expiry (never stored: a
    second submit mints another, and the unused one simply expires)."""
    caller = post.staff(Action.PORTAL_CREATE, org)
    org_model = post.pool.org(org)
    form = {"user_id": sent["user_id"].strip(), "role": sent["role"]}

    def mint(checked: tuple[str, str]) -> PortalLink:
        user, portal_role = checked
        ttl_s = sessions(post.request).settings.portal_link_ttl_s
        return post.pool.portal_link(org, user, role=portal_role, by=caller.key.name, ttl_s=ttl_s)

    return reviewed(
        step,
        partial(_portal_form, post, caller, org_model, form),
        lambda: views.parse_portal(form),
        lambda checked: confirm_page(
            post, caller, _portal_confirmation(org_model, checked[0], form)
        ),
        mint,
        lambda link: _link_page(post, caller, org_model, link),
    )


def _link_page(visit: Visit, caller: Principal, org_model: Org, link: PortalLink) -> Response:
    """The minted link, shown once with its expiry."""
    url = str(visit.request.url_for("portal_sign_in", token=link.token))
    expires = local_time(link.expires_at, org_model.timezone, "%Y-%m-%d %H:%M:%S")
    return visit.page(
        "staff_secret.html", caller=caller, org=org_model,
        title=f"Sign-in link for {link.user_id}", secret=url, secret_label="Link",
        facts=[("User", link.user_id), ("Signs in as", link.role.value),
               ("Expires", f"{expires} ({org_model.timezone})")],
        warning="It works once, until it expires: send it to the user now. It is not kept.",
        done=f"/staff/orgs/{org_model.id}",
    )  # fmt: skip


def _portal_confirmation(org: Org, user: str, form: dict[str, str]) -> Confirmation:
    scope = "the whole organization" if form["role"] == "admin" else "their own usage"
    return Confirmation(
        title=f"Mint a sign-in link for {user}?",
        action=f"/staff/orgs/{org.id}/portal-link",
        fields=form,
        facts=[
            ("Organization", org.name),
            ("User", user),
            ("Signs in as", f"{form['role']}: {scope}"),
        ],
        warning="Whoever opens the link is signed in as this user: send it to them only.",
        submit="Mint link",
        cancel=f"/staff/orgs/{org.id}",
        crumbs=org_crumbs(org),
    )
