"""Cost-optimal no-trade bands: the cube-root law and the ergodic statistics of a band.

Two questions about one asset class held near a target weight, with proportional costs:

* how wide should the no-trade band be (:func:`optimal_half_width`), and
* what does a band of a given width cost and buy (:func:`ergodic_stats`): the mean squared
  deviation from target, the weight traded per year and the cost per year.

Units throughout: weights and half-widths are fractions of wealth (0.05 is five percentage
points), costs are fractions of the amount traded (0.001 is 10 bp, *one way*), variances are
per year, turnover is weight traded per year, costs per year are fractions of wealth per year.

Sources
-------
* K. Janeček and S. E. Shreve (2004), "Asymptotic analysis for optimal investment and consumption
  with transaction costs", Finance and Stochastics 8(2), 181-206.
* L. C. G. Rogers (2004), "Why is the effect of proportional transaction costs O(δ^(2/3))?", in
  G. Yin and Q. Zhang (eds.), Mathematics of Finance, Contemporary Mathematics 351, AMS, 303-308.
* S. Gerhold, P. Guasoni, J. Muhle-Karbe and W. Schachermayer (2014), "Transaction costs, trading
  volume, and the liquidity premium", Finance and Stochastics 18(1), 1-37 (arXiv:1108.1167).
* J. M. Harrison (1985), Brownian Motion and Stochastic Flow Systems, Wiley (reflected Brownian
  motion, its stationary law and the local times that push it back, chapters 1-5).
"""

from __future__ import annotations

import dataclasses
import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from optirebal.errors import InputError
from optirebal.market import Market
from optirebal.policy import Band, Policy
from optirebal.portfolio import Portfolio
from optirebal.schema import number

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["Calibration", "ErgodicStats", "calibrate", "ergodic_stats", "optimal_half_width"]


