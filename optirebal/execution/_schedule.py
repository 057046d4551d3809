"""Public entry points: :func:`schedule`, :func:`frontier`, :func:`plot_frontier` (private module).

See :mod:`optirebal.execution` for the model and ``docs/execution.md`` for the formulas.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from optirebal.errors import InputError
from optirebal.execution import _program
from optirebal.execution._inputs import Plan, prepare
from optirebal.execution._report import child_frame, cost_frame, verify
from optirebal.execution._rounding import child_shares
from optirebal.execution.impact import AlmgrenThumImpact, ImpactModel
from optirebal.risk import RiskModel

if TYPE_CHECKING:
    from matplotlib.axes import Axes

DEFAULT_SOLVERS = ("CLARABEL", "ECOS")
"""The solver chain: Clarabel, then ECOS when no answer of Clarabel's passes verification (the
solvers of :mod:`optirebal.program.solvers`, which the rebalancing program uses too)."""

DEFAULT_IMPACT = AlmgrenThumImpact(gamma_permanent=0.0)
"""The published 3/5-power temporary impact; its permanent term needs the shares outstanding, and
never changes a schedule, so the default leaves it out (pass ``AlmgrenThumImpact()`` and a
``shares_outstanding`` column to include it in the expected cost)."""


@dataclass(frozen=True, eq=False, repr=False)
class Schedule:
    """Child orders of one or more parent orders, with their expected cost and risk.

    Attributes
    ----------
    child_orders : DataFrame
        One row per security and interval, securities in order of first appearance, then
        intervals: ``security``, ``interval`` (0 is the first; interval k spans ``[k tau,
        (k + 1) tau)`` trading days), ``shares`` (signed child order: + buy, - sell) and
        ``remaining`` (signed shares still to trade after this interval; 0 after the last). Whole
        shares as ``int64`` when every parent order is whole; ``float64`` otherwise, with the
        fraction on one child order.
    costs : DataFrame
        Indexed by ``security``: ``shares`` (parent order), ``value`` (shares x price, currency),
        ``temporary_cost``, ``permanent_cost``, ``expected_cost`` (currency) and ``cost_bps``
        (expected cost over the order's absolute value, basis points).
    expected_cost : float
        Expected impact cost of the rounded child orders, currency (spread and commissions are
        not included: child orders never reverse, so they are the same for every schedule).
    variance : float
        Variance of the cost from price moves during execution, currency squared.
    risk_aversion : float
        The :math:`\\lambda` of the objective ``expected_cost + lambda * variance``, 1 / currency.
    horizon_days : float
        Trading days the schedule spans.
    impact : ImpactModel
        The impact model used.
    solver : str or None
        Solver that gave the answer; None when no program was needed (one interval, or no order).
    status : str
        ``optimal`` (the solver's verdict, confirmed in numpy), ``certified`` (the solver stopped
        just short of its own tolerance and the numpy certificate proves the answer optimal to
        1e-7 of the even-slicing cost) or ``trivial`` (no program was needed).
    gap : float
        Upper bound on the distance to the optimal objective, proven in numpy, as a fraction of
        the larger of 1 and the objective (both in units of the even-slicing impact cost).
    attempts : tuple of (attempt, status)
        Every solver (and form of the program) tried, in order.
    solve_seconds : float
        Wall time of the solver chain (assembly, polish and checks included), seconds.
    """

    child_orders: pd.DataFrame
    costs: pd.DataFrame
    expected_cost: float
    variance: float
    risk_aversion: float
    horizon_days: float
    impact: ImpactModel
    solver: str | None
    status: str
    gap: float
    attempts: tuple[tuple[str, str], ...]
    solve_seconds: float

    @property
    def std(self) -> float:
        """Standard deviation of the cost, currency."""
        return math.sqrt(self.variance)

    @property
    def intervals(self) -> int:
        """Number of intervals."""
        return int(self.child_orders["interval"].max()) + 1 if len(self.child_orders) else 0

    def __repr__(self) -> str:
        return (
            f"Schedule({len(self.costs)} orders x {self.intervals} intervals over "
            f"{self.horizon_days:g} days, expected_cost={self.expected_cost:,.2f}, "
            f"std={self.std:,.2f}, risk_aversion={self.risk_aversion:g}, "
            f"solver={self.solver}, status={self.status!r})"
        )


def schedule(
    orders: Any,
    market: pd.DataFrame,
    *,
    risk_aversion: float,
    horizon_days: float = 1.0,
    intervals: int = 13,
    impact: ImpactModel = DEFAULT_IMPACT,
    participation_cap: float | None = None,
    volume_profile: Sequence[float] | np.ndarray | None = None,
    covariance: pd.DataFrame | RiskModel | None = None,
    trading_days_per_year: float = 252.0,
    solvers: Sequence[str] = DEFAULT_SOLVERS,
) -> Schedule:
    r"""Slice parent orders into child orders that minimize expected cost plus risk.

    Minimizes :math:`E + \lambda V` (Almgren and Chriss 2000) jointly over all orders: :math:`E`
    the expected impact cost (see :mod:`optirebal.execution.impact`) and
    :math:`V = \tau \sum_k z_k^\top \Sigma z_k` the variance of the cost from price moves,
    :math:`z_k` the value still to trade after interval k. With a covariance, offsetting buys and
    sells hedge each other's timing risk. Child orders never reverse their parent's side.

    Parameters
    ----------
    orders : DataFrame or Result
        Columns ``security`` and ``shares`` (signed: + buy, - sell); rows of one security (one per
        account) are summed. Or any object with such an ``orders`` attribute.
    market : DataFrame
        Indexed by security: ``price`` (currency per share), ``daily_volatility`` (fraction of
        price per trading day), ``daily_volume`` (shares per trading day), and
        ``shares_outstanding`` for :class:`AlmgrenThumImpact` with permanent impact.
    risk_aversion : float
        :math:`\lambda \ge 0`, 1 / currency (Almgren and Chriss's example: 1e-6 per dollar);
        0 minimizes expected cost alone (even slices with a flat volume profile).
    horizon_days : float
        Trading days to finish in; > 0.
    intervals : int
        Number N of equal intervals (child orders per security); >= 1.
    impact : LinearImpact, PowerImpact or AlmgrenThumImpact
        The impact model. Default: the temporary impact of Almgren et al. (2005) as published,
        without the permanent term (:data:`DEFAULT_IMPACT`).
    participation_cap : float, optional
        Largest child order as a fraction of the interval's expected volume (0.1 = 10%).
    volume_profile : sequence of float, optional
        Expected volume of each interval as a fraction of daily volume (N values, for example a
        U-shaped intraday curve summing to 1 over a day); default ``tau`` each (flat).
    covariance : DataFrame or RiskModel, optional
        Annualized covariance of the securities' returns, like every risk model in optirebal
        (divided by ``trading_days_per_year`` here); default: independent securities with the
        market's ``daily_volatility``.
    trading_days_per_year : float
        Converts the annualized covariance to daily.
    solvers : sequence of str
        Solvers tried in order until one gives a verified answer: ``CLARABEL``, ``ECOS`` (not
        for a power without an exact second-order-cone form) or ``OSQP`` (the linear model only);
        another name is reported as not installed in the attempts.

    Returns
    -------
    Schedule
        Child orders in whole shares (the cumulative totals rounded, so every order's total is
        exact and caps hold), with expected cost and variance of those rounded orders.

    Raises
    ------
    InputError
        Bad input, naming field and row: negative or missing volume, volatility or price, an
        unknown security, zero intervals, a non-convex linear model.
    InfeasibleError
        The participation cap cannot finish an order within the horizon; the message says how
        many intervals each such order needs.
    SolverError
        No solver returned a verified answer; lists every attempt.
    """
    lam = _risk_aversion(risk_aversion, "risk_aversion")
    chain = _solvers(solvers)
    plan = prepare(
        orders,
        market,
        horizon_days=horizon_days,
        intervals=intervals,
        impact=impact,
        participation_cap=participation_cap,
        volume_profile=volume_profile,
        covariance=covariance,
        trading_days_per_year=trading_days_per_year,
    )
    if _trivial(plan):
        solution = _trivial_solution(plan)
    else:
        solution = _program.solve(_program.Programs(plan), lam, chain)
    shares = child_shares(solution.path, plan.active_orders, plan.cap_shares)
    verify(plan, shares)
    temporary, permanent = plan.impact.cost(shares, plan.active_orders)
    return Schedule(
        child_orders=child_frame(plan, shares),
        costs=cost_frame(plan, temporary, permanent),
        expected_cost=float(np.sum(temporary) + np.sum(permanent)),
        variance=plan.variance(shares),
        risk_aversion=lam,
        horizon_days=plan.horizon_days,
        impact=impact,
        solver=solution.solver or None,
        status=solution.status,
        gap=solution.gap,
        attempts=solution.attempts,
        solve_seconds=solution.seconds,
    )


def frontier(
    orders: Any,
    market: pd.DataFrame,
    *,
    risk_aversions: Sequence[float] | np.ndarray | None = None,
    horizon_days: float = 1.0,
    intervals: int = 13,
    impact: ImpactModel = DEFAULT_IMPACT,
    participation_cap: float | None = None,
    volume_profile: Sequence[float] | np.ndarray | None = None,
    covariance: pd.DataFrame | RiskModel | None = None,
    trading_days_per_year: float = 252.0,
    solvers: Sequence[str] = DEFAULT_SOLVERS,
    progress: bool = False,
) -> pd.DataFrame:
    """The efficient frontier of expected cost against risk over a range of risk aversions.

    The program's numbers are prepared once; its conic data are assembled at each risk aversion
    (milliseconds) and solved. Points are the optimal (unrounded) schedules, so the curve is
    exactly convex; :func:`schedule` at one of these risk aversions differs only by the rounding
    to whole shares.

    Parameters
    ----------
    risk_aversions : sequence of float, optional
        Values of :math:`\\lambda` (1 / currency), each >= 0, kept in the given order. Default: 0
        and 12 values spaced logarithmically from 1/100 to 100 times
        :math:`\\lambda_0 = E_{even} / V_{even}` (temporary cost over variance of even slices),
        which spans even slicing to nearly immediate trading.
    orders, market, horizon_days, intervals, impact, participation_cap, volume_profile, \
covariance, trading_days_per_year, solvers
        As in :func:`schedule`.
    progress : bool, default False
        Show a progress bar (tqdm, on standard error) over the risk aversions: a frontier of
        500 orders takes about a second a point.

    Returns
    -------
    DataFrame
        One row per risk aversion: ``risk_aversion`` (1 / currency), ``expected_cost``
        (currency), ``variance`` (currency squared), ``std`` (currency).
    """
    chain = _solvers(solvers)
    plan = prepare(
        orders,
        market,
        horizon_days=horizon_days,
        intervals=intervals,
        impact=impact,
        participation_cap=participation_cap,
        volume_profile=volume_profile,
        covariance=covariance,
        trading_days_per_year=trading_days_per_year,
    )
    if risk_aversions is None:
        lams = _default_risk_aversions(plan)
    else:
        lams = [_risk_aversion(v, "risk_aversions") for v in np.atleast_1d(risk_aversions)]
        if not lams:
            raise InputError("needs at least one value", field="risk_aversions")
    programs = None if _trivial(plan) else _program.Programs(plan)
    rows = []
    for lam in tqdm(lams, desc="frontier", unit="point", disable=not progress):
        path = (
            _trivial_solution(plan).path
            if programs is None
            else _program.solve(programs, lam, chain).path
        )
        shares = plan.active_orders[:, None] * (path[:, :-1] - path[:, 1:])
        temporary, permanent = plan.impact.cost(shares, plan.active_orders)
        variance = plan.variance(shares)
        rows.append(
            (lam, float(np.sum(temporary) + np.sum(permanent)), variance, math.sqrt(variance))
        )
    return pd.DataFrame(
        rows, columns=["risk_aversion", "expected_cost", "variance", "std"], dtype=float
    )


def plot_frontier(frame: pd.DataFrame, *, ax: Axes | None = None, label: str | None = None) -> Axes:
    """Plot a :func:`frontier` frame: expected cost against standard deviation (currency).

    Parameters
    ----------
    frame : DataFrame
        The output of :func:`frontier`.
    ax : matplotlib Axes, optional
        Where to draw; a new figure when omitted.
    label : str, optional
        Legend label of the curve.

    Returns
    -------
    matplotlib Axes
    """
    import matplotlib.pyplot as plt  # lazily: matplotlib is an optional dependency

    for column in ("expected_cost", "std", "risk_aversion"):
        if column not in frame.columns:
            raise InputError(f"needs the column {column!r} of a frontier frame", field=column)
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    ordered = frame.sort_values("std")
    ax.plot(ordered["std"], ordered["expected_cost"], marker="o", label=label)
    ax.set_xlabel("standard deviation of cost (currency)")
    ax.set_ylabel("expected cost (currency)")
    ax.set_title("Execution frontier")
    ax.grid(True, alpha=0.3)
    if label is not None:
        ax.legend()
    return ax


def _risk_aversion(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InputError(f"must be a number (1 / currency), got {value!r}", field=field)
    number = float(value)
    if not (math.isfinite(number) and number >= 0):
        raise InputError(f"must be finite and >= 0, got {value!r}", field=field)
    return number


def _solvers(solvers: Sequence[str]) -> tuple[str, ...]:
    if isinstance(solvers, str) or not solvers or not all(isinstance(s, str) for s in solvers):
        raise InputError(
            f"must be a non-empty sequence of solver names, got {solvers!r}", field="solvers"
        )
    return tuple(s.upper() for s in solvers)


def _trivial(plan: Plan) -> bool:
    """No program to solve: no order, or one interval (each order trades whole in it)."""
    return not plan.active.any() or plan.intervals == 1


def _trivial_solution(plan: Plan) -> _program.Solution:
    rows = int(plan.active.sum())
    path = np.zeros((rows, plan.intervals + 1))
    path[:, 0] = 1.0  # everything in the single interval (the cap was checked to allow it)
    return _program.Solution(path, "", "trivial", 0.0, (), 0.0)


def _default_risk_aversions(plan: Plan) -> list[float]:
    if _trivial(plan):
        return [0.0]
    even = np.linspace(1.0, 0.0, plan.intervals + 1)[None, :]
    shares = plan.active_orders[:, None] * (even[:, :-1] - even[:, 1:])
    temporary, _ = plan.impact.cost(shares, plan.active_orders)
    reference = float(np.sum(temporary)) / plan.variance(shares)
    return [0.0, *(reference * np.geomspace(1e-2, 1e2, 12)).tolist()]
