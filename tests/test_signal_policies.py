"""Signal policies: the momentum filter defers a trim then forces it at the hard cap; velocity
sets the fraction of the gap closed; the opportunistic preset; band-width calibration."""

from __future__ import annotations

import dataclasses
import tomllib

import numpy as np
import pandas as pd
import pytest

import optirebal as orb
from optirebal.errors import InputError
from optirebal.policy import Momentum, Velocity
from tests.test_backtest import household, prices


def momentum_portfolio(weight: float, momentum: float) -> orb.Portfolio:
    """Equity at ``weight`` of a 1,000 NAV, with a class momentum signal."""
    securities = pd.DataFrame({"security": ["EQ", "BD"], "price": [1.0, 1.0],
                               "asset_class": ["equity", "bonds"]})
    accounts = pd.DataFrame({"account": ["acct"], "type": ["tax_exempt"], "cash": [0.0]})
    lots = pd.DataFrame({"lot": ["eq", "bd"], "account": "acct", "security": ["EQ", "BD"],
                         "quantity": [1000 * weight, 1000 * (1 - weight)],
                         "cost_basis": [600.0, 400.0], "acquired": "2020-01-02"})
    signals = pd.DataFrame({"asset_class": ["equity", "bonds"], "momentum": [momentum, -0.02]})
    cov = pd.DataFrame([[0.04, 0.0], [0.0, 0.01]], index=["equity", "bonds"],
                       columns=["equity", "bonds"])
    return orb.Portfolio.from_frames(securities, accounts, lots, as_of="2024-01-31", risk=cov,
                                     signals=signals)


POLICY = orb.Policy(targets={"equity": 0.6, "bonds": 0.4}, mode="to_target",
                    trigger=orb.Band.absolute(0.05),
                    momentum=Momentum(signal="given", hard_cap={"equity": 0.75}))


def test_momentum_defers_a_winners_trim_with_a_reason() -> None:
    result = orb.solve(momentum_portfolio(0.70, momentum=0.12), POLICY)
    assert len(result.orders) == 0
    assert result.events["message"].str.contains("momentum: trim deferred").any()


def test_momentum_trims_when_the_signal_fades_or_at_the_hard_cap() -> None:
    faded = orb.solve(momentum_portfolio(0.70, momentum=-0.01), POLICY)
    capped = orb.solve(momentum_portfolio(0.78, momentum=0.12), POLICY)
    for result in (faded, capped):
        assert result.weights.loc["equity", "after"] == pytest.approx(0.6, abs=1e-7)


def test_momentum_in_a_backtest_lets_the_winner_run_until_the_cap() -> None:
    # equity climbs 6% a month: 12-1 momentum is positive once a year of data exists, so the
    # trims are deferred until equity passes its 75% cap
    market = prices(list(1.06 ** np.arange(30)), start="2022-01-31")
    portfolio = household(as_of="2022-01-31")
    pol = orb.Policy(targets={"equity": 0.6, "bonds": 0.4}, mode="to_target",
                     trigger=orb.Band.absolute(0.05), schedule=orb.Schedule(looks="monthly"),
                     momentum=Momentum(signal="12-1", hard_cap={"equity": 0.75}))
    result = orb.backtest(portfolio, pol, market)
    plain = orb.backtest(portfolio, dataclasses.replace(pol, momentum=None), market)
    deferred = result.events[result.events["message"].str.contains("trim deferred")]
    assert len(deferred) > 0
    # while momentum is unknown (first year) both trade alike; later the filter holds equity
    # above its 65% trigger edge but never above the 75% cap at a close after a look
    after_year = result.weights["equity"].iloc[13:]
    assert after_year.max() <= 0.75 * 1.06 / (0.75 * 1.06 + 0.25) + 1e-9
    assert (after_year > 0.65).any()
    assert result.summary()["avg_weight_equity"] > plain.summary()["avg_weight_equity"]


def test_velocity_ramp_sets_the_fraction_at_each_look() -> None:
    market = prices([1.0, 1.5, 1.5])
    vix = pd.DataFrame({"vix": [20.0, 35.0, 20.0]}, index=market.index)
    pol = orb.Policy(targets={"equity": 0.6, "bonds": 0.4}, mode="to_target",
                     schedule=orb.Schedule(looks="monthly"),
                     velocity=Velocity(indicator="vix", v_min=0.2, v_max=1.0, low=15, high=35))
    result = orb.backtest(household(), pol, orb.Market.from_prices(market, signals=vix))
    fractions = result.events.loc[result.events["kind"] == "velocity", "value"].to_numpy()
    # 20 on the ramp: 0.2 + 0.8 x 5 / 20 = 0.4; 35 and beyond: 1.0
    np.testing.assert_allclose(fractions, [0.4, 1.0, 0.4])
    assert result.weights["equity"].iloc[1] == pytest.approx(0.6, abs=1e-7)


