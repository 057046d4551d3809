"""Tests of optirebal.execution: known answers, invariants, bad input, solver fallback."""

from __future__ import annotations

import math
import re

import matplotlib
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optirebal.errors import InfeasibleError, InputError, SolverError
from optirebal.execution import (
    AlmgrenThumImpact,
    LinearImpact,
    PowerImpact,
    Schedule,
    _program,
    frontier,
    plot_frontier,
    schedule,
)
from optirebal.execution._inputs import prepare
from optirebal.execution._rounding import child_shares
from optirebal.program.conic import POW, Builder, ConicProgram
from optirebal.program.solvers import solve_conic
from optirebal.risk import RiskModel

matplotlib.use("Agg")

DAYS = 252.0


def make_market(**columns: list[float]) -> pd.DataFrame:
    """Market frame for securities A, B, C... with defaults for missing columns."""
    n = len(next(iter(columns.values()))) if columns else 1
    base = {"price": [50.0] * n, "daily_volatility": [0.02] * n, "daily_volume": [1e6] * n}
    base.update(columns)
    return pd.DataFrame(base, index=[chr(ord("A") + i) for i in range(n)])


def make_orders(*shares: float) -> pd.DataFrame:
    return pd.DataFrame(
        {"security": [chr(ord("A") + i) for i in range(len(shares))], "shares": list(shares)}
    )


def sinh_holdings(
    shares: float, lam: float, sigma: float, eta_tilde: float, horizon: float, intervals: int
) -> np.ndarray:
    """Almgren-Chriss (2000) discrete optimum: holdings x_k after interval k = 1..N."""
    tau = horizon / intervals
    t = tau * np.arange(1, intervals + 1)
    if lam == 0:
        return shares * (horizon - t) / horizon
    kappa_tilde2 = lam * sigma**2 / eta_tilde
    kappa = math.acosh(1.0 + kappa_tilde2 * tau**2 / 2.0) / tau
    return shares * np.sinh(kappa * (horizon - t)) / math.sinh(kappa * horizon)


def remaining_of(result: Schedule, security: str) -> np.ndarray:
    rows = result.child_orders[result.child_orders["security"] == security]
    return rows["remaining"].to_numpy(dtype=float)


def shares_of(result: Schedule, security: str) -> np.ndarray:
    rows = result.child_orders[result.child_orders["security"] == security]
    return rows["shares"].to_numpy(dtype=float)


# Almgren-Chriss parameters of the closed-form tests: absolute eta_AC = eta * sigma P / V.
PRICE, VOL, VOLUME = 50.0, 0.02, 1e6
ETA, GAMMA = 0.3, 0.05
HORIZON, INTERVALS = 2.0, 10
SIGMA = VOL * PRICE
TAU = HORIZON / INTERVALS
ETA_TILDE = ETA * SIGMA / VOLUME - GAMMA * SIGMA / VOLUME * TAU / 2


# --- known answers ---------------------------------------------------------------------------


@pytest.mark.parametrize("lam", [0.0, 1e-7, 1e-6, 1e-5, 3e-5])
@pytest.mark.parametrize("shares", [100_000, -60_000])
def test_linear_impact_reproduces_the_sinh_trajectory(lam: float, shares: int) -> None:
    result = schedule(
        make_orders(shares),
        make_market(),
        risk_aversion=lam,
        horizon_days=HORIZON,
        intervals=INTERVALS,
        impact=LinearImpact(eta=ETA, gamma_permanent=GAMMA),
    )
    expected = sinh_holdings(shares, lam, SIGMA, ETA_TILDE, HORIZON, INTERVALS)
    np.testing.assert_allclose(remaining_of(result, "A"), expected, atol=1.0)
    assert result.solver == "CLARABEL" and result.status == "optimal" and result.gap < 1e-8


def test_linear_frontier_matches_closed_form_cost_and_variance() -> None:
    lams = [1e-7, 1e-6, 1e-5]
    shares = 100_000
    frame = frontier(
        make_orders(shares),
        make_market(),
        risk_aversions=lams,
        horizon_days=HORIZON,
        intervals=INTERVALS,
        impact=LinearImpact(eta=ETA, gamma_permanent=GAMMA),
    )
    gamma_ac = GAMMA * SIGMA / VOLUME
    for lam, row in zip(lams, frame.itertuples(), strict=True):
        kappa = math.acosh(1 + lam * SIGMA**2 / ETA_TILDE * TAU**2 / 2) / TAU
        kt, ktau = kappa * HORIZON, kappa * TAU
        # Almgren and Chriss (2000), the expectation and variance of the optimal strategy.
        cost = 0.5 * gamma_ac * shares**2 + ETA_TILDE * shares**2 * math.tanh(ktau / 2) * (
            TAU * math.sinh(2 * kt) + 2 * HORIZON * math.sinh(ktau)
        ) / (2 * TAU**2 * math.sinh(kt) ** 2)
        variance = (
            0.5
            * SIGMA**2
            * shares**2
            * (TAU * math.sinh(kt) * math.cosh(kappa * (HORIZON - TAU)) - HORIZON * math.sinh(ktau))
            / (math.sinh(kt) ** 2 * math.sinh(ktau))
        )
        assert row.expected_cost == pytest.approx(cost, rel=1e-6)
        assert row.variance == pytest.approx(variance, rel=1e-6)
        assert row.std == pytest.approx(math.sqrt(variance), rel=1e-6)


