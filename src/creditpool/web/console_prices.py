"""Feature prices in the console: the price list, each feature's price history, and a
price change (reviewed, then confirmed) that applies from the instant it is made; past
consumptions keep the rate they were charged at."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from creditpool.features.models import Feature
from creditpool.http.deps import FeatureKey, Pool
from creditpool.http.security import Action, Principal
from creditpool.web import console_views as views
from creditpool.web.confirm import (
    Confirmation,
    Csrf,
    FormText,
    Nonce,
    Step,
    confirm_page,
    once,
    reviewed,
    staff_submitter,
    staff_viewer,
)
from creditpool.web.render import page

router = APIRouter(include_in_schema=False)


def price_text(cost: Decimal | None, unit_rate: Decimal | None, unit: str | None) -> str:
    if unit_rate is not None:
        return f"{unit_rate} per {unit or 'unit'}"
    return f"{cost} per use"


@router.get("/staff/features")
def features_list(request: Request, pool: Pool) -> Response:
    caller = staff_viewer(request, Action.FEATURES_READ)
    return page(request, "staff_features.html", caller=caller, features=pool.features())


def _price_form(feature: Feature) -> dict[str, str]:
    return {
        "name": feature.name,
        "kind": "per_unit" if feature.variable else "fixed",
        "cost": "" if feature.cost is None else str(feature.cost.normalize()),
        "unit_rate": "" if feature.unit_rate is None else str(feature.unit_rate.normalize()),
        "unit": feature.unit or "",
    }


def _feature_page(
    request: Request,
    pool: Pool,
    caller: Principal,
    key: str,
    before: int | None = None,
    status_code: int = 200,
    **extra: Any,
) -> Response:
    view = views.feature_page(pool.db, key, before)
    context: dict[str, Any] = {
        "form": _price_form(view.feature), "form_error": None, "saved": False,
    }  # fmt: skip
    context.update(extra)
    return page(
        request, "staff_feature.html", status_code=status_code, caller=caller, view=view,
        before=before, **context,
    )  # fmt: skip


@router.get("/staff/features/{key}")
def feature(
    key: FeatureKey,
    request: Request,
    pool: Pool,
    before: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    saved: Annotated[int | None, Query(ge=1, le=1)] = None,
) -> Response:
    caller = staff_viewer(request, Action.FEATURES_READ)
    return _feature_page(request, pool, caller, key, before, saved=bool(saved))


@router.post("/staff/features/{key}")
def change_price(
    key: FeatureKey,
    request: Request,
    pool: Pool,
    name: FormText = "",
    kind: FormText = "fixed",
    cost: FormText = "",
    unit_rate: FormText = "",
    unit: FormText = "",
    step: Step = "review",
    nonce: Nonce = "",
    csrf: Csrf = "",
) -> Response:
    """Review the new price (before and after), then set it from now on."""
    caller = staff_submitter(request, csrf, Action.FEATURES_WRITE)
    form = {"name": name, "kind": kind, "cost": cost, "unit_rate": unit_rate, "unit": unit}

    def again(status_code: int, error: str | None) -> Response:
        return _feature_page(request, pool, caller, key, None, status_code, form=form,
                             form_error=error)  # fmt: skip

    def check() -> tuple[Feature, views.NewPrice]:
        current = pool.feature(key)
        return current, views.parse_price(current, form)

    def save(checked: tuple[Feature, views.NewPrice]) -> None:
        args = checked[1].arguments()
        once(request, caller, None, "feature-price", nonce, {"key": key, **args},
             lambda: pool.set_feature(key, **args, changed_by=caller.key.name))  # fmt: skip

    return reviewed(
        step,
        again,
        check,
        lambda checked: confirm_page(request, caller, _price_confirmation(*checked, form)),
        save,
        lambda _: RedirectResponse(f"/staff/features/{key}?saved=1", status_code=303),
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
