r"""Tracking error: the certainty-equivalent cost of the post-trade deviation from target.

With ``z = x - t (1 + F)`` the post-trade class exposure less the target (units of ``V``, before
costs) and the risk model ``F Omega F' + diag(delta)`` as a factor ``F_s`` and specific variances,

.. math:: \frac{\gamma H}{2 (1 + F)^2} \left( \|F_s^\top z\|^2 + \|\delta^{1/2} \circ z\|^2 \right),

written with ``y = F_s^\top z`` so that the quadratic is diagonal. ``z`` is a variable defined by
``z = z_0 + E\,\Delta + D u`` (security trades ``Delta``, derivative notional ``u``), which keeps
the band rows one entry wide.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from optirebal.program.terms.base import BaseTerm, Context, Point

if TYPE_CHECKING:
    from optirebal.program.data import ProblemData


def risk_scale(data: ProblemData) -> float:
    """``sqrt(gamma H / 2) / (1 + F)``: the factor that turns ``z`` into the risk term's root."""
    return float(np.sqrt(data.risk_weight) / data.scale)


class Tracking(BaseTerm):
    """The deviation ``z`` and its tracking-error cost (module docstring)."""

    name = "tracking error"

    def build(self, ctx: Context) -> None:
        d, bld = ctx.data, ctx.builder
        assert ctx.exposure_change is not None
        z = bld.variable("deviation", len(d.classes))
        bld.equal("deviation", z - ctx.exposure_change, d.exposure_before - d.target * d.scale)
        root = risk_scale(d)
        if root > 0:
            bld.minimize_squares("deviation", d.specific_variance * root**2)
            y = bld.variable("factor exposure", d.factor.shape[1])
            bld.equal("factor exposure", y - (d.factor.T * root) @ z)
            bld.minimize_squares("factor exposure", 1.0)

    def objective(self, data: ProblemData, x: Point) -> float:
        z = x.deviation(data)
        root = risk_scale(data)
        return float(root**2 * (np.sum((data.factor.T @ z) ** 2)
                                + np.sum(data.specific_variance * z**2)))