@pytest.mark.parametrize(
    "impact",
    [
        LinearImpact(eta=0.5, gamma_permanent=0.1),
        PowerImpact(),
        AlmgrenThumImpact(gamma_permanent=0.0),
    ],
)
def test_zero_risk_aversion_gives_even_slices(impact: object) -> None:
    result = schedule(
        make_orders(130_000, -26_000),
        make_market(price=[50.0, 20.0]),
        risk_aversion=0.0,
        intervals=13,
        impact=impact,
    )
    assert shares_of(result, "A").tolist() == [10_000] * 13
    assert shares_of(result, "B").tolist() == [-2_000] * 13


def test_power_impact_is_the_three_halves_cost_of_design_section_4() -> None:
    # REFERENCE_CASES: sigma 2%, trade $1,000,000, daily traded value $50,000,000: impact
    # 0.02 x (1e6)^1.5 / (5e7)^0.5 = $2,828.43 (the $250 of half-spread is not impact).
    market = make_market(price=[100.0], daily_volume=[500_000.0])
    one = schedule(
        make_orders(10_000), market, risk_aversion=0.0, intervals=1, impact=PowerImpact(eta=1.0)
    )
    assert one.expected_cost == pytest.approx(2828.43, abs=0.005)
    assert one.status == "trivial" and one.solver is None
    # The same order traded evenly over the day in four intervals costs the same.
    four = schedule(
        make_orders(10_000), market, risk_aversion=0.0, intervals=4, impact=PowerImpact(eta=1.0)
    )
    assert four.expected_cost == pytest.approx(2828.43, abs=0.005)
    # Doubling the trade: $8,500.00 in the reference case, of which $500 is half-spread.
    double = schedule(
        make_orders(20_000), market, risk_aversion=0.0, intervals=1, impact=PowerImpact(eta=1.0)
    )
    assert double.expected_cost == pytest.approx(8_000.00, abs=1e-6)


def test_almgren_thum_cost_of_an_even_schedule_is_the_published_formula() -> None:
    shares, volume, outstanding, horizon = 260_000.0, 2e6, 4e8, 0.5
    market = make_market(daily_volume=[volume], shares_outstanding=[outstanding])
    result = schedule(
        make_orders(shares),
        market,
        risk_aversion=0.0,
        horizon_days=horizon,
        intervals=13,
        impact=AlmgrenThumImpact(),
    )
    permanent = 0.314 * VOL * (shares / volume) * (outstanding / volume) ** 0.25
    temporary = 0.142 * VOL * (shares / (volume * horizon)) ** 0.6
    expected = (permanent / 2 + temporary) * PRICE * shares  # J = I/2 + temporary, per share
    assert result.expected_cost == pytest.approx(expected, rel=1e-9)
    assert result.costs.loc["A", "permanent_cost"] == pytest.approx(
        permanent / 2 * PRICE * shares, rel=1e-12
    )


def test_volume_profile_at_zero_risk_aversion_follows_the_volume() -> None:
    profile = np.array([0.2, 0.1, 0.1, 0.1, 0.2, 0.3])
    result = schedule(
        make_orders(100_000),
        make_market(),
        risk_aversion=0.0,
        intervals=6,
        volume_profile=profile,
        impact=AlmgrenThumImpact(gamma_permanent=0.0),
    )
    np.testing.assert_allclose(shares_of(result, "A"), 100_000 * profile / profile.sum(), atol=1.0)


def test_hedged_pair_trades_slower_and_matches_the_closed_form_with_residual_risk() -> None:
    # A buy and a sell of equal value in securities with correlation rho: by symmetry each follows
    # the one-asset optimum with variance sigma^2 (1 - rho).
    rho, lam, shares = 0.8, 1e-5, 100_000
    daily = np.array([[1.0, rho], [rho, 1.0]]) * VOL**2
    covariance = pd.DataFrame(daily * DAYS, index=["A", "B"], columns=["A", "B"])
    orders = make_orders(shares, -shares)
    market = make_market(price=[PRICE, PRICE])
    impact = LinearImpact(eta=ETA, gamma_permanent=GAMMA)
    kwargs = {
        "risk_aversion": lam,
        "horizon_days": HORIZON,
        "intervals": INTERVALS,
        "impact": impact,
    }
    hedged = schedule(orders, market, covariance=covariance, **kwargs)
    alone = schedule(orders, market, **kwargs)
    sigma_residual = SIGMA * math.sqrt(1 - rho)
    expected = sinh_holdings(shares, lam, sigma_residual, ETA_TILDE, HORIZON, INTERVALS)
    np.testing.assert_allclose(remaining_of(hedged, "A"), expected, atol=1.0)
    np.testing.assert_allclose(remaining_of(hedged, "B"), -expected, atol=1.0)
    assert remaining_of(hedged, "A")[0] > remaining_of(alone, "A")[0] + 1_000
    assert hedged.variance < alone.variance


