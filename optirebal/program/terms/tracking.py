r"""Tracking error: the certainty-equivalent cost of the post-trade deviation from target.

The post-trade portfolio is worth ``S = 1 + F - C`` (units of the pre-trade NAV ``V``: flows
``F`` in, costs paid now ``C`` out of the cash) and its weights deviate from the target by
``e / S``, with ``e = x - 1_cash C - t S`` its exposure less the target. Held over the horizon
``H`` it costs, in money, its value times ``(gamma H / 2)`` times the variance of the weights:
``S (gamma H / 2) (e/S)' Sigma (e/S) = (gamma H / 2) e' Sigma e / S`` in units of ``V``. The
program charges

.. math:: \frac{\gamma H}{2\, S_1} \left( \|F_s^\top e\|^2 + \|\delta^{1/2} \circ e\|^2 \right)

with the risk model ``Sigma = F Omega F' + diag(delta)`` as a factor ``F_s`` and specific
variances (written with ``y = F_s^\top e``), and:

- ``e = z + (t - 1_cash) C_1``: ``z = x - t (1 + F)`` the deviation before costs, ``C_1`` the costs
  linear in the trades (spread and commission). Impact (convex, not affine) stays out of ``e``.
- ``S_1 = 1 + F - C_1``, the post-trade NAV after the linear costs, **without impact**: the
  quotient is exact, one rotated second-order cone ``||(y, delta^(1/2) e)||^2 <= tau S_1`` with
  ``tau`` in the objective. Clarabel holds a cone to a gap of 1e-12, which pins the trades only
  to about 3e-7 of NAV; every answer of such a program (its only cone) is therefore polished to
  a quadratic program's precision (:mod:`optirebal.program.polish`, in
  :mod:`optirebal.program.solve`). OSQP, which takes no cones, reads the quadratic form below.
- ``S_1 = 1 + F`` **with impact**, a convex quadratic: the program has cones anyway (the impact's),
  and one more would hold the impact's flat directions to a looser precision (measured: weights
  1e-6 apart at NAV x 1,000); impact staying out of ``e`` already makes that form approximate, to
  the costs' share of the NAV (1e-4 of the term).

Why this form: it makes a solved portfolio a fixed point. Re-solving the post-trade portfolio
with linear costs (in units of its own NAV ``S V``) charges the same money for the same total
trade, so it trades nothing. With ``1 + F`` in place of ``S_1`` the first solve's tracking error
weighed ``C_1`` less than the next call's, and the next call moved about ``C_1`` times the
deviation left (3e-6 of NAV at a risk aversion of 100); with the deviation before costs it
moved about the first solve's costs again, and with the weights' variance alone (``(1 + F)^2``
in the denominator, the textbook form of DESIGN section 4) a contribution of ``F`` weighed the
tracking error ``1 + F`` times less than the next call did. ``z`` is a variable defined by
``z = z_0 + E\,\Delta + D u`` (security trades ``Delta``, derivative notional ``u``), which
keeps the band rows one entry wide.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from optirebal.program.conic import Affine
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


QUOTIENT_CONE = "tracking error cone"
"""Name of the block of the quotient's cone: the solver chain reads a program with it, and no
other cone, as a quadratic program but for it (:mod:`optirebal.program.solve`)."""

CONE_FLOOR = 1e-4
"""Smallest root of the tracking error (``|w|``, square root of weights) the cone's scaling
assumes."""


def exact_quotient(data: ProblemData) -> bool:
    """Whether the term divides by the post-trade NAV ``1 + F - C_1`` (a cone), not ``1 + F``
    (a quadratic): without impact (module docstring)."""
    return data.impact_model == "none"


def variance(data: ProblemData, e: np.ndarray) -> float:
    """``e' Sigma e`` with the risk model as a factor and specific variances."""
    return float(np.sum((data.factor.T @ e) ** 2) + np.sum(data.specific_variance * e**2))


class Tracking(BaseTerm):
    """The deviation ``z`` and its tracking-error cost (module docstring)."""

    name = "tracking error"

    def build(self, ctx: Context) -> None:
        d, bld = ctx.data, ctx.builder
        assert ctx.exposure_change is not None and ctx.linear_pair_cost is not None
        n_k = len(d.classes)
        z = bld.variable("deviation", n_k)
        bld.equal("deviation", z - ctx.exposure_change, d.exposure_before - d.target * d.scale)
        if d.risk_weight <= 0:
            return
        e = bld.variable("deviation after costs", n_k)
        cost = ctx.linear_cost()  # after e: the variables' order is the solver's path
        bld.equal("deviation after costs",
                  e - z - (cost_shift(d)[:, None] * np.ones((n_k, 1))) @ cost)
        exact = exact_quotient(d) and not ctx.quadratic
        root = np.sqrt(d.risk_weight if exact else d.risk_weight / d.scale)
        y = bld.variable("factor exposure", d.factor.shape[1])
        bld.equal("factor exposure", y - (d.factor.T * root) @ e)
        if exact:
            # ||w||^2 <= tau S written as (tau m) (S / m), the variable being tau m: with
            # m = 1 / |w| before the trades the cone's two sides are of one magnitude (tau ~ |w|^2
            # is far below S ~ 1), which Clarabel needs to reach its gap (without it, 5 of 5,000
            # fuzz cases moved with NAV x 1,000, two by 1e-4, after stopping at reduced accuracy)
            before = root * np.sqrt(variance(d, d.exposure_before - d.target * d.scale))
            m = 1.0 / max(before, CONE_FLOOR)
            tau = bld.variable("tracking error", 1)
            bld.minimize(tau, 1.0 / m)
            roots = Affine.stack([y, e * (np.sqrt(d.specific_variance) * root)])
            bld.squares_at_most(QUOTIENT_CONE, roots, tau, (d.scale - cost) * (1.0 / m))
        else:
            bld.minimize_squares("deviation after costs", d.specific_variance * root**2)
            bld.minimize_squares("factor exposure", 1.0)

    def objective(self, data: ProblemData, x: Point) -> float:
        from optirebal.program.terms.trades import linear_immediate_cost

        e = post_cost_deviation(data, x)
        nav = data.scale - linear_immediate_cost(data, x) if exact_quotient(data) else data.scale
        return data.risk_weight * variance(data, e) / nav