def test_velocity_needs_its_indicator() -> None:
    pol = orb.Policy(targets={"equity": 0.6, "bonds": 0.4}, velocity=Velocity(indicator="vix"))
    with pytest.raises(InputError) as error:
        orb.backtest(household(), pol, prices([1.0, 1.1]))
    assert error.value.field == "velocity.indicator"


def test_opportunistic_preset_round_trips_through_toml() -> None:
    policy = orb.presets.opportunistic({"equity": 0.6, "bonds": 0.4})
    assert policy.schedule.looks == "2W-FRI"
    assert policy.trigger == orb.Band.relative(0.2) and policy.band == orb.Band.relative(0.1)
    assert orb.Policy.from_dict(tomllib.loads(policy.to_toml())["policy"]) == policy


def test_calibrate_traces_the_frontier_and_the_cube_root_width() -> None:
    from optirebal.bands import calibrate

    rng = np.random.default_rng(11)
    market = prices(list(np.exp(np.cumsum(rng.normal(0.005, 0.05, 48)))))
    pol = orb.Policy(targets={"equity": 0.6, "bonds": 0.4}, schedule=orb.Schedule(looks="monthly"))
    result = calibrate(household(spread_bps=5.0), pol, market, [0.01, 0.05, 0.2], processes=1,
                       progress=False)
    frontier = result.frontier
    # wider bands trade less and track worse
    assert frontier["turnover_per_year"].is_monotonic_decreasing
    assert frontier["tracking_error"].iloc[-1] > frontier["tracking_error"].iloc[0]
    theory = result.theory.loc["equity"]
    # the law, recomputed here: 5 bp, weight variance 0.6^2 0.4^2 (0.04 + 0.01), penalty 0.025
    variance = 0.04 + 0.01
    expected = (3 * 5e-4 * 0.36 * 0.16 * variance / (4 * 0.5 * variance)) ** (1 / 3)
    assert theory["optimal_half_width"] == pytest.approx(expected, rel=1e-9)
    assert "<h4>" in result._repr_html_()


@pytest.mark.slow
def test_band_backtest_converges_to_the_ergodic_statistics() -> None:
    """One risky security against a riskless one at 50/50, a no-trade band of +-2 points traded
    to its edge every day: over 40 years of seeded daily prices the mean squared deviation and
    the turnover match :func:`optirebal.bands.ergodic_stats` (the weight diffuses with variance
    ``0.5^2 0.5^2 sigma^2`` per year; a daily check moves the edges out by 0.5826 daily sds,
    Siegmund's correction, as in ``tests/test_bands.py``)."""
    from optirebal.bands import ergodic_stats

    sigma, b, years = 0.2, 0.02, 40
    days = pd.bdate_range("1960-01-01", periods=252 * years + 1)
    rng = np.random.default_rng(1926)
    # driftless log price: the weight has no drift at 50/50
    log_price = np.concatenate([[0.0], np.cumsum(rng.normal(0.0, sigma / np.sqrt(252),
                                                            len(days) - 1))])
    market = pd.DataFrame({"R": np.exp(log_price), "S": 1.0}, index=days)
    securities = pd.DataFrame({"security": ["R", "S"], "price": [1.0, 1.0],
                               "asset_class": ["risky", "safe"], "half_spread_bps": 0.01})
    accounts = pd.DataFrame({"account": ["a"], "type": ["tax_exempt"], "cash": [0.0]})
    lots = pd.DataFrame({"lot": ["r", "s"], "account": "a", "security": ["R", "S"],
                         "quantity": [5e5, 5e5], "cost_basis": [5e5, 5e5],
                         "acquired": "1959-12-31"})
    cov = pd.DataFrame([[sigma**2, 0.0], [0.0, 0.0]], index=["risky", "safe"],
                       columns=["risky", "safe"])
    portfolio = orb.Portfolio.from_frames(securities, accounts, lots, as_of=days[0].date(),
                                          risk=cov)
    policy = orb.Policy(targets={"risky": 0.5, "safe": 0.5}, band=orb.Band.absolute(b),
                        trigger=orb.Band.absolute(b), mode="to_band",
                        costs=orb.Costs(impact="none"), tax=orb.Tax(model="none"))
    result = orb.backtest(portfolio, policy, market)
    s2 = (0.5 * 0.5 * sigma) ** 2
    step = np.sqrt(s2 / 252)
    deviation = result.weights["risky"].to_numpy()[1:] - 0.5
    summary = result.summary()
    widened = ergodic_stats(b + 0.5826 * step, s2)
    exact = ergodic_stats(b, s2)
    assert np.abs(deviation).max() <= b + 1e-6
    # measured (seed 1926, 1,039 trade dates): 2.8% below the corrected second moment, turnover
    # 1.4% below s2 / (2b), which a daily check cannot exceed
    assert np.mean(deviation**2) == pytest.approx(widened.mean_squared_deviation, rel=0.04)
    assert 0.95 * exact.turnover < summary["turnover_per_year"] < exact.turnover