def test_a_risk_model_gives_the_same_schedule_as_its_covariance() -> None:
    names = ["A", "B", "C"]
    loadings = pd.DataFrame([[0.2], [0.15], [-0.1]], index=names, columns=["mkt"])
    factor_cov = pd.DataFrame([[1.0]], index=["mkt"], columns=["mkt"])
    annual = VOL**2 * DAYS
    specific = pd.Series(annual - loadings["mkt"] ** 2, index=names)
    model = RiskModel.from_factors(loadings, factor_cov, specific)
    orders, market = make_orders(50_000, -30_000, 20_000), make_market(price=[50.0, 40.0, 30.0])
    kwargs = {"risk_aversion": 2e-6, "impact": PowerImpact(), "intervals": 8}
    by_model = schedule(orders, market, covariance=model, **kwargs)
    by_frame = schedule(orders, market, covariance=model.covariance(names), **kwargs)
    np.testing.assert_allclose(
        by_model.child_orders["shares"], by_frame.child_orders["shares"], atol=1.0
    )
    assert by_model.variance == pytest.approx(by_frame.variance, rel=1e-5)


# --- invariants and shapes ---------------------------------------------------------------------


def test_participation_cap_holds_and_binds_a_front_loaded_schedule() -> None:
    cap, volume = 0.1, 1e6
    market = make_market(daily_volume=[volume])
    per_interval = math.floor(cap * volume / 13)  # 7,692 shares
    result = schedule(
        make_orders(-90_000),
        market,
        risk_aversion=1e-4,
        intervals=13,
        participation_cap=cap,
        impact=PowerImpact(),
    )
    shares = shares_of(result, "A")
    assert np.all(np.abs(shares) <= per_interval)
    assert shares.sum() == -90_000
    assert shares[0] == -per_interval  # the cap binds where risk aversion front-loads
    uncapped = schedule(
        make_orders(-90_000), market, risk_aversion=1e-4, intervals=13, impact=PowerImpact()
    )
    assert abs(shares_of(uncapped, "A")[0]) > per_interval


def test_buys_and_sells_are_mirror_images() -> None:
    market = make_market(price=[50.0, 80.0])
    buy = schedule(make_orders(70_000, 15_000), market, risk_aversion=1e-6)
    sell = schedule(make_orders(-70_000, -15_000), market, risk_aversion=1e-6)
    np.testing.assert_array_equal(buy.child_orders["shares"], -sell.child_orders["shares"])
    np.testing.assert_array_equal(buy.child_orders["remaining"], -sell.child_orders["remaining"])
    assert buy.expected_cost == pytest.approx(sell.expected_cost, rel=1e-9)


def test_zero_order_gets_zero_child_orders() -> None:
    market = make_market(price=[50.0, 60.0, 70.0])
    result = schedule(make_orders(40_000, 0, -10_000), market, risk_aversion=1e-6, intervals=5)
    assert result.child_orders["security"].tolist() == ["A"] * 5 + ["B"] * 5 + ["C"] * 5
    assert shares_of(result, "B").tolist() == [0] * 5
    assert remaining_of(result, "B").tolist() == [0] * 5
    assert result.costs.loc["B", "expected_cost"] == 0.0
    nothing = schedule(make_orders(0, 0), market, risk_aversion=1e-6, intervals=5)
    assert nothing.expected_cost == 0.0 and nothing.variance == 0.0
    assert nothing.status == "trivial" and (nothing.child_orders["shares"] == 0).all()


def test_child_order_frame_layout_and_types() -> None:
    result = schedule(
        make_orders(40_000, -10_000),
        make_market(price=[10.0, 20.0]),
        risk_aversion=1e-6,
        intervals=4,
    )
    frame = result.child_orders
    assert list(frame.columns) == ["security", "interval", "shares", "remaining"]
    assert frame["interval"].tolist() == [0, 1, 2, 3] * 2
    assert str(frame["shares"].dtype) == "int64" and str(frame["remaining"].dtype) == "int64"
    assert (frame.groupby("security", sort=False)["shares"].sum() == [40_000, -10_000]).all()
    assert remaining_of(result, "A")[-1] == 0
    assert list(result.costs.columns) == [
        "shares",
        "value",
        "temporary_cost",
        "permanent_cost",
        "expected_cost",
        "cost_bps",
    ]
    assert result.costs.index.name == "security"
    assert result.expected_cost == pytest.approx(result.costs["expected_cost"].sum())
    assert result.costs.loc["A", "cost_bps"] == pytest.approx(
        result.costs.loc["A", "expected_cost"] / 400_000 * 1e4
    )
    assert result.std == pytest.approx(math.sqrt(result.variance))
    assert "expected_cost=" in repr(result)


