r"""Destination bands on post-cost weights, hard or soft.

Costs ``C`` (every cost paid now, weights) shrink the post-trade NAV to ``1 + F - C``. A risky
class stays under its upper edge after costs iff ``x + hi C <= hi (1 + F)`` and over its lower
edge iff ``x + lo C >= lo (1 + F)``; cash pays the costs, so its edges are
``x - (1 - lo) C >= lo (1 + F)`` and ``x - (1 - hi) C <= hi (1 + F)``. Where ``C`` makes a row
harder (risky upper, cash lower) it enters as the epigraph variable of every cost paid now,
exact and convex. Where it makes a row easier (risky lower, cash upper) only the costs linear
in the trades ``C_1`` (spread and commission, affine) enter: exact without impact, conservative
by the nonlinear costs with it. A solved portfolio is then a fixed point (its re-solve finds the
band edge where the first solve left it, not ``lo C`` inside it).

The credit makes paying costs move a weight toward its band (a smaller NAV). With hard bands
that never beats trading the class itself (``1 / lo`` per unit of weight against the spread).
A soft band's penalty would buy it at ``band_penalty x lo`` per unit of cost, so a class that
cannot be bought would be churned toward its edge. Soft rows take the whole credit when
``band_penalty x (sum of the credits) <= BURN_LIMIT``, so that a unit of cost never earns a unit
of penalty (at the default penalty of 1 they do, as the credits sum to less than 0.9 unless the
lower edges do). Otherwise the first solve holds these edges before costs, and when it leaves a
class at such an edge a second solve credits at most the first solve's linear costs ``C_1``
(a variable ``c <= C_1``, ``c <= cap``; :attr:`~optirebal.program.data.ProblemData.credit_cap`,
set by :func:`optirebal.program.fixes.credit_pass`): the credit those trades earn, which churn
cannot raise, so the class ends at its edge after costs and the next call does not trade to it
(a partial credit, a fraction of ``C_1`` for every row, was tried: it moved re-solves further
than none).
``to_target`` collapses the band and holds it before costs (after them it cannot be
both). In ``z = x - t (1 + F)``:

.. math::

    z + u_c C - u_1 C_1 \le (hi - t)(1 + F) + o, \qquad
    z - l_c C + l_1 C_1 \ge (lo - t)(1 + F) - v,

with ``u_c = hi, u_1 = 0, l_c = 0, l_1 = lo`` for a risky class and
``u_c = 0, u_1 = 1 - hi, l_c = 1 - lo, l_1 = 0`` for cash (``u_1 = l_1 = 0`` for soft bands
with a high penalty in the first solve, ``C_1`` capped in the second, above), and soft-band
slacks ``0 <= o, v <= SOFT_SLACK_CAP`` costing
``band_penalty`` each.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from optirebal.program.terms.base import BaseTerm, Context, Point

if TYPE_CHECKING:
    from optirebal.program.data import ProblemData

BURN_LIMIT = 0.9
"""Most penalty a unit of cost may earn through the soft rows' cost credit (module docstring)."""

SOFT_SLACK_CAP = 10.0
"""Largest band violation (weight) a soft band may take; large enough never to bind."""


@dataclass(frozen=True)
class CostWeights:
    """Per class, the multipliers of the costs in the band rows (module docstring): ``upper``
    and ``lower`` of every cost paid now (``u_c``, ``l_c``), ``upper_linear`` and
    ``lower_linear`` of the linear costs (``u_1``, ``l_1``); all zero in ``to_target``."""

    upper: np.ndarray
    lower: np.ndarray
    upper_linear: np.ndarray
    lower_linear: np.ndarray


def loosening_weights(data: ProblemData) -> tuple[np.ndarray, np.ndarray]:
    """Per class, the weights of the linear costs in the rows they loosen: cash's upper
    (``1 - hi``) and a risky class's lower (``lo``) edge; ``u_1`` and ``l_1`` before any
    soft-band limit (module docstring)."""
    is_cash = np.array([k == data.policy.cash_class for k in data.classes])
    return (np.where(is_cash, np.clip(1.0 - data.upper, 0.0, None), 0.0),
            np.where(is_cash, 0.0, np.clip(data.lower, 0.0, None)))


def churn_could_pay(data: ProblemData) -> bool:
    """Whether soft rows crediting the linear costs without a cap could pay for churn: paying a
    unit of cost earns ``band_penalty`` times the sum of the credits of penalty, above
    :data:`BURN_LIMIT` (module docstring)."""
    if not data.soft_bands:
        return False
    upper_linear, lower_linear = loosening_weights(data)
    return bool(data.band_penalty * (upper_linear.sum() + lower_linear.sum()) > BURN_LIMIT)


def band_cost_weights(data: ProblemData) -> CostWeights:
    """Per class, the multipliers of the costs in the upper and lower band rows."""
    n_k = len(data.classes)
    if data.policy.mode == "to_target":
        return CostWeights(*(np.zeros(n_k) for _ in range(4)))
    is_cash = np.array([k == data.policy.cash_class for k in data.classes])
    upper_linear, lower_linear = loosening_weights(data)
    credit = 1.0 if data.credit_cap is not None or not churn_could_pay(data) else 0.0
    return CostWeights(
        upper=np.where(is_cash, 0.0, np.clip(data.upper, 0.0, None)),
        lower=np.where(is_cash, np.clip(1.0 - data.lower, 0.0, None), 0.0),
        upper_linear=credit * upper_linear, lower_linear=credit * lower_linear)


