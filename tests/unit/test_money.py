"""Money: exact parsing and formatting of credits, rates, quantities and variable costs."""

from __future__ import annotations

import contextlib
from decimal import ROUND_HALF_UP, Decimal, localcontext

import pytest
from hypothesis import given
from hypothesis import strategies as st

from creditpool.core.errors import InvalidAmount, InvalidInput
from creditpool.core.money import (
    MAX_CREDITS,
    MAX_QUANTITY,
    MAX_UNITS,
    RATE_UNIT,
    UNIT,
    cost_units,
    format_credits,
    format_units,
    parse_credits,
    parse_quantity,
    parse_rate,
    to_decimal,
)

# parse_credits: what is accepted


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1", 10_000),
        ("0.0001", 1),
        ("12.3456", 123_456),
        ("2.5", 25_000),
        (7, 70_000),
        (Decimal("2.5"), 25_000),
        (Decimal("0.0001"), 1),
    ],
)
def test_parse_credits_accepts_str_int_and_decimal_exactly(value: object, expected: int) -> None:
    assert parse_credits(value) == expected


@pytest.mark.parametrize("value", [" 1", "1 ", "\t2.5", "0.50\n", "\u00a01"])
def test_parse_credits_refuses_an_amount_with_spaces_around_it(value: str) -> None:
    with pytest.raises(InvalidAmount, match="spaces around it"):
        parse_credits(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1.0000", 10_000),
        ("1.00000", 10_000),
        ("1.50000", 15_000),
        (Decimal("1.500000000"), 15_000),
    ],
)
def test_parse_credits_accepts_trailing_zeros_past_four_digits_as_exact(
    value: object, expected: int
) -> None:
    assert parse_credits(value) == expected


def test_parse_credits_accepts_the_largest_amount_exactly() -> None:
    assert parse_credits(MAX_CREDITS) == MAX_UNITS
    assert parse_credits(f"{MAX_CREDITS}.0000") == MAX_UNITS


def test_parse_credits_accepts_zero_only_when_allowed() -> None:
    assert parse_credits("0", allow_zero=True) == 0
    assert parse_credits(0, allow_zero=True) == 0
    assert parse_credits("0.0000", allow_zero=True) == 0


# parse_credits: what is refused


@pytest.mark.parametrize("value", [1.5, 1.0, 0.1, float("nan"), float("inf")])
def test_parse_credits_refuses_a_float_even_a_round_one(value: float) -> None:
    with pytest.raises(InvalidAmount, match="float"):
        parse_credits(value)


@pytest.mark.parametrize("value", [True, False])
def test_parse_credits_refuses_a_bool(value: bool) -> None:
    with pytest.raises(InvalidAmount):
        parse_credits(value, allow_zero=True)


@pytest.mark.parametrize(
    "value", ["1.00001", "0.00001", Decimal("1.00001"), Decimal("1.5E-4"), "100.12345", "1.000050"]
)
def test_parse_credits_refuses_more_than_four_fractional_digits(value: object) -> None:
    with pytest.raises(InvalidAmount, match="more than 4 fractional digits"):
        parse_credits(value)


@pytest.mark.parametrize("value", ["1e3", "2.5E-3", "1_000", "+5", "\u0661\u0662", "1.", ".5"])
def test_parse_credits_refuses_text_that_is_not_a_plain_ascii_decimal(value: str) -> None:
    with pytest.raises(InvalidAmount, match="plain decimal number"):
        parse_credits(value)


@pytest.mark.parametrize("value", ["-1", -1, Decimal("-0.0001"), "-0.5"])
def test_parse_credits_refuses_a_negative_amount(value: object) -> None:
    with pytest.raises(InvalidAmount, match="more than zero"):
        parse_credits(value)


@pytest.mark.parametrize("value", ["-1", -1, Decimal("-0.0001")])
def test_parse_credits_refuses_a_negative_amount_even_when_zero_is_allowed(value: object) -> None:
    with pytest.raises(InvalidAmount, match="zero or more"):
        parse_credits(value, allow_zero=True)


@pytest.mark.parametrize("value", ["0", 0, "0.0000", Decimal(0), "-0"])
def test_parse_credits_refuses_zero_where_a_positive_amount_is_needed(value: object) -> None:
    with pytest.raises(InvalidAmount, match="more than zero"):
        parse_credits(value)


