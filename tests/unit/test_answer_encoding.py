"""An answer to a change that committed is always produced, even if a text that cannot be
written as UTF-8 slipped past the input checks (defect: a charged request answered 500)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

from creditpool.consumptions.models import Consumption, ConsumptionStatus
from creditpool.http.replay import encode, json_response


def _consumption(metadata: dict[str, object]) -> Consumption:
    now = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
    fields = dict.fromkeys(Consumption.model_fields)
    fields.update(
        id=7,
        org_id="acme",
        feature="report",
        user_id="u-1",
        cost=Decimal("0.50"),
        created_at=now,
        status=ConsumptionStatus.PAID,
        metadata=metadata,
        allocations=(),
    )
    return Consumption.model_construct(**fields)


def test_an_answer_with_a_lone_surrogate_is_still_valid_json_with_the_text_escaped() -> None:
    answer = _consumption({"x": "\ud800", "ok": "é"})
    body = encode(answer)
    assert json.loads(body)["metadata"] == {"x": "\ud800", "ok": "é"}
    response = json_response(201, answer)
    assert response.status_code == 201
    body.encode("utf-8")  # what goes on the wire is writable


def test_an_ordinary_answer_is_pydantic_s_own_json() -> None:
    answer = _consumption({"ok": "é"})
    assert encode(answer) == answer.model_dump_json()
