"""US capital gain netting (IRC 1(h), 1211(b), 1212(b)): known answers, an oracle, properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from optirebal.errors import InputError
from optirebal.tax.netting import (
    REGIONS,
    TaxRates,
    exact_tax,
    linear_tax,
    region_affine,
    region_of,
)

# Rates of the published TaxMin example (REFERENCE_CASES "Netting with a short-term loss").
TAXMIN = TaxRates(short=0.5, long=0.3, ordinary=0.5)
# Rates for the derived cases: distinct values, so a term taxed at the wrong rate shows.
RATES = TaxRates(short=0.5, long=0.3, ordinary=0.4, offset=3000.0, loss_carry_value=0.1)


def test_published_netting_examples() -> None:
    both_gains = exact_tax(1159.0, 11476.0, TAXMIN)
    assert both_gains.tax == pytest.approx(4022.30, abs=1e-9)
    assert both_gains.region == 1
    short_loss = exact_tax(-1227.0, 1690.0, TAXMIN)
    assert short_loss.tax == pytest.approx(138.90, abs=1e-9)
    assert short_loss.region == 2
    assert short_loss.taxed_long == pytest.approx(463.0)
    assert short_loss.taxed_short == 0.0
    # The per-lot linear model gets this case wrong, which is why reports use exact netting.
    assert linear_tax([-1227.0, 1690.0], [False, True], TAXMIN).sum() == pytest.approx(-106.50)


# Cases derived from the statute, by hand (see docs/tax.md, "Netting"): rates 50% short, 30% long,
# 40% ordinary, offset 3,000, carryover worth 0.10 per unit.
# (S, L, region, tax, taxed_short, taxed_long, offset_used, carry_short, carry_long)
DERIVED = [
    # 1222(11): long-term loss nets against short-term gain, the rest is short-term: 0.5 * 3000
    (5000.0, -2000.0, 3, 1500.0, 3000.0, 0.0, 0.0, 0.0, 0.0),
    # short-term loss nets against long-term gain, the rest is net capital gain: 0.3 * 500
    (-4500.0, 5000.0, 2, 150.0, 0.0, 500.0, 0.0, 0.0, 0.0),
    # both negative, within the offset: the whole 2,500 offsets ordinary income at 40%
    (-1000.0, -1500.0, 4, -1000.0, 0.0, 0.0, 2500.0, 0.0, 0.0),
    # exactly the offset: -0.4 * 3000, nothing carried
    (-3000.0, 0.0, 4, -1200.0, 0.0, 0.0, 3000.0, 0.0, 0.0),
    # both negative beyond the offset: 1212(b)(2) treats the 3,000 offset as short-term gain, so
    # the short-term loss absorbs it first: 5,000 - 3,000 short and all 2,000 long carry over
    (-5000.0, -2000.0, 5, -1600.0, 0.0, 0.0, 3000.0, 2000.0, 2000.0),
    # short-term loss smaller than the offset: it is used up, 3,000 of the long-term loss remains
    (-1000.0, -5000.0, 5, -1500.0, 0.0, 0.0, 3000.0, 0.0, 3000.0),
    # gain of one term, bigger loss of the other: 2,000 + 3,000 of the 8,000 long loss is used
    (2000.0, -8000.0, 5, -1500.0, 0.0, 0.0, 3000.0, 0.0, 3000.0),
    (-8000.0, 2000.0, 5, -1500.0, 0.0, 0.0, 3000.0, 3000.0, 0.0),
    # net loss within the offset with a long-term gain: no carryover of either character
    (-4000.0, 2000.0, 4, -800.0, 0.0, 0.0, 2000.0, 0.0, 0.0),
    (0.0, 0.0, 1, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
]


@pytest.mark.parametrize(
    ("S", "L", "region", "tax", "t_short", "t_long", "offset", "c_short", "c_long"), DERIVED
)
def test_derived_netting_cases(
    S: float,
    L: float,
    region: int,
    tax: float,
    t_short: float,
    t_long: float,
    offset: float,
    c_short: float,
    c_long: float,
) -> None:
    out = exact_tax(S, L, RATES)
    assert out.region == region
    assert out.tax == pytest.approx(tax, abs=1e-9)
    assert (out.taxed_short, out.taxed_long) == pytest.approx((t_short, t_long))
    assert out.ordinary_offset_used == pytest.approx(offset)
    assert (out.carryover_short, out.carryover_long) == pytest.approx((c_short, c_long))
    assert (out.net_short, out.net_long) == (S, L)


def test_pub_550_capital_loss_carryover_example() -> None:
    # IRS Pub. 550, "Capital Losses": a joint return with a 7,000 capital loss and no other capital
    # transactions deducts 3,000 and carries 4,000 over; with a 2,000 loss, no carryover.
    rates = TaxRates.for_filing_status("married_joint", short=0.37, long=0.2, ordinary=0.22)
    out = exact_tax(-7000.0, 0.0, rates)
    assert out.ordinary_offset_used == 3000.0
    assert out.carryover_short == 4000.0
    assert out.tax == pytest.approx(-660.0)
    small = exact_tax(0.0, -2000.0, rates)
    assert (small.ordinary_offset_used, small.carryover_long) == (2000.0, 0.0)


def test_married_filing_separately_halves_the_offset() -> None:
    rates = TaxRates.for_filing_status("married_separate", short=0.5, long=0.3, ordinary=0.4)
    assert rates.offset == 1500.0
    out = exact_tax(-4000.0, 0.0, rates)
    assert out.ordinary_offset_used == 1500.0
    assert out.carryover_short == 2500.0
    assert out.region == 5
    assert exact_tax(-1500.0, 0.0, rates).region == 4


def test_vectorized_inputs_broadcast() -> None:
    S = np.array([c[0] for c in DERIVED])
    L = np.array([c[1] for c in DERIVED])
    out = exact_tax(S, L, RATES)
    np.testing.assert_allclose(out.tax, [c[3] for c in DERIVED], atol=1e-9)
    np.testing.assert_array_equal(out.region, [c[2] for c in DERIVED])
    np.testing.assert_array_equal(region_of(S, L, RATES.offset), [c[2] for c in DERIVED])
    grid = exact_tax(np.array([[-100.0], [100.0]]), np.array([-50.0, 50.0]), RATES)
    assert grid.tax.shape == (2, 2)


def test_bad_inputs_name_the_field() -> None:
    with pytest.raises(InputError, match="field 'short'"):
        TaxRates(short=37.0, long=0.2, ordinary=0.37)
    with pytest.raises(InputError, match="field 'offset'"):
        TaxRates(short=0.37, long=0.2, ordinary=0.37, offset=-1.0)
    with pytest.raises(InputError, match="field 'status'"):
        TaxRates.for_filing_status("joint", short=0.37, long=0.2, ordinary=0.37)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="field 'S'"):
        exact_tax(float("nan"), 0.0, RATES)
    with pytest.raises(InputError, match="field 'region'"):
        region_affine(6, RATES)
    with pytest.raises(InputError, match="field 'long_term'"):
        linear_tax([1.0], [1], RATES)


def test_rates_are_frozen_and_rebuild_from_repr() -> None:
    rates = RATES.replace(short=0.37)
    assert rates.short == 0.37 and RATES.short == 0.5
    assert eval(repr(rates)) == rates  # the repr is the constructor call
    with pytest.raises(AttributeError):
        rates.short = 0.1  # type: ignore[misc]


def worksheet(S: float, L: float, rates: TaxRates) -> tuple[float, float, float, float]:
    """Oracle written from the Schedule D instructions, line by line, not from the module.

    Returns tax, offset used, short carryover, long carryover. Taxable income is taken as large.
    """
    if S + L > 0:  # Schedule D line 16 is a gain
        if S >= 0 and L >= 0:
            return rates.short * S + rates.long * L, 0.0, 0.0, 0.0
        if S < 0:  # line 15 (long) is a gain, line 7 (short) a loss: net capital gain is S + L
            return rates.long * (S + L), 0.0, 0.0, 0.0
        return rates.short * (S + L), 0.0, 0.0, 0.0  # the whole gain is short-term
    deduction = min(-(S + L), rates.offset)  # line 21
    # Capital Loss Carryover Worksheet, lines 4 to 13, with line 1 (taxable income) large.
    line4 = deduction
    line5, line6 = max(-S, 0.0), max(L, 0.0)
    carry_short = max(line5 - (line4 + line6), 0.0)
    line9, line10 = max(-L, 0.0), max(S, 0.0)
    line11 = max(line4 - line5, 0.0)
    carry_long = max(line9 - (line10 + line11), 0.0)
    tax = -rates.ordinary * deduction - rates.loss_carry_value * (carry_short + carry_long)
    return tax, deduction, carry_short, carry_long


amounts = st.floats(min_value=-50_000, max_value=50_000, allow_nan=False).map(lambda x: round(x, 2))
fractions = st.floats(min_value=0.0, max_value=1.0)


@st.composite
def tax_rates(draw: st.DrawFn) -> TaxRates:
    return TaxRates(
        short=draw(fractions),
        long=draw(fractions),
        ordinary=draw(fractions),
        offset=draw(st.sampled_from([3000.0, 1500.0, 0.0, 10_000.0])),
        loss_carry_value=draw(fractions),
    )


@given(amounts, amounts, tax_rates())
def test_matches_the_schedule_d_worksheet(S: float, L: float, rates: TaxRates) -> None:
    out = exact_tax(S, L, rates)
    tax, offset, carry_short, carry_long = worksheet(S, L, rates)
    assert out.tax == pytest.approx(tax, abs=1e-6)
    assert out.ordinary_offset_used == pytest.approx(offset, abs=1e-6)
    assert out.carryover_short == pytest.approx(carry_short, abs=1e-6)
    assert out.carryover_long == pytest.approx(carry_long, abs=1e-6)


@given(amounts, amounts, tax_rates())
def test_region_formulas_agree_wherever_they_apply(S: float, L: float, rates: TaxRates) -> None:
    out = exact_tax(S, L, rates)
    D = rates.offset
    # every region whose inequalities hold (boundaries included) gives the same tax: continuity
    holding = [
        r for r, rows in REGIONS.items() if all(a * S + b * L + c * D >= -1e-9 for a, b, c in rows)
    ]
    assert out.region in holding
    for r in holding:
        c_s, c_l, c_0 = region_affine(r, rates)
        assert c_s * S + c_l * L + c_0 == pytest.approx(out.tax, abs=1e-6)


@given(amounts, amounts, tax_rates())
def test_amounts_add_up(S: float, L: float, rates: TaxRates) -> None:
    out = exact_tax(S, L, rates)
    assert out.taxed_short + out.taxed_long == pytest.approx(max(S + L, 0.0), abs=1e-6)
    used_or_carried = out.ordinary_offset_used + out.carryover_short + out.carryover_long
    assert used_or_carried == pytest.approx(max(-(S + L), 0.0), abs=1e-6)
    assert out.ordinary_offset_used <= rates.offset
    # character is kept: a carryover never exceeds the loss of its own term
    assert out.carryover_short <= max(-S, 0.0) + 1e-9
    assert out.carryover_long <= max(-L, 0.0) + 1e-9
    assert out.taxed_short <= max(S, 0.0) + 1e-9


@given(amounts, amounts, st.floats(min_value=0, max_value=5000), tax_rates())
def test_more_gain_never_lowers_tax(S: float, L: float, extra: float, rates: TaxRates) -> None:
    base = exact_tax(S, L, rates).tax
    assert exact_tax(S + extra, L, rates).tax >= base - 1e-6
    assert exact_tax(S, L + extra, rates).tax >= base - 1e-6


@given(
    st.lists(st.tuples(st.floats(min_value=0, max_value=1e5), st.booleans()), max_size=20),
    tax_rates(),
)
def test_linear_equals_exact_when_every_lot_gains(
    lots: list[tuple[float, bool]], rates: TaxRates
) -> None:
    gains = np.array([g for g, _ in lots], dtype=float)
    long_term = np.array([t for _, t in lots], dtype=bool)
    S, L = gains[~long_term].sum(), gains[long_term].sum()
    assert linear_tax(gains, long_term, rates).sum() == pytest.approx(
        exact_tax(S, L, rates).tax, rel=1e-9, abs=1e-6
    )