@pytest.mark.parametrize(
    "value",
    [
        "NaN",
        "nan",
        "sNaN",
        "-NaN",
        Decimal("NaN"),
        Decimal("sNaN"),
        "Infinity",
        "-Infinity",
        "inf",
        Decimal("Infinity"),
        Decimal("-Infinity"),
    ],
)
def test_parse_credits_refuses_nan_and_infinity(value: object) -> None:
    with pytest.raises(InvalidAmount, match="finite"):
        parse_credits(value)


@pytest.mark.parametrize("value", ["abc", "", "   ", "1,5", "1.2.3", "0x10", "1 000", "€5"])
def test_parse_credits_refuses_text_that_is_not_a_number(value: str) -> None:
    with pytest.raises(InvalidAmount, match="not a number"):
        parse_credits(value)


@pytest.mark.parametrize("value", [None, [1], {"a": 1}, b"1", object()])
def test_parse_credits_refuses_values_of_other_types(value: object) -> None:
    with pytest.raises(InvalidAmount, match="decimal string, an int or a Decimal"):
        parse_credits(value)


@pytest.mark.parametrize(
    "value",
    [
        MAX_CREDITS + 1,
        f"{MAX_CREDITS}.0001",
        "10000000000000",
        Decimal("1E+100"),
        10**30,
        -(10**13),
    ],
)
def test_parse_credits_refuses_absurdly_large_amounts(value: object) -> None:
    with pytest.raises(InvalidAmount, match="too large"):
        parse_credits(value)


def test_parse_credits_refuses_an_absurdly_long_text() -> None:
    with pytest.raises(InvalidAmount, match="not a number"):
        parse_credits("1." + "0" * 70)


def test_invalid_amount_is_an_input_error_with_a_stable_code_and_status() -> None:
    with pytest.raises(InvalidAmount) as caught:
        parse_credits("abc", field="monthly_limit")
    assert isinstance(caught.value, InvalidInput)
    assert caught.value.code == "invalid_amount"
    assert caught.value.status == 422
    assert "monthly_limit" in caught.value.detail


# formatting


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0, "0.00"),
        (1, "0.0001"),
        (10_000, "1.00"),
        (15_000, "1.50"),
        (12_345_678, "1234.5678"),
        (10_010, "1.001"),
        (-5, "-0.0005"),
        (-25_000, "-2.50"),
        (MAX_UNITS, f"{MAX_CREDITS}.00"),
    ],
)
def test_format_credits_writes_exact_text_with_at_least_two_digits(value: int, text: str) -> None:
    assert format_credits(value) == text
    assert str(to_decimal(value)) == text


def test_format_units_writes_rates_with_up_to_eight_fractional_digits() -> None:
    assert format_units(125_000, 8) == "0.00125"
    assert format_units(1, 8) == "0.00000001"
    assert format_units(RATE_UNIT, 8) == "1.00"


@given(st.integers(min_value=1, max_value=MAX_UNITS))
def test_parse_credits_reads_back_what_format_credits_wrote(u: int) -> None:
    assert parse_credits(format_credits(u)) == u
    assert parse_credits(to_decimal(u)) == u


@given(st.integers(min_value=0, max_value=MAX_UNITS))
def test_to_decimal_is_exactly_units_over_ten_thousand(u: int) -> None:
    assert to_decimal(u) * UNIT == u
    assert parse_credits(format_credits(u), allow_zero=True) == u


@given(st.integers(min_value=0, max_value=MAX_UNITS - 1), st.integers(min_value=1, max_value=9))
def test_parse_credits_refuses_any_amount_with_a_fifth_significant_digit(
    u: int, fifth: int
) -> None:
    whole, frac = divmod(u, UNIT)
    with pytest.raises(InvalidAmount, match="fractional digits"):
        parse_credits(f"{whole}.{frac:04d}{fifth}")


# variable costs


def _reference_cost(rate_text: str, quantity_text: str) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = 60
        product = Decimal(rate_text) * Decimal(quantity_text)
        return product.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)


@pytest.mark.parametrize(
    ("rate", "quantity", "cost"),
    [
        ("0.00125", "1", "0.0013"),  # half exactly: up (half-even would give 0.0012)
        ("0.00135", "1", "0.0014"),
        ("0.00124", "1", "0.0012"),
        ("0.00126", "1", "0.0013"),
        ("0.00005", "1", "0.0001"),  # half of the smallest unit: up
        ("0.00004999", "1", "0"),
        ("0.01", "37", "0.37"),
        ("0.0125", "3", "0.0375"),
        ("0.00333333", "3", "0.01"),
        ("0.5", "0.0001", "0.0001"),  # 0.00005 exactly: up
        ("0.49999999", "0.0001", "0"),
        ("1.00000001", "1000000", "1000000.01"),
    ],
)
def test_cost_units_rounds_rate_times_quantity_half_up_to_four_digits(
    rate: str, quantity: str, cost: str
) -> None:
    assert cost_units(parse_rate(rate), parse_quantity(quantity)) == units_of(cost)