def test_orders_of_several_accounts_and_a_result_object_are_summed() -> None:
    class FakeResult:
        orders = pd.DataFrame(
            {
                "account": ["ira", "taxable", "ira"],
                "security": ["B", "A", "A"],
                "shares": [5_000.0, 33_000.3, 6_999.7],
                "value": [0.0, 0.0, 0.0],
                "reason": ["", "", ""],
            }
        )

    result = schedule(
        FakeResult(), make_market(price=[50.0, 60.0]), risk_aversion=1e-6, intervals=4
    )
    assert result.costs["shares"].to_dict() == {"B": 5_000, "A": 40_000}
    assert str(result.child_orders["shares"].dtype) == "int64"


def test_fractional_parent_order_is_exact_with_one_fractional_child() -> None:
    result = schedule(
        make_orders(1_000.25),
        make_market(),
        risk_aversion=1e-6,
        intervals=4,
        participation_cap=0.01,
    )
    shares = shares_of(result, "A")
    assert shares.sum() == pytest.approx(1_000.25, abs=1e-12)
    assert np.sum(shares != np.round(shares)) == 1
    assert np.all(np.abs(shares) <= math.floor(0.01 * 1e6 / 4))
    assert remaining_of(result, "A")[-1] == 0.0


def test_inputs_are_not_mutated() -> None:
    orders, market = make_orders(40_000, -5_000), make_market(price=[10.0, 20.0])
    covariance = pd.DataFrame(np.diag([VOL**2 * DAYS] * 2), index=["A", "B"], columns=["A", "B"])
    copies = (orders.copy(), market.copy(), covariance.copy())
    schedule(orders, market, risk_aversion=1e-6, covariance=covariance, intervals=3)
    frontier(orders, market, risk_aversions=[0.0, 1e-6], covariance=covariance, intervals=3)
    for before, after in zip(copies, (orders, market, covariance), strict=True):
        pd.testing.assert_frame_equal(before, after)


@settings(max_examples=20, deadline=None)
@given(
    shares=st.lists(st.integers(-200_000, 200_000), min_size=1, max_size=3),
    intervals=st.integers(2, 6),
    lam=st.sampled_from([0.0, 1e-7, 1e-5]),
    capped=st.booleans(),
    model=st.sampled_from(["linear", "power", "athl"]),
)
def test_schedules_keep_totals_sides_and_caps(
    shares: list[int], intervals: int, lam: float, capped: bool, model: str
) -> None:
    n = len(shares)
    market = make_market(
        price=list(np.linspace(20.0, 80.0, n)), daily_volume=list(np.linspace(5e5, 2e6, n))
    )
    volume = market["daily_volume"].to_numpy()
    # A cap that the largest order (against its volume) needs, with room to spare.
    need = max(abs(s) / v for s, v in zip(shares, volume, strict=True))
    cap = max(1.5 * need, 0.01) if capped else None
    impact = {
        "linear": LinearImpact(eta=0.5, gamma_permanent=0.1),
        "power": PowerImpact(),
        "athl": AlmgrenThumImpact(gamma_permanent=0.0),
    }[model]
    result = schedule(
        make_orders(*shares),
        market,
        risk_aversion=lam,
        intervals=intervals,
        participation_cap=cap,
        impact=impact,
    )
    for i, total in enumerate(shares):
        security = chr(ord("A") + i)
        child = shares_of(result, security)
        assert child.sum() == total
        assert np.all(child * np.sign(total) >= 0)
        left = remaining_of(result, security)
        np.testing.assert_array_equal(left, total - np.cumsum(child))
        if cap is not None:
            assert np.all(np.abs(child) <= np.floor(cap * volume[i] / intervals * (1 + 1e-12)))
    assert result.expected_cost >= 0 and result.variance >= 0


