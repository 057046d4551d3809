r"""Tracking error: the certainty-equivalent cost of the post-trade deviation from target.

With ``z = x - t (1 + F)`` the post-trade class exposure less the target (units of ``V``,
before costs), ``C_1`` the costs paid now that are linear in the trades (spread and commission)
and ``e = z + (t - 1_cash) C_1`` the deviation after them (the costs leave the cash and shrink
the NAV: ``x - 1_cash C_1 - t (1 + F - C_1)``), and the risk model ``F Omega F' + diag(delta)``
as a factor ``F_s`` and specific variances,

.. math:: \frac{\gamma H}{2 (1 + F)^2} \left( \|F_s^\top e\|^2 + \|\delta^{1/2} \circ e\|^2 \right),

written with ``y = F_s^\top e`` so that the quadratic is diagonal.

Why after the costs: a solved portfolio is then (nearly) a fixed point. Re-solving the
post-trade portfolio with linear costs measures its deviation after the first solve's costs;
with ``z`` in the first solve, the re-solve moved about those costs again. What is left is the
fixed scale ``(1 + F)^2`` where the post-trade NAV ``1 + F - C`` would be exact (a relative
error of the order of the costs, 1e-4 of the term): the exact quotient is a cone, which holds
Clarabel to a looser gap than this quadratic program (``program/solvers.py``). Impact (convex,
not affine) stays out of ``e`` so the term stays a convex quadratic. ``z`` is a variable defined
by ``z = z_0 + E\,\Delta + D u`` (security trades ``Delta``, derivative notional ``u``), which
keeps the band rows one entry wide.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from optirebal.program.terms.base import BaseTerm, Context, Point

if TYPE_CHECKING:
    from optirebal.program.data import ProblemData


def cost_shift(data: ProblemData) -> np.ndarray:
    """Per class, how the deviation moves per unit of cost paid (weights): the NAV shrinks under
    every class's target, and the cash class pays."""
    return data.target - np.array([k == data.policy.cash_class for k in data.classes], float)


def post_cost_deviation(data: ProblemData, x: Point) -> np.ndarray:
    """``e``: the deviation after the linear costs paid now (units of V; module docstring)."""
    from optirebal.program.terms.trades import linear_immediate_cost

    return x.deviation(data) + cost_shift(data) * linear_immediate_cost(data, x)


def risk_scale(data: ProblemData) -> float:
    """``sqrt(gamma H / 2) / (1 + F)``: the factor that turns ``e`` into the risk term's root."""
    return float(np.sqrt(data.risk_weight) / data.scale)


class Tracking(BaseTerm):
    """The deviation ``z`` and its tracking-error cost (module docstring)."""

    name = "tracking error"

    def build(self, ctx: Context) -> None:
        d, bld = ctx.data, ctx.builder
        assert ctx.exposure_change is not None and ctx.linear_pair_cost is not None
        n_k = len(d.classes)
        z = bld.variable("deviation", n_k)
        bld.equal("deviation", z - ctx.exposure_change, d.exposure_before - d.target * d.scale)
        root = risk_scale(d)
        if root > 0:
            e = bld.variable("deviation after costs", n_k)
            bld.equal("deviation after costs",
                      e - z - (cost_shift(d)[:, None] * np.ones((n_k, 1))) @ ctx.linear_cost())
            bld.minimize_squares("deviation after costs", d.specific_variance * root**2)
            y = bld.variable("factor exposure", d.factor.shape[1])
            bld.equal("factor exposure", y - (d.factor.T * root) @ e)
            bld.minimize_squares("factor exposure", 1.0)

    def objective(self, data: ProblemData, x: Point) -> float:
        e = post_cost_deviation(data, x)
        root = risk_scale(data)
        return float(root**2 * (np.sum((data.factor.T @ e) ** 2)
                                + np.sum(data.specific_variance * e**2)))
