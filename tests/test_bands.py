"""Band widths of the cube-root law and the ergodic statistics of a band: known answers."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.optimize import minimize, minimize_scalar

from optirebal.bands import ErgodicStats, ergodic_stats, optimal_half_width
from optirebal.errors import InputError

CUBE_ROOT_2 = 2.0 ** (1.0 / 3.0)


def test_merton_half_width_by_hand() -> None:
    # c = 10 bp one way, so the GGMS spread is eps = 0.002; gamma = 2, pi* = 0.6:
    # 3/(4*2) = 0.375, pi^2 (1-pi)^2 = 0.36 * 0.16 = 0.0576, product * eps = 4.32e-5.
    b = optimal_half_width(cost=0.001, risk_aversion=2.0, target=0.6)
    assert b == pytest.approx(4.32e-5 ** (1.0 / 3.0), rel=1e-12)
    assert b == pytest.approx(0.0350882, abs=1e-7)


def test_merton_form_uses_the_ggms_spread_as_a_round_trip() -> None:
    # GGMS: bid (1 - eps) S, ask S. A one-way cost c is a round trip of 2c, so cost = eps / 2
    # must reproduce their leading-order width (3/(4 gamma) pi^2 (1-pi)^2 eps)^(1/3).
    for eps, gamma, pi in [(0.01, 5.0, 0.25), (0.001, 1.0, 0.5), (0.005, 3.0, 1.4)]:
        ggms = (3.0 / (4.0 * gamma) * pi**2 * (1.0 - pi) ** 2 * eps) ** (1.0 / 3.0)
        assert optimal_half_width(cost=eps / 2, risk_aversion=gamma,
                                  target=pi) == pytest.approx(ggms, rel=1e-12)


def test_tracking_half_width_by_hand() -> None:
    # b^3 = 3 * 0.002 * 0.01 / (4 * 0.05) = 3e-4.
    b = optimal_half_width(cost=0.002, drift_variance=0.01, penalty=0.05)
    assert b == pytest.approx(0.0669433, abs=1e-7)
    assert b**3 == pytest.approx(3e-4, rel=1e-12)


@pytest.mark.parametrize("sigma", [0.05, 0.16, 0.4])
def test_merton_is_tracking_with_weight_variance_and_utility_penalty(sigma: float) -> None:
    # The weight diffuses with variance sigma^2 pi^2 (1-pi)^2 and a deviation costs
    # gamma sigma^2 x^2 / 2: sigma cancels, so the Merton form needs no volatility.
    c, gamma, pi = 0.0015, 3.0, 0.7
    tracking = optimal_half_width(cost=c, drift_variance=sigma**2 * pi**2 * (1 - pi) ** 2,
                                  penalty=gamma * sigma**2 / 2)
    assert optimal_half_width(cost=c, risk_aversion=gamma,
                              target=pi) == pytest.approx(tracking, rel=1e-12)


def test_cube_root_scalings() -> None:
    merton = optimal_half_width(cost=0.002, risk_aversion=4.0, target=0.5)
    assert optimal_half_width(cost=0.001, risk_aversion=4.0,
                              target=0.5) == pytest.approx(merton / CUBE_ROOT_2, rel=1e-12)
    assert optimal_half_width(cost=0.002, risk_aversion=8.0,
                              target=0.5) == pytest.approx(merton / CUBE_ROOT_2, rel=1e-12)
    tracking = optimal_half_width(cost=0.002, drift_variance=0.01, penalty=0.05)
    assert optimal_half_width(cost=0.001, drift_variance=0.01,
                              penalty=0.05) == pytest.approx(tracking / CUBE_ROOT_2, rel=1e-12)
    assert optimal_half_width(cost=0.002, drift_variance=0.01,
                              penalty=0.1) == pytest.approx(tracking / CUBE_ROOT_2, rel=1e-12)
    assert optimal_half_width(cost=0.002, drift_variance=0.02,
                              penalty=0.05) == pytest.approx(tracking * CUBE_ROOT_2, rel=1e-12)


def test_no_band_without_cost_or_without_weight_drift() -> None:
    assert optimal_half_width(cost=0.0, risk_aversion=2.0, target=0.6) == 0.0
    assert optimal_half_width(cost=0.001, risk_aversion=2.0, target=0.0) == 0.0
    assert optimal_half_width(cost=0.001, risk_aversion=2.0, target=1.0) == 0.0
    assert optimal_half_width(cost=0.001, drift_variance=0.0, penalty=0.05) == 0.0
    # Leverage (pi* = 1.5) is allowed as in GGMS: pi^2 (1-pi)^2 = 2.25 * 0.25.
    levered = optimal_half_width(cost=0.001, risk_aversion=2.0, target=1.5)
    assert levered == pytest.approx((0.375 * 2.25 * 0.25 * 0.002) ** (1 / 3), rel=1e-12)


@pytest.mark.parametrize("sigma", [0.15, 0.4])
def test_merton_width_is_the_optimum_of_the_exact_log_utility_band(sigma: float) -> None:
    """Independent of GGMS: the growth-optimal band under the exact weight dynamics.

    A log-utility investor (gamma = 1, pi* = mu / sigma^2) who keeps the weight pi in [l, u]
    grows at the frictionless rate minus (sigma^2 / 2) E[(pi - pi*)^2] minus c times the weight
    traded per year (Taksar, Klass and Assaf 1988). Between trades dpi = pi (1 - pi) ((mu -
    sigma^2 pi) dt + sigma dW), whose stationary density on [l, u] is, by the scale-and-speed
    formula, proportional to pi^(2 pi* - 2) (1 - pi)^(-2 pi*); the weight traded per year at an
    edge is sigma^2 pi^2 (1 - pi)^2 p(edge) / 2. Maximizing over (l, u) numerically must give
    the Merton-form half-width with eps = 2c (eps = c would be 2^(1/3) = 26% wider), centred
    on pi*, for any sigma.
    """
    pi_star, c = 0.6, 1e-4

    def density(p: float) -> float:
        return p ** (2 * pi_star - 2) * (1 - p) ** (-2 * pi_star)

    def growth_lost(v: np.ndarray) -> float:
        lo, hi = v[0] - v[1], v[0] + v[1]
        mass = quad(density, lo, hi, epsabs=0, epsrel=1e-13)[0]
        second = quad(lambda p: (p - pi_star) ** 2 * density(p), lo, hi, epsabs=0,
                      epsrel=1e-13)[0] / mass
        traded = sum(sigma**2 * p**2 * (1 - p) ** 2 * density(p) / mass / 2 for p in (lo, hi))
        return sigma**2 / 2 * second + c * traded

    b = optimal_half_width(cost=c, risk_aversion=1.0, target=pi_star)
    found = minimize(growth_lost, np.array([pi_star, 0.8 * b]), method="Nelder-Mead",
                     options={"xatol": 1e-9, "fatol": 1e-18, "maxiter": 2000})
    assert found.success
    assert found.x[1] == pytest.approx(b, rel=0.005)
    assert abs(found.x[0] - pi_star) < 0.005 * b


def test_tracking_width_minimizes_long_run_cost_numerically() -> None:
    c, s2, lam = 0.003, 0.012, 0.08

    def cost_per_year(b: float) -> float:
        stats = ergodic_stats(b, s2, cost=c)
        return lam * stats.mean_squared_deviation + stats.cost

    found = minimize_scalar(cost_per_year, bounds=(1e-4, 0.5), method="bounded",
                            options={"xatol": 1e-10})
    assert found.success
    assert found.x == pytest.approx(optimal_half_width(cost=c, drift_variance=s2, penalty=lam),
                                    rel=1e-5)


def test_ergodic_stats_by_hand() -> None:
    stats = ergodic_stats(0.05, 0.01, cost=0.001)
    assert isinstance(stats, ErgodicStats)
    assert stats.mean_squared_deviation == pytest.approx(0.0025 / 3, rel=1e-12)
    assert stats.turnover == pytest.approx(0.1, rel=1e-12)  # 0.01 / (2 * 0.05)
    assert stats.cost == pytest.approx(1e-4, rel=1e-12)
    assert (stats.half_width, stats.drift_variance) == (0.05, 0.01)
    assert ergodic_stats(0.05, 0.01).cost == 0.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        stats.turnover = 0.0  # type: ignore[misc]


def test_ergodic_second_moment_is_that_of_the_uniform_law() -> None:
    b = 0.07
    second_moment, _ = quad(lambda x: x * x / (2 * b), -b, b)
    assert ergodic_stats(b, 0.02).mean_squared_deviation == pytest.approx(second_moment,
                                                                          rel=1e-10)


def test_ergodic_stats_match_a_simulated_reflected_walk() -> None:
    """Daily steps of the deviation, clipped to the band: 8000 paths of 500 days, 4M steps.

    The paths start from the stationary (uniform) law, so there is no burn-in. A walk checked
    once a day overshoots the edge before it is pulled back, so it differs from the continuous
    reflected motion by terms of order step / b (here 1/18):

    * its second moment is that of the continuous motion with the edges moved out by 0.5826 sd
      of one step (Siegmund's correction, 0.5826 = -zeta(1/2) / sqrt(2 pi); Asmussen, Glynn and
      Pitman 1995), within 2%;
    * its turnover is below s2 / (2b): stationarity of x^2 gives E|overshoot| = (s2 dt -
      E[overshoot^2]) / (2b) per step in expectation, so the continuous value is an upper
      bound, met within 8% at this step.
    """
    s2, dt = 0.01, 1.0 / 252
    b = optimal_half_width(cost=0.002, drift_variance=s2, penalty=0.01)  # 0.1145
    step = math.sqrt(s2 * dt)
    rng = np.random.default_rng(20041)
    paths, steps = 8000, 500
    x = rng.uniform(-b, b, paths)
    sum_squares = traded = 0.0
    for _ in range(steps):
        moved = x + step * rng.standard_normal(paths)
        x = np.clip(moved, -b, b)
        traded += float(np.abs(moved - x).sum())
        sum_squares += float((x * x).sum())
    years = paths * steps * dt
    simulated_msd = sum_squares / (paths * steps)
    simulated_turnover = traded / years

    widened = ergodic_stats(b + 0.5826 * step, s2)
    assert simulated_msd == pytest.approx(widened.mean_squared_deviation, rel=0.02)
    exact = ergodic_stats(b, s2)
    assert simulated_msd == pytest.approx(exact.mean_squared_deviation, rel=0.08)
    assert 0.92 * exact.turnover < simulated_turnover < exact.turnover


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"cost": 0.001}, "risk_aversion"),
    ({"cost": 0.001, "risk_aversion": 2.0, "target": 0.6, "penalty": 0.1}, "penalty"),
    ({"cost": 0.001, "risk_aversion": 2.0}, "target"),
    ({"cost": 0.001, "target": 0.6}, "risk_aversion"),
    ({"cost": 0.001, "drift_variance": 0.01}, "penalty"),
    ({"cost": 0.001, "penalty": 0.05}, "drift_variance"),
    ({"cost": -0.001, "risk_aversion": 2.0, "target": 0.6}, "cost"),
    ({"cost": float("nan"), "risk_aversion": 2.0, "target": 0.6}, "cost"),
    ({"cost": 0.001, "risk_aversion": 0.0, "target": 0.6}, "risk_aversion"),
    ({"cost": 0.001, "risk_aversion": 2.0, "target": float("inf")}, "target"),
    ({"cost": 0.001, "risk_aversion": 2.0, "target": "0.6x"}, "target"),
    ({"cost": 0.001, "drift_variance": -0.01, "penalty": 0.05}, "drift_variance"),
    ({"cost": 0.001, "drift_variance": 0.01, "penalty": 0.0}, "penalty"),
    ({"cost": True, "drift_variance": 0.01, "penalty": 0.05}, "cost"),
])
def test_half_width_bad_input_names_the_argument(kwargs: dict, field: str) -> None:
    with pytest.raises(InputError) as caught:
        optimal_half_width(**kwargs)
    assert caught.value.field == field


@pytest.mark.parametrize(("args", "field"), [
    ((0.0, 0.01), "half_width"),
    ((-0.05, 0.01), "half_width"),
    ((0.05, -0.01), "drift_variance"),
    ((0.05, float("inf")), "drift_variance"),
    ((0.05, 0.01, -0.001), "cost"),
])
def test_ergodic_bad_input_names_the_argument(args: tuple, field: str) -> None:
    with pytest.raises(InputError) as caught:
        ergodic_stats(*args)
    assert caught.value.field == field
