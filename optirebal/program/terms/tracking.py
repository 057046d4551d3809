r"""Tracking error: the certainty-equivalent cost of the post-trade deviation from target.

The post-trade portfolio is worth ``S = 1 + F - C`` (units of the pre-trade NAV ``V``: flows
``F`` in, costs paid now ``C`` out of the cash) and its weights deviate from the target by
``e / S``, with ``e = x - 1_cash C - t S`` its exposure less the target. Held over the horizon
``H`` it costs, in money, its value times ``(gamma H / 2)`` times the variance of the weights:
``S (gamma H / 2) (e/S)' Sigma (e/S) = (gamma H / 2) e' Sigma e / S`` in units of ``V``. The
program charges

.. math:: \frac{\gamma H}{2 (1 + F)} \left( \|F_s^\top e\|^2 + \|\delta^{1/2} \circ e\|^2 \right)

with the risk model ``Sigma = F Omega F' + diag(delta)`` as a factor ``F_s`` and specific
variances, written with ``y = F_s^\top e`` so that the quadratic is diagonal, and:

- ``e = z + (t - 1_cash) C_1``: ``z = x - t (1 + F)`` the deviation before costs, ``C_1`` the costs
  linear in the trades (spread and commission). Impact (convex, not affine) stays out of ``e``,
  which keeps the term a convex quadratic.
- ``1 + F`` for ``S``: the costs' share of the NAV (1e-4 of the term) is left out, since the exact
  quotient is a cone, which holds Clarabel to a looser gap than a quadratic program
  (``program/solvers.py``).

Why this form: it makes a solved portfolio a fixed point. Re-solving the post-trade portfolio
with linear costs (in units of its own NAV ``S V``) charges the same money for the same total
trade, so it trades nothing (to that 1e-4); with the deviation before costs it moved about the
first solve's costs again, and with the weights' variance alone (``(1 + F)^2`` in the
denominator, the textbook form of DESIGN section 4) a contribution of ``F`` weighed the
tracking error ``1 + F`` times less than the next call did. ``z`` is a variable defined by
``z = z_0 + E\,\Delta + D u`` (security trades ``Delta``, derivative notional ``u``), which
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
    """``sqrt(gamma H / (2 (1 + F)))``: the factor that turns ``e`` into the risk term's root."""
    return float(np.sqrt(data.risk_weight / data.scale))


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
