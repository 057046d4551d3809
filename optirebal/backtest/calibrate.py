"""Band widths by backtest: the cost / tracking-error frontier, beside the cube-root law."""

from __future__ import annotations

import dataclasses
import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from optirebal.backtest.sweep import run_all
from optirebal.bands import ergodic_stats, optimal_half_width
from optirebal.errors import InputError
from optirebal.market import Market
from optirebal.policy import Band, Policy
from optirebal.portfolio import Portfolio

if TYPE_CHECKING:
    from matplotlib.figure import Figure


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
