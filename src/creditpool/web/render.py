"""Jinja2 templates and the filters pages share: credits exactly, times in the org's zone."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from creditpool.http.security import session_claims

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"

env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html", "svg"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def credits(value: Decimal | str | None) -> str:
    """The exact decimal text with thousands grouped: "12345.50" -> "12,345.50". Never a
    float: the same string operations as ``groupCredits`` in live.js."""
    if value is None:
        return "—"
    text = str(value)
    sign = "-" if text.startswith("-") else ""
    whole, dot, frac = text.lstrip("-").partition(".")
    groups: list[str] = []
    while len(whole) > 3:
        groups.insert(0, whole[-3:])
        whole = whole[:-3]
    groups.insert(0, whole)
    return sign + ",".join(groups) + dot + frac


def percent(part: Decimal, whole: Decimal) -> int:
    """A bar's filled share, 0 to 100, whole percent (rounded down)."""
    if whole <= 0:
        return 0
    return max(0, min(100, int(part * 100 / whole)))


def local_time(value: datetime | None, zone: str, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if value is None:
        return "—"
    return value.astimezone(ZoneInfo(zone)).strftime(fmt)


def local_date(value: datetime | None, zone: str) -> str:
    return local_time(value, zone, "%Y-%m-%d")


def json_text(value: object) -> str:
    """Metadata as readable JSON text (indented, characters as they are): escaped by the
    template like any text."""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)


env.filters["credits"] = credits
env.filters["json_text"] = json_text
env.filters["local_time"] = local_time
env.filters["local_date"] = local_date
env.globals["percent"] = percent


def page(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render a page with the session (if any) and its CSRF token in the context."""
    claims = session_claims(request) if hasattr(request.app.state, "sessions") else None
    html = env.get_template(template).render(
        request=request, session=claims, csrf=claims.csrf if claims else "", **context
    )
    headers = {
        "Cache-Control": "no-store",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "same-origin",
        "Content-Security-Policy": (
            "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
            "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'"
        ),
    }
    return HTMLResponse(html, status_code=status_code, headers=headers)


def fragment(template: str, **context: Any) -> HTMLResponse:
    """Rows a live page fetches to replace its own (never cached: they change)."""
    html = env.get_template(template).render(**context)
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})