def credited_cost(data: ProblemData, linear: float) -> float:
    """The linear cost (weights) the loosening rows credit: all of it, or at most
    :attr:`~optirebal.program.data.ProblemData.credit_cap`."""
    return linear if data.credit_cap is None else min(linear, data.credit_cap)


def band_rows(data: ProblemData, x: Point) -> tuple[np.ndarray, np.ndarray]:
    """Per class, the left side less the right side of the upper and lower band rows at ``x``
    (units of V, before any soft-band slack): positive where a hard band would be broken."""
    from optirebal.program.terms import immediate_cost
    from optirebal.program.terms.trades import linear_immediate_cost

    deviation = x.deviation(data)
    cost = immediate_cost(data, x)
    linear = credited_cost(data, linear_immediate_cost(data, x))
    w = band_cost_weights(data)
    return (deviation + w.upper * cost - w.upper_linear * linear
            - (data.upper - data.target) * data.scale,
            (data.lower - data.target) * data.scale - deviation + w.lower * cost
            - w.lower_linear * linear)


def band_excess(data: ProblemData, x: Point) -> np.ndarray:
    """Per class, how far (weights of post-trade NAV) the band rows are broken at ``x``,
    soft-band slack allowed; negative inside."""
    slack = SOFT_SLACK_CAP if data.soft_bands else 0.0
    return np.maximum(*band_rows(data, x)) / data.scale - slack


def reachable_weights(data: ProblemData) -> tuple[np.ndarray, np.ndarray]:
    """Per class, the least and greatest post-trade weight any trade could give; a band edge
    outside that range never binds, and gets no row. Holdings are long only and cash stays at
    or above its reserve, so a class lies between its smallest and largest loading (0 and 1
    included); cash between 0 and 1. An overlay can lever any class: no edge is dropped."""
    n_k = len(data.classes)
    if data.overlay is not None:
        return np.full(n_k, -np.inf), np.full(n_k, np.inf)
    is_cash = np.array([k == data.policy.cash_class for k in data.classes])
    low = np.minimum(data.exposure.min(axis=1, initial=0.0), 0.0)
    high = np.maximum(data.exposure.max(axis=1, initial=0.0), 1.0)
    return np.where(is_cash, 0.0, low), np.where(is_cash, 1.0, high)


class Bands(BaseTerm):
    """Band rows per class, with soft slacks when the policy asks (module docstring)."""

    name = "bands"

    def build(self, ctx: Context) -> None:
        d, bld = ctx.data, ctx.builder
        assert ctx.immediate_cost is not None and ctx.linear_pair_cost is not None
        low, high = reachable_weights(d)
        binds_up = (d.upper < high) | d.soft_bands
        binds_lo = (d.lower > low) | d.soft_bands
        rows_up, rows_lo = np.flatnonzero(binds_up), np.flatnonzero(binds_lo)
        z = bld.select("deviation")
        w = band_cost_weights(d)
        one = np.ones((len(d.classes), 1))
        upper, lower = z, -z
        credit_up = np.where(binds_up, w.upper_linear, 0.0)
        credit_lo = np.where(binds_lo, w.lower_linear, 0.0)
        if credit_up.any() or credit_lo.any():
            linear = ctx.linear_cost()
            if d.credit_cap is not None:
                # at most the cap: churn cannot buy a credit beyond it (module docstring)
                capped = bld.variable("credited cost", 1)
                bld.at_most("credited cost", capped - linear)
                bld.at_most("credited cost cap", capped, d.credit_cap)
                linear = capped
            upper = upper - (credit_up[:, None] * one) @ linear
            lower = lower - (credit_lo[:, None] * one) @ linear
        upper_cost = np.where(binds_up, w.upper, 0.0)
        lower_cost = np.where(binds_lo, w.lower, 0.0)
        if upper_cost.any() or lower_cost.any():
            total = bld.variable("total cost", 1)
            bld.at_most("total cost", ctx.immediate_cost - total)
            upper = upper + (upper_cost[:, None] * one) @ total
            lower = lower + (lower_cost[:, None] * one) @ total
        if d.soft_bands:
            n = len(d.classes)
            over, under = bld.variable("band over", n), bld.variable("band under", n)
            for name, slack in (("band over", over), ("band under", under)):
                bld.at_most(f"{name} >= 0", -slack)
                bld.at_most(f"{name} cap", slack, SOFT_SLACK_CAP)
                bld.minimize(slack, d.band_penalty)
            upper, lower = upper - over, lower - under
        bld.at_most("band upper", upper[rows_up], ((d.upper - d.target) * d.scale)[rows_up],
                    relax=True, labels=lambda n: f"band upper {d.classes[rows_up[n]]!r} "
                                                 f"({d.upper[rows_up[n]]:.4g})")
        bld.at_most("band lower", lower[rows_lo], (-(d.lower - d.target) * d.scale)[rows_lo],
                    relax=True, labels=lambda n: f"band lower {d.classes[rows_lo[n]]!r} "
                                                 f"({d.lower[rows_lo[n]]:.4g})")

    def residual(self, data: ProblemData, x: Point) -> float:
        return float(np.max(band_excess(data, x) * data.scale, initial=0.0))

    def objective(self, data: ProblemData, x: Point) -> float:
        """The soft-band penalty on the slack the rows need (0 for hard bands)."""
        if not data.soft_bands:
            return 0.0
        upper, lower = band_rows(data, x)
        return float(data.band_penalty * (np.maximum(upper, 0.0) + np.maximum(lower, 0.0)).sum())