def units_of(credits: str) -> int:
    return parse_credits(credits, allow_zero=True)


@given(
    st.integers(min_value=1, max_value=10**12),
    st.integers(min_value=1, max_value=MAX_QUANTITY * UNIT),
)
def test_cost_units_equals_decimal_half_up_rounding(rate: int, quantity: int) -> None:
    expected = _reference_cost(format_units(rate, 8), format_credits(quantity))
    assert cost_units(rate, quantity) == int(expected.scaleb(4))


def test_decimal_half_up_rounds_halves_up_to_four_digits() -> None:
    assert decimal_half_up(Decimal("0.00125")) == Decimal("0.0013")
    assert decimal_half_up(Decimal("0.00124")) == Decimal("0.0012")
    assert str(decimal_half_up(Decimal("2"))) == "2.0000"


# rates and quantities


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0.00000001", 1),
        ("0.00125", 125_000),
        ("0.01", 1_000_000),
        (Decimal("0.25"), 25_000_000),
        (2, 2 * RATE_UNIT),
        ("0.001250000", 125_000),
    ],
)
def test_parse_rate_accepts_up_to_eight_fractional_digits(value: object, expected: int) -> None:
    assert parse_rate(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0.000000001", "more than 8 fractional digits"),
        ("0", "more than zero"),
        ("-0.01", "more than zero"),
        (0.01, "float"),
        (True, "float"),
        ("NaN", "finite"),
        ("x", "not a number"),
        ("10000000000000", "too large"),
    ],
)
def test_parse_rate_refuses_inexact_nonpositive_or_absurd_rates(
    value: object, message: str
) -> None:
    with pytest.raises(InvalidAmount, match=message):
        parse_rate(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1", 10_000),
        ("2.5", 25_000),
        (250, 2_500_000),
        ("0.0001", 1),
        (MAX_QUANTITY, MAX_QUANTITY * UNIT),
    ],
)
def test_parse_quantity_accepts_up_to_four_fractional_digits(value: object, expected: int) -> None:
    assert parse_quantity(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0", "more than zero"),
        (-1, "more than zero"),
        ("0.00001", "more than 4 fractional digits"),
        (1.0, "float"),
        ("Infinity", "finite"),
        (MAX_QUANTITY + 1, "too large"),
        ("", "not a number"),
    ],
)
def test_parse_quantity_refuses_inexact_nonpositive_or_absurd_quantities(
    value: object, message: str
) -> None:
    with pytest.raises(InvalidAmount, match=message):
        parse_quantity(value)


_NUMBERISH = st.text(alphabet="0123456789.eE+- naNIfity", max_size=30) | st.from_regex(
    r"\A[+-]?\d{0,20}(\.\d{0,20})?([eE][+-]?\d{1,25})?\Z"
)
_DECIMALS = st.decimals(allow_nan=True, allow_infinity=True) | st.builds(
    lambda digits, exponent: Decimal((0, (1,) * digits, exponent)),
    st.integers(1, 60),
    st.integers(-(10**9), 10**9),
)


@given(_NUMBERISH | _DECIMALS)
def test_parse_credits_returns_the_exact_value_or_raises_invalid_amount_never_anything_else(
    value: str | Decimal,
) -> None:
    try:
        parsed = parse_credits(value)
    except InvalidAmount:
        return
    exact = Decimal(value) if isinstance(value, str) else value
    assert 0 < parsed <= MAX_UNITS
    assert Decimal(parsed).scaleb(-4) == exact


@given(_NUMBERISH | _DECIMALS)
def test_parse_rate_and_quantity_raise_only_invalid_amount(value: str | Decimal) -> None:
    for parse in (parse_rate, parse_quantity):
        with contextlib.suppress(InvalidAmount):
            assert parse(value) > 0


def decimal_half_up(value: Decimal) -> Decimal:
    """The reference: a Decimal rounded half-up to 4 digits."""
    return value.quantize(Decimal(1).scaleb(-4), rounding=ROUND_HALF_UP)
