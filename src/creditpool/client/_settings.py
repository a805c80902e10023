"""Headers every request of a client carries."""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version


def _user_agent() -> str:
    try:
        return f"creditpool-python/{version('creditpool')}"
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "creditpool-python"


USER_AGENT = _user_agent()


def client_headers(api_key: str | None, extra: Mapping[str, str] | None) -> dict[str, str]:
    headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
    if api_key is not None:
        headers["Authorization"] = f"Bearer {api_key}"
    headers.update(extra or {})
    return headers