def optimal_half_width(*, cost: float, risk_aversion: float | None = None,
                       target: float | None = None, drift_variance: float | None = None,
                       penalty: float | None = None) -> float:
    """The cost-optimal no-trade half-width of the cube-root law, in weight (fraction of wealth).

    Trade only when the class weight leaves ``[target - b, target + b]``, and then only back to
    the nearer edge. Give exactly one of the two parameterizations below (keywords only).

    **Merton form** (``cost``, ``risk_aversion``, ``target``): one risky class against the rest
    (a safe asset), constant investment opportunities, constant relative risk aversion γ,
    frictionless optimal weight π* (the Merton proportion), one-way proportional cost c:

        b = (3 / (4 γ) · π*² (1 - π*)² · ε)^(1/3),   with ε = 2 c.

    This is the leading-order term of the trading boundaries π± = π* ± b + O(ε) of Gerhold,
    Guasoni, Muhle-Karbe and Schachermayer (2014); the cube-root law is Janeček and Shreve (2004)
    and Rogers (2004). **The ε mapping**: GGMS model a bid (selling) price (1 - ε)S and an ask
    (buying) price S, so ε is the full relative bid-ask spread, the cost of a round trip.
    optirebal's ``cost`` is charged on each trade, buy or sell, so a round trip costs 2c and
    ε = 2c. The tracking form below confirms the factor: with the GGMS weight dynamics and
    utility loss it gives the same b exactly when ε = 2c. **Volatility does not enter**: the
    weight diffuses with variance σ²π*²(1-π*)² per year and a deviation x from π* costs γσ²x²/2
    of certainty-equivalent return per year, so σ² cancels; σ and the expected excess return μ act
    only through π* = μ / (γσ²). The width is 0 at π* = 0 or 1 (the weight does not move) and the
    formula holds for leverage (π* > 1) as in GGMS. Accuracy is leading order in c: the O(ε)
    correction (a shift of both boundaries) is not included.

    **Tracking form** (``cost``, ``drift_variance``, ``penalty``): the deviation x of the class
    weight from target diffuses with variance s² per year, holding it costs λ x² per year, and
    trading costs c per unit of weight traded. With the ergodic statistics of
    :func:`ergodic_stats` the long-run cost per year of half-width b is

        λ b² / 3 + c s² / (2 b),   minimized at   b = (3 c s² / (4 λ))^(1/3).

    The Merton form is this with s² = σ²π*²(1-π*)², λ = γσ²/2 and c = ε/2.

    Both forms scale as the cube root: halving the cost, doubling the risk aversion or doubling
    the penalty narrows the band by 2^(1/3) ≈ 1.26.

    Parameters
    ----------
    cost
        c >= 0, one-way proportional cost as a fraction of the amount traded (0.001 = 10 bp).
    risk_aversion
        γ > 0, relative risk aversion (Merton form).
    target
        π*, the frictionless optimal weight of the risky class as a fraction of wealth
        (Merton form).
    drift_variance
        s² >= 0, variance per year of the deviation of the class weight from target, in weight²
        per year (tracking form).
    penalty
        λ > 0, cost per year of a squared deviation, in fraction of wealth per weight² per year
        (tracking form).

    Returns
    -------
    float
        The half-width b, in weight (fraction of wealth).

    Raises
    ------
    InputError
        Naming the argument: both or neither parameterization given, one given partly, or a
        value out of range (not finite, negative cost or variance, non-positive risk aversion
        or penalty).

    Examples
    --------
    Merton form, 10 bp one way, γ = 2, π* = 0.6: (3/8 · 0.36 · 0.16 · 0.002)^(1/3).

    >>> round(optimal_half_width(cost=0.001, risk_aversion=2.0, target=0.6), 6)
    0.035088
    >>> round(optimal_half_width(cost=0.0005, risk_aversion=2.0, target=0.6) * 2 ** (1 / 3), 6)
    0.035088

    Tracking form, the same investor (s² = σ²π*²(1-π*)², λ = γσ²/2, any σ):

    >>> s2, lam = 0.04 * 0.36 * 0.16, 2.0 * 0.04 / 2
    >>> round(optimal_half_width(cost=0.001, drift_variance=s2, penalty=lam), 6)
    0.035088
    """
    merton = {"risk_aversion": risk_aversion, "target": target}
    tracking = {"drift_variance": drift_variance, "penalty": penalty}
    merton_given = [k for k, v in merton.items() if v is not None]
    tracking_given = [k for k, v in tracking.items() if v is not None]
    if merton_given and tracking_given:
        raise InputError(
            "give either the Merton form (risk_aversion, target) or the tracking form "
            f"(drift_variance, penalty), not both; got {merton_given + tracking_given}",
            field=tracking_given[0])
    if not merton_given and not tracking_given:
        raise InputError("give the Merton form (risk_aversion, target) or the tracking form "
                         "(drift_variance, penalty)", field="risk_aversion")
    c = number("cost", cost, ge=0)
    if merton_given:
        missing = [k for k, v in merton.items() if v is None]
        if missing:
            raise InputError("the Merton form needs both risk_aversion and target",
                             field=missing[0])
        gamma = number("risk_aversion", risk_aversion, gt=0)
        pi = number("target", target)
        spread = 2.0 * c  # GGMS ε: bid (1 - ε)S, ask S, so a round trip costs ε = 2c
        return float((3.0 / (4.0 * gamma) * pi**2 * (1.0 - pi) ** 2 * spread) ** (1.0 / 3.0))
    missing = [k for k, v in tracking.items() if v is None]
    if missing:
        raise InputError("the tracking form needs both drift_variance and penalty",
                         field=missing[0])
    s2 = number("drift_variance", drift_variance, ge=0)
    lam = number("penalty", penalty, gt=0)
    return float((3.0 * c * s2 / (4.0 * lam)) ** (1.0 / 3.0))


@dataclass(frozen=True)
class ErgodicStats:
    """Long-run averages of a driftless deviation kept in ``[-b, b]`` by trading at the edges.

    Attributes
    ----------
    half_width
        b, in weight (fraction of wealth).
    drift_variance
        s², the variance per year of the deviation, in weight² per year.
    mean_squared_deviation
        E[x²] = b²/3 under the stationary law, in weight² (a tracking variance).
    turnover
        s²/(2b), weight traded per year (both edges together, one way: a purchase of 0.01 of
        wealth counts 0.01).
    cost
        c · s²/(2b), proportional cost paid per year, as a fraction of wealth per year.
    """

    half_width: float
    drift_variance: float
    mean_squared_deviation: float
    turnover: float
    cost: float