def test_wide_random_problems_are_all_solved_and_verified() -> None:
    # Orders from 0.01% to 50% of daily volume in one program (objective weights up to ten orders
    # of magnitude apart), risk aversions from 1e-9 to 1e-1, caps and covariances.
    rng = np.random.default_rng(11)
    solved = 0
    for trial in range(120):
        n, count = int(rng.integers(1, 30)), int(rng.integers(2, 20))
        names = [f"S{i}" for i in range(n)]
        vol = rng.uniform(0.005, 0.06, n)
        volume = np.round(np.exp(rng.uniform(np.log(1e4), np.log(5e7), n)))
        market = pd.DataFrame(
            {
                "price": np.exp(rng.uniform(0, 7, n)),
                "daily_volatility": vol,
                "daily_volume": volume,
            },
            index=names,
        )
        shares = np.round(
            rng.choice([-1, 1], n) * volume * np.exp(rng.uniform(np.log(1e-4), np.log(0.5), n))
        )
        annual, systematic = vol**2 * DAYS, rng.uniform(0.1, 0.9, n)
        risk = RiskModel.from_factors(
            pd.DataFrame({"m": np.sqrt(systematic * annual)}, index=names),
            pd.DataFrame([[1.0]], index=["m"], columns=["m"]),
            pd.Series(annual * (1 - systematic), index=names),
        )
        impact = [AlmgrenThumImpact(gamma_permanent=0), PowerImpact(), LinearImpact(0.5, 0.1)][
            trial % 3
        ]
        cap = None if rng.random() < 0.4 else float(rng.uniform(0.05, 0.5))
        try:
            result = schedule(
                pd.DataFrame({"security": names, "shares": shares}),
                market,
                risk_aversion=float(10 ** rng.uniform(-9, -1)),
                horizon_days=float(rng.choice([0.25, 1.0, 3.0])),
                intervals=count,
                impact=impact,
                participation_cap=cap,
                covariance=risk if rng.random() < 0.7 else None,
            )
        except InfeasibleError:
            continue
        assert result.status in ("optimal", "certified") and result.gap <= 1e-7
        solved += 1
    assert solved >= 80


# --- frontier ----------------------------------------------------------------------------------


def frontier_case() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    names = ["A", "B", "C"]
    corr = np.array([[1.0, 0.5, 0.3], [0.5, 1.0, 0.4], [0.3, 0.4, 1.0]])
    vols = np.array([0.02, 0.015, 0.03])
    covariance = pd.DataFrame(corr * np.outer(vols, vols) * DAYS, index=names, columns=names)
    market = make_market(
        price=[50.0, 30.0, 80.0],
        daily_volatility=list(vols),
        daily_volume=[1e6, 2e6, 5e5],
        shares_outstanding=[2e8, 5e8, 1e8],
    )
    return make_orders(150_000, -200_000, 40_000), market, covariance


def test_frontier_is_monotone_and_convex() -> None:
    orders, market, covariance = frontier_case()
    frame = frontier(orders, market, covariance=covariance, participation_cap=0.3)
    assert list(frame.columns) == ["risk_aversion", "expected_cost", "variance", "std"]
    assert len(frame) == 13 and frame["risk_aversion"].iloc[0] == 0.0
    cost, variance = frame["expected_cost"].to_numpy(), frame["variance"].to_numpy()
    tol = 1e-7 * cost.max()
    assert np.all(np.diff(cost) >= -tol)  # more risk aversion costs more ...
    assert np.all(np.diff(variance) <= 1e-7 * variance.max())  # ... and risks less
    assert cost[-1] > 1.5 * cost[0] and variance[-1] < 0.5 * variance[0]
    for x in (variance, np.sqrt(variance)):  # convex against variance and against std
        order = np.argsort(x)
        xs, ys = x[order], cost[order]
        for j in range(1, len(xs) - 1):
            chord = ys[j - 1] + (ys[j + 1] - ys[j - 1]) * (xs[j] - xs[j - 1]) / (
                xs[j + 1] - xs[j - 1]
            )
            assert ys[j] <= chord + tol


def test_frontier_points_equal_schedules_up_to_rounding() -> None:
    orders, market, covariance = frontier_case()
    frame = frontier(orders, market, risk_aversions=[3e-6], covariance=covariance)
    single = schedule(orders, market, risk_aversion=3e-6, covariance=covariance)
    assert single.expected_cost == pytest.approx(frame["expected_cost"].iloc[0], rel=1e-4)
    assert single.variance == pytest.approx(frame["variance"].iloc[0], rel=1e-4)


def test_frontier_reuses_the_program_and_assembles_per_risk_aversion() -> None:
    orders, market, covariance = frontier_case()
    plan = prepare(
        orders,
        market,
        horizon_days=1.0,
        intervals=13,
        impact=AlmgrenThumImpact(),
        participation_cap=None,
        volume_profile=None,
        covariance=covariance,
        trading_days_per_year=DAYS,
    )
    programs = _program.Programs(plan)
    first = _program.solve(programs, 1e-6, ["CLARABEL"])
    (_, program), _ = programs.forms("CLARABEL")
    second = _program.solve(programs, 1e-5, ["CLARABEL"])
    assert programs.forms("CLARABEL")[0][1] is program
    assert np.abs(first.path - second.path).max() > 1e-3
    # Only the risk's squares depend on the risk aversion.
    low, high = program.conic(1e-6), program.conic(1e-5)
    assert (low.A != high.A).nnz == 0
    np.testing.assert_array_equal(low.b, high.b)
    np.testing.assert_array_equal(low.q, high.q)
    np.testing.assert_allclose(high.P.diagonal(), 10.0 * low.P.diagonal(), rtol=1e-12)


def test_plot_frontier_draws_cost_against_std() -> None:
    orders, market, covariance = frontier_case()
    frame = frontier(orders, market, risk_aversions=[0.0, 1e-6, 1e-5], covariance=covariance)
    ax = plot_frontier(frame, label="three orders")
    (line,) = ax.get_lines()
    np.testing.assert_allclose(line.get_xdata(), np.sort(frame["std"].to_numpy()))
    assert ax.get_legend() is not None
    with pytest.raises(InputError, match="std"):
        plot_frontier(frame.drop(columns="std"))


