"""The consumptions' POST is called directly (``http.routing.Direct``): its path and body are
validated with FastAPI's own fields and its endpoint awaited without FastAPI's dependency
solving. These tests hold it to the same answers as FastAPI's handler, to the same rate
limit, and to taking the direct way only where it says it does."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import fastapi.routing
import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts

from creditpool import CreditPool
from creditpool.http import ratelimit
from creditpool.http.routing import Direct
from creditpool.server.app import create_app
from creditpool.settings import Settings

ORG = "acme"
PATH = f"/v1/orgs/{ORG}/consumptions"
BODY = {"feature": "chat", "user_id": "u-1", "requests": 2, "breakdown": {"calls": 3}}
# Different on every run, so left out of the comparison: instants and request ids.
VOLATILE = {"created_at", "at", "expires_at", "request_id", "instance"}


def _unused() -> None:
    """Overriding a dependency no route uses sends every request through FastAPI's own
    handler: the direct call steps aside while overrides are set."""


def _seeded(pool: CreditPool) -> dict[str, str]:
    """An organization with 10 credits and a feature at 0.5 a use; a key of each kind."""
    pool.create_org(ORG)
    pool.create_org("other")
    pool.set_feature("chat", cost="0.5")
    pool.set_feature("big", cost="50")
    pool.grant(ORG, "10")
    return {
        "service": pool.create_key("service", name="s")[1],
        "admin": pool.create_key("admin", org_id=ORG, name="a")[1],
        "member": pool.create_key("member", org_id=ORG, user_id="u-1", name="m")[1],
        "other": pool.create_key("admin", org_id="other", name="o")[1],
    }


def _app(pool: CreditPool, url: str, **settings: Any) -> FastAPI:
    return create_app(pool, Settings(database_url=url, webhook_worker=False, **settings))


class InProcess:
    """The app served in this process (its lifespan run), called through httpx."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test"
        )

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.loop.run_until_complete(self.client.post(path, **kwargs))

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.loop.run_until_complete(self.client.get(path, **kwargs))


@contextmanager
def serving(app: FastAPI) -> Iterator[InProcess]:
    served = InProcess(app)
    lifespan = app.router.lifespan_context(app)
    served.loop.run_until_complete(lifespan.__aenter__())
    try:
        yield served
    finally:
        served.loop.run_until_complete(lifespan.__aexit__(None, None, None))
        served.loop.run_until_complete(served.client.aclose())
        served.loop.close()


