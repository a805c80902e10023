"""Serving the API and managing its keys."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from creditpool.cli import render, roles
from creditpool.cli.calls import change, listing
from creditpool.cli.context import By, JsonFlag, LimitOrAll, OrgId, open_pool, state, who
from creditpool.cli.errors import CliError, group

if TYPE_CHECKING:
    from creditpool.auth.models import ApiKey
    from creditpool.demo import DemoKeys

keys_app = group("API keys: create (shown once), list, revoke.")

KEY_COLUMNS: render.Columns = {
    "id": "id",
    "name": "name",
    "role": "role.value",
    "org": lambda k: k.org_id or "",
    "user": lambda k: k.user_id or "",
    "created": "created_at",
    "revoked": lambda k: k.revoked_at or "",
}


def serve(
    ctx: typer.Context,
    host: Annotated[
        str | None, typer.Option(help="[env CREDITPOOL_HOST; default 127.0.0.1]")
    ] = None,
    port: Annotated[int | None, typer.Option(help="[env CREDITPOOL_PORT; default 8000]")] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            help="Server processes (PostgreSQL only; SQLite runs one). Each counts"
            " CREDITPOOL_RATE_LIMIT on its own: N workers let a key reach N times it."
            " [env CREDITPOOL_WORKERS]"
        ),
    ] = None,
    demo: Annotated[
        bool, typer.Option("--demo", help="Fill demo data and print keys for every role.")
    ] = False,
) -> None:
    """Serve the HTTP API (and its OpenAPI docs at /docs)."""
    from creditpool.settings import Settings

    try:
        from creditpool.server import (
            run as server,  # only here: the rest of the CLI runs without it
        )
    except ImportError as error:
        raise missing_extra(error, "server") from None
    settings = Settings(database_url=state(ctx).database_url)
    changes = {k: v for k, v in {"host": host, "port": port, "workers": workers}.items() if v}
    settings = settings.model_copy(update={**changes, "demo": demo})
    keys = server.prepare(settings.database_url, demo=demo)
    url = f"http://{settings.host}:{settings.port}"
    render.line(f"creditpool is serving {state(ctx).shown_url} at {url}")
    render.line(f"  API docs:  {url}/docs")
    if keys is not None:
        _print_demo(keys, url)
    server.serve(settings)


def _print_demo(keys: DemoKeys, url: str) -> None:
    if keys.reused:
        render.line(f"  demo organization {keys.org_id!r}; API keys (kept in {keys.path}):")
    elif keys.path is not None:
        render.line(
            f"  demo organization {keys.org_id!r}; API keys (new; kept in {keys.path}, mode 0600):"
        )
    else:
        render.line(f"  demo organization {keys.org_id!r}; API keys (new; shown once):")
    render.line(f"    service  {keys.service}")
    render.line(f"    staff    {keys.staff}")
    render.line(f"    admin    {keys.admin}")
    render.line(f"    member   {keys.member}   (user {keys.member_user})")
    render.line(
        f"  try: curl -H 'Authorization: Bearer {keys.admin}' {url}/v1/orgs/{keys.org_id}/balance"
    )
    render.line("  pages (each link opens a fresh browser session):")
    render.line(f"    admin    {url}/demo/admin    usage page of {keys.org_id}")
    render.line(f"    member   {url}/demo/member   ({keys.member_user}: only their usage)")
    render.line(f"    staff    {url}/demo/staff    console; or sign in at {url}/staff/login")
    render.line("             with the staff key above")


def missing_extra(error: ImportError, extra: str) -> Exception:
    """What to say when a command's optional dependencies are not installed."""
    if (error.name or "creditpool").partition(".")[0] == "creditpool":
        return error  # our own module is missing: a bug, not an extra to install
    return CliError(
        f"this command needs the {extra} extra (missing {error.name}): "
        f"pip install 'creditpool[{extra}]'"
    )


def create_key(
    ctx: typer.Context,
    role: Annotated[
        str, typer.Option(help="service, staff, admin or member (what each may do: below)")
    ],
    org: Annotated[
        str | None, typer.Option(help="The organization (admin and member keys)")
    ] = None,
    user: Annotated[str | None, typer.Option(help="The user (member keys)")] = None,
    name: Annotated[
        str | None, typer.Option(help="A name (staff keys: recorded as granted_by)")
    ] = None,
    by: By = None,
    as_json: JsonFlag = False,
) -> None:
    """Create a key. Its secret is printed once; only a hash of it is stored."""
    pool = open_pool(ctx, create=True)
    key, secret = pool.create_key(role, org_id=org, user_id=user, name=name, by=who(by))
    if as_json:
        render.emit_json({**key.model_dump(mode="json"), "secret": secret})
        return
    render.line(f"created {key.role.value} key {key.id} ({key.name})")
    render.line(f"secret (shown once): {secret}")


@listing("keys", KEY_COLUMNS, org="org_id")
def list_keys(
    found: list[ApiKey],
    org: Annotated[str | None, typer.Option(help="Only this organization's keys.")] = None,
    after: Annotated[str | None, typer.Option(help="Start after this key id (paging).")] = None,
    limit: LimitOrAll = None,
) -> str:
    """Keys in the order they were made (revoked ones too), without secrets."""
    return "API keys"


@change("revoke_key", by="by", org="org_id")
def revoke_key(
    key: ApiKey,
    key_id: Annotated[str, typer.Argument(help="The key's id (not its secret)")],
    org: Annotated[
        str | None, typer.Option(help="Refuse unless the key is this organization's.")
    ] = None,
    by: By = None,
) -> str:
    """Revoke a key: it stops working within seconds."""
    return f"revoked {key.role.value} key {key.id} ({key.name})"


def portal_link(
    ctx: typer.Context,
    org_id: OrgId,
    user_id: Annotated[str, typer.Argument(help="The user the page is for.")],
    role: Annotated[
        str, typer.Option(help="admin (the whole organization) or member (one user's usage)")
    ] = "member",
    base_url: Annotated[
        str | None,
        typer.Option(help="The server's address [default: http://CREDITPOOL_HOST:CREDITPOOL_PORT]"),
    ] = None,
    by: By = None,
    as_json: JsonFlag = False,
) -> None:
    """A one-time sign-in link to the usage page for one user: it opens one browser
    session, within minutes (CREDITPOOL_PORTAL_LINK_TTL_S). Shown once."""
    from creditpool.settings import Settings

    settings = Settings()
    pool = open_pool(ctx)
    link = pool.portal_link(
        org_id, user_id, role=role, ttl_s=settings.portal_link_ttl_s, by=who(by)
    )
    base = (base_url or f"http://{settings.host}:{settings.port}").rstrip("/")
    url = f"{base}/portal/{link.token}"
    if as_json:
        render.emit_json({"url": url, "expires_at": link.expires_at.isoformat()})
        return
    render.line(f"sign-in link for {link.user_id} ({link.role.value} of {org_id}), shown once:")
    render.line(url)
    render.line(f"open it once, before {render.when(link.expires_at)}")


keys_app.command("create", epilog=roles.help_text())(create_key)
keys_app.command("list")(list_keys)
keys_app.command("revoke")(revoke_key)