# --- the program against numpy, solvers, rounding ---------------------------------------------


def cone_violation(program: ConicProgram, x: np.ndarray) -> float:
    """Largest violation of ``b - A x`` in the cones of ``program``."""
    slack = program.b - program.A @ x
    worst, start, alphas = 0.0, 0, iter(program.powers)
    for kind, size in program.cones:
        s = slack[start : start + size]
        start += size
        if kind == "zero":
            worst = max(worst, float(np.abs(s).max()))
        elif kind == "nonneg":
            worst = max(worst, float(-s.min()))
        elif kind == "soc":
            worst = max(worst, float(np.linalg.norm(s[1:]) - s[0]))
        else:
            alpha = next(alphas)
            worst = max(worst, -s[0], -s[1], abs(s[2]) - s[0] ** alpha * s[1] ** (1 - alpha))
    return worst


@pytest.mark.parametrize("form", [_program.POWER_CONES, _program.SECOND_ORDER_CONES])
@pytest.mark.parametrize(
    "impact",
    [
        LinearImpact(eta=0.5, gamma_permanent=0.2),
        PowerImpact(),
        AlmgrenThumImpact(gamma_permanent=0.0),
        PowerImpact(exponent=0.55),
    ],
)
def test_numpy_objective_equals_the_conic_objective(impact: object, form: str) -> None:
    orders, market, covariance = frontier_case()
    plan = prepare(
        orders,
        market,
        horizon_days=1.0,
        intervals=6,
        impact=impact,
        participation_cap=0.3,
        volume_profile=None,
        covariance=covariance,
        trading_days_per_year=DAYS,
    )
    program = _program.build(plan, form=form)
    rng = np.random.default_rng(3)
    for lam in (0.0, 1e-6):
        conic = program.conic(lam)
        # Even slices moved at random, within the caps (at least 1/3 of each order here).
        noise = rng.uniform(-0.1, 0.1, size=(3, 6))
        traded = 1.0 / 6.0 + noise - noise.mean(axis=1, keepdims=True)
        path = np.hstack([np.ones((3, 1)), 1.0 - np.cumsum(traded, axis=1)])
        path[:, -1] = 0.0
        assert program.residual(path) == 0.0
        x = program.lift(conic, path)  # a point of the program at these fractions
        assert cone_violation(conic, x) <= 1e-12
        value = 0.5 * x @ (conic.P @ x) + conic.q @ x + conic.constant
        assert program.objective(path, lam) == pytest.approx(value, rel=1e-9)


@pytest.mark.parametrize("exponent", [0.5, 0.6, 0.25, 0.55])
def test_every_form_and_solver_gives_the_one_optimum(exponent: float) -> None:
    orders, market, covariance = frontier_case()
    plan = prepare(
        orders,
        market,
        horizon_days=1.0,
        intervals=8,
        impact=PowerImpact(exponent=exponent),
        participation_cap=0.3,
        volume_profile=None,
        covariance=covariance,
        trading_days_per_year=DAYS,
    )
    paths = []
    for form, solver in [
        (_program.POWER_CONES, "CLARABEL"),
        (_program.SECOND_ORDER_CONES, "CLARABEL"),
        (_program.SECOND_ORDER_CONES, "ECOS"),
    ]:
        path, status, _ = _program._attempt(_program.build(plan, form=form), solver, 3e-6)
        assert path is not None, status
        paths.append(path)
    # Polished, the answers of different forms and solvers agree far below a share.
    for path in paths[1:]:
        assert np.abs(path - paths[0]).max() <= 1e-10


def test_power_cones_go_to_clarabel_only() -> None:
    builder = Builder()
    t = builder.variable("t", 2)
    d = builder.variable("d", 2)
    builder.equal("d", d, np.array([0.5, -0.2]))
    builder.power_at_least("cone", t, d, 1.0 / 1.6)  # t >= |d|^1.6
    builder.minimize(t)
    program = builder.assemble()
    assert program.cones[-2:] == [(POW, 3), (POW, 3)] and program.powers == [0.625, 0.625]
    answer = solve_conic(program, "CLARABEL")
    assert answer.status == "optimal"
    np.testing.assert_allclose(answer.x[:2], [0.5**1.6, 0.2**1.6], rtol=1e-7)
    for solver in ("ECOS", "OSQP"):
        assert solve_conic(program, solver).status.startswith("skipped")