def ergodic_stats(half_width: float, drift_variance: float, cost: float = 0.0) -> ErgodicStats:
    """Mean squared deviation, turnover per year and cost per year of a no-trade band.

    Model: the deviation x of a class weight from target is a driftless Brownian motion with
    variance s² per year inside the band, reflected at ±b by the smallest trades that keep it
    inside (buy at -b, sell at +b). This is the leading-order picture of GGMS (2014) and of the
    tracking form of :func:`optimal_half_width`; a drift in the weight is neglected.

    Derivation (Harrison 1985, reflected Brownian motion): x = W + L⁻ - L⁺, where W has variance
    s² per year and L⁻, L⁺ are the nondecreasing pushes (local times) at -b and +b. The
    generator (s²/2) f'' with reflecting (Neumann) boundaries has the uniform density
    1/(2b) on [-b, b] as its stationary law, so

        E[x²] = (1 / (2b)) ∫ x² dx over [-b, b] = b² / 3.

    Applying Itô's formula to f(x) = x² in the stationary regime, d E[x²] = 0 gives
    s² dt = 2b (dL⁻ + dL⁺) on average, so the weight traded per year is

        E[dL⁻ + dL⁺] / dt = s² / (2b),

    half at each edge; the cost per year is c · s²/(2b). The same turnover is GGMS's leading-order
    wealth turnover, σ²π*²(1-π*)²/(2b) in their notation. With a penalty λ per unit of x² per
    year, the total λ b²/3 + c s²/(2b) is minimized by the tracking-form half-width.

    Parameters
    ----------
    half_width
        b > 0, in weight (fraction of wealth).
    drift_variance
        s² >= 0, variance per year of the deviation, in weight² per year.
    cost
        c >= 0, one-way proportional cost, fraction of the amount traded.

    Returns
    -------
    ErgodicStats
        Frozen dataclass with ``mean_squared_deviation`` (weight²), ``turnover`` (weight per
        year) and ``cost`` (fraction of wealth per year), and the inputs b and s².

    Raises
    ------
    InputError
        Naming the argument when a value is not finite, b <= 0, or s² or c is negative.

    Examples
    --------
    >>> stats = ergodic_stats(0.05, 0.01, cost=0.001)
    >>> round(stats.mean_squared_deviation, 8), round(stats.turnover, 8), round(stats.cost, 8)
    (0.00083333, 0.1, 0.0001)
    """
    b = number("half_width", half_width, gt=0)
    s2 = number("drift_variance", drift_variance, ge=0)
    c = number("cost", cost, ge=0)
    turnover = s2 / (2.0 * b)
    return ErgodicStats(half_width=b, drift_variance=s2, mean_squared_deviation=b * b / 3.0,
                        turnover=turnover, cost=c * turnover)


@dataclass(frozen=True, eq=False)
class Calibration:
    """What band widths cost and buy on one market.

    Attributes
    ----------
    frontier : DataFrame
        Index ``half_width`` (weight): ``tracking_error`` (annualized, against the target mix),
        ``costs_bp_per_year``, ``taxes_bp_per_year``, ``turnover_per_year``, ``trades``,
        ``rebalancing_alpha`` of each backtest.
    theory : DataFrame
        Per risky class: ``cost`` (effective one-way cost: half spread and commission plus
        impact at the backtests' mean trade size, fraction), ``drift_variance`` (of the class
        weight, per year), ``penalty`` (the policy's tracking-error cost per unit squared
        deviation per year, ``risk_aversion / 2`` times the class's variance against the rest),
        ``optimal_half_width`` (the cube-root law, tracking form), and the ergodic
        ``turnover_per_year`` and ``cost_bp_per_year`` at that width.
    """

    frontier: pd.DataFrame
    theory: pd.DataFrame

    def plot(self) -> Figure:
        """Costs against tracking error, one point per width, and the law's widths."""
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4))
        f = self.frontier
        ax.plot(f["tracking_error"] * 1e4, f["costs_bp_per_year"], "o-")
        for width, row in f.iterrows():
            ax.annotate(f"±{width:.1%}", (row["tracking_error"] * 1e4, row["costs_bp_per_year"]),
                        textcoords="offset points", xytext=(4, 4), fontsize="small")
        ax.set_xlabel("tracking error against the target mix (bp per year)")
        ax.set_ylabel("trading costs (bp per year)")
        law = ", ".join(f"{k} ±{w:.1%}" for k, w in self.theory["optimal_half_width"].items())
        ax.set_title(f"band-width frontier (cube-root law: {law})", fontsize="medium")
        fig.tight_layout()
        return fig

    def _repr_html_(self) -> str:
        return (f"<h4>{html.escape('Band-width calibration')}</h4>"
                f"{self.frontier.to_html(float_format=lambda x: f'{x:,.4g}')}"
                f"<h5>Cube-root law</h5>{self.theory.to_html(float_format=lambda x: f'{x:,.4g}')}")


