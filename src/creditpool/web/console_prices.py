"""Feature prices in the console: the price list, each feature's price history, and a
price change (reviewed, then confirmed) that applies from the instant it is made; past
consumptions keep the rate they were charged at."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response

from creditpool.features.models import Feature
from creditpool.http.deps import FeatureKey
from creditpool.http.security import Action, Principal
from creditpool.web import console_views as views
from creditpool.web.confirm import Confirmation, Step, confirm_page, reviewed
from creditpool.web.forms import Posted, Visit, Visited, see_other, text_fields

router = APIRouter(include_in_schema=False)


def price_text(cost: Decimal | None, unit_rate: Decimal | None, unit: str | None) -> str:
    if unit_rate is not None:
        return f"{unit_rate} per {unit or 'unit'}"
    return f"{cost} per use"


@router.get("/staff/features")
def features_list(visit: Visited) -> Response:
    caller = visit.staff(Action.FEATURES_READ)
    return visit.page("staff_features.html", caller=caller, features=visit.pool.features())


def _price_form(feature: Feature) -> dict[str, str]:
    return {
        "name": feature.name,
        "kind": "per_unit" if feature.variable else "fixed",
        "cost": "" if feature.cost is None else str(feature.cost.normalize()),
        "unit_rate": "" if feature.unit_rate is None else str(feature.unit_rate.normalize()),
        "unit": feature.unit or "",
    }


def _feature_page(
    visit: Visit,
    caller: Principal,
    key: str,
    before: int | None = None,
    status_code: int = 200,
    **extra: Any,
) -> Response:
    view = views.feature_page(visit.pool.db, key, before)
    shown = {"form": _price_form(view.feature), "form_error": None, "saved": False} | extra
    return visit.page(
        "staff_feature.html", status_code, caller=caller, view=view, before=before, **shown
    )


@router.get("/staff/features/{key}")
def feature(
    key: FeatureKey,
    visit: Visited,
    before: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    saved: Annotated[int | None, Query(ge=1, le=1)] = None,
) -> Response:
    caller = visit.staff(Action.FEATURES_READ)
    return _feature_page(visit, caller, key, before, saved=bool(saved))


PriceFields = Annotated[
    dict[str, str], text_fields("name", "kind", "cost", "unit_rate", "unit", kind="fixed")
]


@router.post("/staff/features/{key}")
def change_price(
    key: FeatureKey, post: Posted, form: PriceFields, step: Step = "review"
) -> Response:
    """Review the new price (before and after), then set it from now on."""
    caller = post.staff(Action.FEATURES_WRITE)

    def again(status_code: int, error: str | None) -> Response:
        return _feature_page(post, caller, key, None, status_code, form=form, form_error=error)

    def check() -> tuple[Feature, views.NewPrice]:
        current = post.pool.feature(key)
        return current, views.parse_price(current, form)

    def save(checked: tuple[Feature, views.NewPrice]) -> None:
        args, by = checked[1].arguments(), caller.key.name
        post.once(caller, None, "feature-price", {"key": key, **args},
                  lambda: post.pool.set_feature(key, **args, changed_by=by))  # fmt: skip

    return reviewed(
        step,
        again,
        check,
        lambda checked: confirm_page(post, caller, _price_confirmation(*checked, form)),
        save,
        lambda _: see_other(f"/staff/features/{key}?saved=1"),
    )


def _price_confirmation(
    current: Feature, price: views.NewPrice, form: dict[str, str]
) -> Confirmation:
    before = price_text(current.cost, current.unit_rate, current.unit)
    after = price_text(
        None if price.cost is None else Decimal(price.cost),
        None if price.unit_rate is None else Decimal(price.unit_rate),
        price.unit,
    )
    facts = [("Price now", before), ("New price", after)]
    if price.name != current.name:
        facts.insert(0, ("Name", f"{current.name} → {price.name}"))
    return Confirmation(
        title=f"Change the price of {current.name}?",
        action=f"/staff/features/{current.key}",
        fields=form,
        facts=facts,
        warning=(
            "The new price applies to every use from the moment you confirm; consumptions "
            "before keep the price they were charged."
        ),
        submit="Save price",
        cancel=f"/staff/features/{current.key}",
        crumbs=[("/staff/features", "Features")],
    )
