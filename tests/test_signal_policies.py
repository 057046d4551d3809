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