def calibrate(portfolio: Portfolio, policy: Policy, market: Market | pd.DataFrame,
              widths: Sequence[float], *, processes: int | None = None,
              progress: bool = True) -> Calibration:
    """Backtest ``policy`` with no-trade bands of each half-width and trades to their edge.

    Each width ``w`` is ``policy`` with ``band = Band.absolute(w)``, no trigger and
    ``mode = "to_band"`` (the policy of the cube-root law: trade to the band's edge when a class
    leaves it), backtested in parallel (:func:`optirebal.sweep`). The law's half-width uses the
    effective cost of :class:`Calibration`.

    Raises
    ------
    InputError
        No width, or a width that is not a positive number.
    """
    if not len(widths):
        raise InputError("give at least one half-width", field="widths")
    for n, width in enumerate(widths):
        if not (isinstance(width, int | float) and 0 < width < 1):
            raise InputError(f"a half-width is a weight in (0, 1), got {width!r}",
                             field="widths", row=str(n))
    grid = {f"{w:g}": dataclasses.replace(policy, band=Band.absolute(float(w)), trigger=None,
                                          class_bands={}, class_triggers={}, mode="to_band")
            for w in widths}
    from optirebal.backtest.sweep import run_all  # the backtester builds on nothing here

    results = run_all(grid, portfolio, market, processes=processes, progress=progress)
    rows = {}
    sizes = []
    for width, result in zip(widths, results.values(), strict=True):
        s = result.summary()
        rows[float(width)] = {k: s[k] for k in ("tracking_error", "costs_bp_per_year",
                                                "taxes_bp_per_year", "turnover_per_year",
                                                "trades", "rebalancing_alpha")}
        if len(result.costs):
            sizes.append(float((result.costs["traded"] / (2 * result.costs["nav"])).mean()))
    frontier = pd.DataFrame.from_dict(rows, orient="index").rename_axis("half_width")
    return Calibration(frontier, _theory(portfolio, policy, float(np.mean(sizes or [0.0]))))


def _theory(portfolio: Portfolio, policy: Policy, trade_size: float) -> pd.DataFrame:
    """The cube-root law per risky class with the portfolio's costs and risk model."""
    from optirebal.program.data import base_problem_data
    from optirebal.program.terms.impact import impact_cost

    data = base_problem_data(portfolio, policy)
    risky = portfolio.classes
    covariance = portfolio.risk.covariance(risky).to_numpy()
    targets = np.array([policy.targets[k] for k in risky])
    value = portfolio.security_values().to_numpy()
    rows = {}
    for k, name in enumerate(risky):
        loads = data.exposure[k] * np.maximum(value, 1e-300)
        share = loads / loads.sum() if loads.sum() > 0 else np.full(len(loads), 1 / len(loads))
        per_unit = data.linear_cost + (impact_cost(data.impact_cost, np.array(trade_size),
                                                   policy.costs.impact) / trade_size
                                       if trade_size > 0 else 0.0)
        cost = float(share @ per_unit)
        rest = np.delete(np.arange(len(risky)), k)
        mix = targets[rest] / targets[rest].sum() if len(rest) and targets[rest].sum() > 0 \
            else np.zeros(len(rest))
        spread = np.zeros(len(risky))
        spread[k], spread[rest] = 1.0, -mix
        variance = float(spread @ covariance @ spread)  # of the class against the rest
        t = targets[k]
        drift = t**2 * (1 - t) ** 2 * variance
        penalty = policy.risk_aversion / 2 * variance
        width = (optimal_half_width(cost=cost, drift_variance=drift, penalty=penalty)
                 if penalty > 0 and cost > 0 and drift > 0 else float("nan"))
        stats = ergodic_stats(width, drift, cost) if np.isfinite(width) and width > 0 else None
        rows[name] = {"cost": cost, "drift_variance": drift, "penalty": penalty,
                      "optimal_half_width": width,
                      "turnover_per_year": stats.turnover if stats else float("nan"),
                      "cost_bp_per_year": 1e4 * stats.cost if stats else float("nan")}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("class")
