r"""Destination bands on post-cost weights, hard or soft.

Costs ``C`` (every cost paid now, weights) shrink the post-trade NAV to ``1 + F - C``. A risky
class stays under its upper edge after costs iff ``x + hi C <= hi (1 + F)`` (exact, convex); its
lower edge is held before costs (``x >= lo (1 + F)``, conservative by ``lo C``). Cash pays the
costs: its lower edge is exact, ``x - (1 - lo) C >= lo (1 + F)``, and its upper edge is held
before costs. ``to_target`` collapses the band and holds it before costs (after them it cannot
be both). In ``z = x - t (1 + F)``:

.. math::

    z + u_c C \le (hi - t)(1 + F) + o, \qquad z - l_c C \ge (lo - t)(1 + F) - v,

with ``C`` the epigraph variable of the costs paid now, and soft-band slacks
``0 <= o, v <= SOFT_SLACK_CAP`` costing ``band_penalty`` each (absent for hard bands).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from optirebal.program.terms.base import BaseTerm, Context, Point

if TYPE_CHECKING:
    from optirebal.program.data import ProblemData

SOFT_SLACK_CAP = 10.0
"""Largest band violation (weight) a soft band may take; large enough never to bind."""


def band_cost_weights(data: ProblemData) -> tuple[np.ndarray, np.ndarray]:
    """Per class, the multipliers of the total cost in the upper and lower band rows."""
    n_k = len(data.classes)
    if data.policy.mode == "to_target":
        return np.zeros(n_k), np.zeros(n_k)
    is_cash = np.array([k == data.policy.cash_class for k in data.classes])
    upper = np.where(is_cash, 0.0, np.clip(data.upper, 0.0, None))
    lower = np.where(is_cash, np.clip(1.0 - data.lower, 0.0, None), 0.0)
    return upper, lower


def band_excess(data: ProblemData, x: Point) -> np.ndarray:
    """Per class, how far (weights of post-trade NAV) the band rows are broken at ``x``,
    soft-band slack allowed; negative inside."""
    from optirebal.program.terms import immediate_cost

    deviation = data.deviation(x.buys, x.sells, x.derivatives if len(x.derivatives) else None)
    cost = immediate_cost(data, x)
    upper_cost, lower_cost = band_cost_weights(data)
    over = np.maximum(deviation + upper_cost * cost - (data.upper - data.target) * data.scale,
                      (data.lower - data.target) * data.scale - deviation + lower_cost * cost)
    slack = SOFT_SLACK_CAP if data.soft_bands else 0.0
    return over / data.scale - slack


class Bands(BaseTerm):
    """Band rows per class, with soft slacks when the policy asks (module docstring)."""

    name = "bands"

    def build(self, ctx: Context) -> None:
        d, bld = ctx.data, ctx.builder
        assert ctx.immediate_cost is not None
        z = bld.select("deviation")
        upper_cost, lower_cost = band_cost_weights(d)
        upper = z
        lower = -z
        if upper_cost.any() or lower_cost.any():
            total = bld.variable("total cost", 1)
            bld.at_most("total cost", ctx.immediate_cost - total)
            one = np.ones((len(d.classes), 1))
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
        bld.at_most("band upper", upper, (d.upper - d.target) * d.scale, relax=True,
                    labels=lambda k: f"band upper {d.classes[k]!r} ({d.upper[k]:.4g})")
        bld.at_most("band lower", lower, -(d.lower - d.target) * d.scale, relax=True,
                    labels=lambda k: f"band lower {d.classes[k]!r} ({d.lower[k]:.4g})")

    def residual(self, data: ProblemData, x: Point) -> float:
        return float(np.max(band_excess(data, x) * data.scale, initial=0.0))