@pytest.mark.parametrize(
    "impact",
    [
        LinearImpact(eta=0.5, gamma_permanent=0.2),
        PowerImpact(),
        AlmgrenThumImpact(gamma_permanent=0.0),
    ],
)
def test_certificate_bounds_the_gap_to_the_optimum(impact: object) -> None:
    orders, market, covariance = frontier_case()
    plan = prepare(
        orders,
        market,
        horizon_days=1.0,
        intervals=6,
        impact=impact,
        participation_cap=0.3,
        volume_profile=None,
        covariance=covariance,
        trading_days_per_year=DAYS,
    )
    lam = 3e-6
    best = _program.solve(_program.Programs(plan), lam, ["CLARABEL"])
    program = _program.build(plan, form=_program.SECOND_ORDER_CONES)
    optimum = program.objective(best.path, lam)
    assert program.certificate(best.path, lam) <= 1e-7 * optimum
    rng = np.random.default_rng(5)
    checked = 0
    for _ in range(20):
        # A random feasible schedule: child fractions within the caps, summing to one.
        traded = rng.dirichlet(np.ones(6), size=3)
        traded = np.minimum(traded, program.cap)
        traded[:, -1] += 1.0 - traded.sum(axis=1)
        if np.any(traded[:, -1] > program.cap[:, -1]):
            continue
        path = np.hstack([np.ones((3, 1)), 1.0 - np.cumsum(traded, axis=1)])
        path[:, -1] = 0.0
        excess = program.objective(path, lam) - optimum
        assert excess > 0
        assert program.certificate(path, lam) >= excess * (1 - 1e-9)
        checked += 1
    assert checked >= 5


def test_solver_chain_falls_back_to_ecos(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(_program.SOLVER_OPTIONS, "CLARABEL", {"max_iter": 1})
    result = schedule(
        make_orders(50_000), make_market(), risk_aversion=1e-6, intervals=5, impact=PowerImpact()
    )
    assert result.solver == "ECOS"
    assert [name for name, _ in result.attempts] == [
        "CLARABEL, power cones",
        "CLARABEL, second-order cones",
        "ECOS",
    ]
    assert all("certified" not in status for _, status in result.attempts[:2])
    assert result.attempts[2][1].startswith("optimal, certified gap")
    reference = schedule(
        make_orders(50_000),
        make_market(),
        risk_aversion=1e-6,
        intervals=5,
        impact=PowerImpact(),
        solvers=["ECOS"],
    )
    np.testing.assert_array_equal(result.child_orders["shares"], reference.child_orders["shares"])


def test_no_verified_answer_raises_with_every_attempt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(_program.SOLVER_OPTIONS, "CLARABEL", {"max_iter": 1})
    monkeypatch.setitem(_program.SOLVER_OPTIONS, "ECOS", {"max_iters": 1})
    with pytest.raises(SolverError) as info:
        schedule(
            make_orders(50_000),
            make_market(),
            risk_aversion=1e-6,
            intervals=5,
            solvers=["CLARABEL", "ECOS", "NO_SUCH_SOLVER"],
        )
    assert [name for name, _ in info.value.attempts] == [
        "CLARABEL, power cones",
        "CLARABEL, second-order cones",
        "ECOS",
        "NO_SUCH_SOLVER",
    ]
    assert "not installed" in info.value.attempts[3][1]
    assert "NO_SUCH_SOLVER" in str(info.value)
    assert all("certified" not in status for _, status in info.value.attempts)


def test_rounding_keeps_caps_against_solver_noise_and_places_fractions() -> None:
    # The optimum sits on the cap of 2,500 shares in the first two intervals; noise pushes past.
    path = np.array([[1.0, 0.75 - 1e-6, 0.5 - 2e-6, 0.2, 0.0]])
    cap = np.full((1, 4), 2_500.0)
    shares = child_shares(path, np.array([-10_000.0]), cap)
    assert shares.sum() == -10_000 and np.all(np.abs(shares) <= 2_500)
    fractional = child_shares(np.array([[1.0, 0.5, 0.0]]), np.array([3.5]), None)
    assert fractional.sum() == 3.5 and sorted(fractional[0].tolist()) == [1.0, 2.5]


# --- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("daily_volume", -1e6, "'daily_volume', row 'A'"),
        ("daily_volatility", -0.02, "'daily_volatility', row 'A'"),
        ("price", float("nan"), "'price', row 'A'"),
        ("daily_volume", 0.0, "must be finite and > 0"),
        ("daily_volatility", float("inf"), "'daily_volatility', row 'A'"),
    ],
)
def test_bad_market_values_name_field_and_row(column: str, value: float, message: str) -> None:
    market = make_market()
    market.loc["A", column] = value
    with pytest.raises(InputError, match=re.escape(message)) as info:
        schedule(make_orders(1_000), market, risk_aversion=0.0)
    assert info.value.field == column and info.value.row == "A"