def _normalized(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _normalized(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_normalized(v) for v in value]
    return value


def _requests(secrets: dict[str, str]) -> list[tuple[str, str, dict[str, str], bytes]]:
    """(what, path, headers, body): charges, replays and every kind of refusal."""
    service = {"Authorization": f"Bearer {secrets['service']}"}
    as_json = {**service, "Content-Type": "application/json"}
    body = json.dumps(BODY).encode()
    key = {**as_json, "Idempotency-Key": "k-1"}

    def by(role: str) -> dict[str, str]:
        return {**as_json, "Authorization": f"Bearer {secrets[role]}"}

    def changed(**fields: Any) -> bytes:
        return json.dumps({**BODY, **fields}).encode()

    return [
        ("charge", PATH, key, body),
        ("replay", PATH, key, body),
        ("same key, other body", PATH, key, changed(requests=3)),
        ("no key", PATH, as_json, body),
        ("dry run", PATH, as_json, changed(dry_run=True)),
        ("too much", PATH, as_json, changed(feature="big")),
        ("unknown feature", PATH, as_json, changed(feature="nope")),
        ("admin key", PATH, by("admin"), body),
        ("member key", PATH, by("member"), body),
        ("other org", PATH, by("other"), body),
        ("no bearer", PATH, {"Content-Type": "application/json"}, body),
        ("bad bearer", PATH, {**as_json, "Authorization": "Bearer cpk_nope"}, body),
        ("bad key header", PATH, {**as_json, "Idempotency-Key": "a\x01b"}, body),
        ("unknown org", "/v1/orgs/nobody/consumptions", as_json, body),
        ("bad org id", "/v1/orgs/a%20b/consumptions", as_json, body),
        ("charset", PATH, {**service, "Content-Type": "application/json; charset=utf-8"}, body),
        ("text", PATH, {**service, "Content-Type": "text/plain"}, body),
        ("no content type", PATH, service, body),
        ("empty", PATH, as_json, b""),
        ("not JSON", PATH, as_json, b"{"),
        ("a name twice", PATH, as_json, b'{"feature": "chat", "feature": "x", "user_id": "u"}'),
        ("NaN", PATH, as_json, b'{"feature": "chat", "user_id": "u", "requests": NaN}'),
        ("a list", PATH, as_json, b"[]"),
        ("null", PATH, as_json, b"null"),
        ("unknown field", PATH, as_json, changed(colour="red")),
        ("missing field", PATH, as_json, json.dumps({"feature": "chat"}).encode()),
        ("negative", PATH, as_json, changed(requests=-1)),
    ]


def _answers(app: FastAPI, secrets: dict[str, str]) -> list[tuple[str, Any]]:
    answers: list[tuple[str, Any]] = []
    with serving(app) as client:
        for what, path, headers, body in _requests(secrets):
            response = client.post(path, headers=headers, content=body)
            try:
                document = _normalized(response.json())
            except ValueError:
                document = response.text
            shown = {
                name: response.headers.get(name)
                for name in (
                    "content-type",
                    "idempotent-replayed",
                    "www-authenticate",
                    "retry-after",
                )
            }
            answers.append((what, (response.status_code, shown, document)))
    return answers


def test_every_answer_is_the_one_fastapi_s_own_handler_gives(
    db_url: str, other_db_url: str
) -> None:
    with CreditPool.open(db_url) as pool:
        direct = _answers(_app(pool, db_url), _seeded(pool))
        left = pool.balance(ORG).left
    with CreditPool.open(other_db_url) as pool:
        app = _app(pool, other_db_url)
        app.dependency_overrides[_unused] = _unused  # FastAPI's handler for every request
        solved = _answers(app, _seeded(pool))
        assert pool.balance(ORG).left == left
    for (what, mine), (_, theirs) in zip(direct, solved, strict=True):
        assert mine == theirs, what
    status = {what: answer[0] for what, answer in direct}
    # Both sides of the comparison are covered: charges, replays and refusals of each kind.
    assert (status["charge"], status["replay"], status["charset"]) == (201, 201, 201)
    replayed = {what: answer[1]["idempotent-replayed"] for what, answer in direct}
    assert (replayed["charge"], replayed["replay"]) == (None, "true")
    assert status["dry run"] == 200
    assert (status["too much"], status["same key, other body"]) == (402, 409)
    assert (status["member key"], status["other org"], status["no bearer"]) == (403, 404, 401)
    assert status["not JSON"] == 422
    assert status["text"] == 422
    assert status["bad org id"] == 422
    assert left == Decimal("8.5")  # 0.5 for each: the charge, the one without a key, charset


def test_a_charge_skips_dependency_solving_and_a_refused_body_does_not(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    solved: list[str] = []
    solve = fastapi.routing.solve_dependencies

    async def counting(**kwargs: Any) -> Any:
        solved.append(kwargs["request"].url.path)
        return await solve(**kwargs)

    monkeypatch.setattr(fastapi.routing, "solve_dependencies", counting)
    with CreditPool.open(db_url) as pool:
        secrets = _seeded(pool)
        headers = {"Authorization": f"Bearer {secrets['service']}"}
        with serving(_app(pool, db_url)) as client:
            charged = client.post(PATH, headers=headers, json=BODY)
            assert charged.status_code == 201, charged.text
            assert solved == []
            refused = client.post(PATH, headers=headers, json={**BODY, "requests": -1})
            assert refused.status_code == 422
            assert solved == [PATH]
            assert client.get(f"/v1/orgs/{ORG}/balance", headers=headers).status_code == 200
            assert len(solved) == 2


def test_a_direct_charge_counts_against_the_key_s_rate_limit(db_url: str) -> None:
    with CreditPool.open(db_url) as pool:
        secrets = _seeded(pool)
        app = _app(pool, db_url, rate_limit="4/minute", rate_limit_burst=2)
        headers = {"Authorization": f"Bearer {secrets['service']}"}
        with serving(app) as client:
            for _ in range(2):
                assert client.post(PATH, headers=headers, json=BODY).status_code == 201
            over = client.post(PATH, headers=headers, json=BODY)
            assert over.status_code == 429
            assert over.json()["code"] == "rate_limited"
        assert pool.balance(ORG).left == Decimal("9")  # the refused one charged nothing


def test_only_the_consumptions_post_is_called_directly(tmp_path: Path) -> None:
    with CreditPool.open(f"sqlite:///{tmp_path / 'p.db'}") as pool:
        app = create_app(pool)
    direct = {}
    for context in iter_route_contexts(app.routes):
        if isinstance(context.original_route, APIRoute):
            found = Direct.of(context)
            if found is not None:
                direct[(context.path, *sorted(context.original_route.methods))] = found
    assert list(direct) == [(PATH.replace(ORG, "{org}"), "POST")]
    (consume,) = direct.values()
    # As included in the app: with the app's rate limit, awaited before the endpoint.
    assert consume.before == (ratelimit.rate_limited,)
    assert consume.caller_names == ("caller",)
    assert consume.request_name == "request"