def test_negative_volume_of_a_zero_order_is_still_rejected() -> None:
    market = make_market(daily_volume=[1e6, -5.0])
    with pytest.raises(InputError, match="row 'B'"):
        schedule(make_orders(1_000, 0), market, risk_aversion=0.0)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"intervals": 0}, "intervals"),
        ({"intervals": 2.5}, "intervals"),
        ({"horizon_days": 0.0}, "horizon_days"),
        ({"risk_aversion": -1e-6}, "risk_aversion"),
        ({"risk_aversion": float("nan")}, "risk_aversion"),
        ({"participation_cap": 0.0}, "participation_cap"),
        ({"volume_profile": [0.5, 0.5]}, "volume_profile"),
        ({"intervals": 2, "volume_profile": [0.5, -0.5]}, "volume_profile"),
        ({"impact": "linear"}, "impact"),
        ({"solvers": "CLARABEL"}, "solvers"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs: dict[str, object], field: str) -> None:
    arguments: dict[str, object] = {"risk_aversion": 0.0, **kwargs}
    with pytest.raises(InputError) as info:
        schedule(make_orders(1_000), make_market(), **arguments)  # type: ignore[arg-type]
    assert info.value.field == field


def test_unknown_security_is_named() -> None:
    orders = pd.DataFrame({"security": ["A", "ZZZ"], "shares": [100, 200]})
    with pytest.raises(InputError, match=r"row 'ZZZ'.*not in market") as info:
        schedule(orders, make_market(), risk_aversion=0.0)
    assert info.value.field == "security"


def test_bad_orders_name_field_and_row() -> None:
    with pytest.raises(InputError, match="'shares'"):
        schedule(pd.DataFrame({"security": ["A"]}), make_market(), risk_aversion=0.0)
    bad = pd.DataFrame(
        {"security": ["A", "A"], "shares": [100.0, float("nan")]}, index=["o1", "o2"]
    )
    with pytest.raises(InputError, match="row 'o2'"):
        schedule(bad, make_market(), risk_aversion=0.0)
    with pytest.raises(InputError, match="orders"):
        schedule([("A", 100)], make_market(), risk_aversion=0.0)


def test_participation_cap_too_low_says_how_many_intervals_are_needed() -> None:
    # 1,000,000 shares at 10% of 1,000,000 a day in 13 intervals: 7,692 shares an interval at
    # most, so ceil(1e6 / 7692) = 131 intervals.
    with pytest.raises(InfeasibleError, match="needs at least 131 intervals") as info:
        schedule(
            make_orders(1_000_000),
            make_market(),
            risk_aversion=1e-6,
            intervals=13,
            participation_cap=0.1,
        )
    assert "participation cap 'A'" in info.value.conflicts
    assert "10.08 days" in str(info.value)


def test_non_convex_linear_model_is_rejected() -> None:
    # With one interval a day long, eta must exceed gamma / 2 (eta_tilde > 0).
    with pytest.raises(InputError, match="eta_tilde") as info:
        schedule(
            make_orders(10_000),
            make_market(),
            risk_aversion=1e-6,
            horizon_days=5,
            intervals=5,
            impact=LinearImpact(eta=0.142, gamma_permanent=0.314),
        )
    assert info.value.field == "impact.eta"


def test_impact_models_validate_their_coefficients() -> None:
    with pytest.raises(InputError, match=re.escape("impact.eta")):
        LinearImpact(eta=0.0)
    with pytest.raises(InputError, match=re.escape("impact.exponent")):
        PowerImpact(exponent=-0.5)
    with pytest.raises(InputError, match="shares_outstanding"):
        schedule(make_orders(10_000), make_market(), risk_aversion=0.0, impact=AlmgrenThumImpact())


def test_covariance_must_cover_the_orders_and_be_annualized() -> None:
    partial = pd.DataFrame([[VOL**2 * DAYS]], index=["A"], columns=["A"])
    with pytest.raises(InputError, match="row 'B'") as info:
        schedule(
            make_orders(1_000, 2_000),
            make_market(price=[1.0, 2.0]),
            risk_aversion=0.0,
            covariance=partial,
        )
    assert info.value.field == "covariance"
    daily = pd.DataFrame([[VOL**2]], index=["A"], columns=["A"])
    with pytest.raises(InputError, match="annualized"):
        schedule(make_orders(1_000), make_market(), risk_aversion=0.0, covariance=daily)
    not_psd = pd.DataFrame([[1.0, 2.0], [2.0, 1.0]], index=["A", "B"], columns=["A", "B"])
    with pytest.raises(InputError, match="positive semidefinite"):
        schedule(
            make_orders(1_000, 1_000),
            make_market(price=[1.0, 2.0]),
            risk_aversion=0.0,
            covariance=not_psd * VOL**2 * DAYS,
        )


def test_frontier_progress_bar_counts_the_points(capsys: pytest.CaptureFixture[str]) -> None:
    """``progress=True`` shows one tqdm bar over the risk aversions, on standard error."""
    orders, market = make_orders(50_000.0), make_market()
    quiet = frontier(orders, market, risk_aversions=[0.0, 1e-6, 1e-5])
    loud = frontier(orders, market, risk_aversions=[0.0, 1e-6, 1e-5], progress=True)
    pd.testing.assert_frame_equal(quiet, loud)
    err = capsys.readouterr().err
    assert "frontier" in err and "3/3" in err
