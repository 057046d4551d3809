r"""Market impact: the 3/2-power law of Boyd et al. (2017), or its quadratic variant.

Per pair, with ``g`` the gross traded value (weights) and ``k`` the coefficient of
:func:`optirebal.program.data.impact_coefficients`:

.. math:: \text{power: } k\, g^{3/2}, \qquad \text{quadratic: } k\, g^2 .

Both are epigraphs ``t >= g^{3/2}`` (or ``g^2``) written with second-order cones, which serve
Clarabel and ECOS alike and take Clarabel fewer iterations than one power cone per pair:
``g^2 <= t w`` and ``w^2 <= g`` (so ``w <= g^{1/2}`` and ``t >= g^{3/2}``), two rotated cones of
size 3, scaled by :data:`ROOT_SCALE`; the quadratic needs the first alone with ``w = 1``. The
cost is paid from the account's
cash (:mod:`optirebal.program.terms.cash`) and counts in the post-cost bands.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from optirebal.program.conic import Affine
from optirebal.program.terms.base import BaseTerm, Context, Point
from optirebal.program.terms.trades import _negligible_to_zero, gross

if TYPE_CHECKING:
    from optirebal.program.data import ProblemData

POWER = {"power": 1.5, "quadratic": 2.0}

ROOT_SCALE = 0.01
r"""``c`` in the scaled epigraph of the 3/2 power: the program's variables are ``t' = t / c`` and
``w' = c w``, so that for a trade near ``c^2 = 1e-4`` of NAV (a typical order) ``g``, ``t'`` and
``w'`` are of one magnitude. On the 500-security peer problem this takes Clarabel from 28 to 25
iterations at the same accuracy (``benchmarks/bench_peer.py``)."""


def impact_cost(coefficient: np.ndarray, traded: np.ndarray, model: str | float) -> np.ndarray:
    """Impact (same units as ``coefficient``) of ``traded`` under ``model``, a name of
    :data:`POWER` or the power itself (:mod:`optirebal.execution` passes ``1 + beta``: 8/5 for
    Almgren et al., any ``1 + exponent`` of its ``PowerImpact``)."""
    if model == "none":
        return np.zeros_like(np.asarray(traded, dtype=float))
    power = POWER[model] if isinstance(model, str) else float(model)
    return coefficient * np.abs(traded) ** power


class Impact(BaseTerm):
    """Impact per pair as a second-order-cone epigraph (module docstring)."""

    name = "impact"

    def build(self, ctx: Context) -> None:
        d, bld = ctx.data, ctx.builder
        if d.impact_model == "none":
            return
        assert ctx.buys is not None and ctx.sells is not None and ctx.pair_cost is not None
        k = _negligible_to_zero(d.impact_cost[d.pair_security])
        # only pairs that can trade and cost something get an epigraph
        g_all = ctx.buys + ctx.pair_sells()
        active = np.flatnonzero((k > 0) & g_all.nonzero_rows())
        if len(active) == 0:
            return
        g = g_all[active]
        n = len(active)
        t = bld.variable("impact", n)
        one = Affine.ones(n, bld.n)
        if d.impact_model == "power":
            # t = c t', w = w' / c: g^2 <= t' w' and w'^2 <= c^2 g
            c = ROOT_SCALE
            w = bld.variable("impact root", n)
            bld.product_at_least("impact cone", t, w, g)
            bld.product_at_least("impact root cone", g, one * c**2, w)
        else:
            c = 1.0
            bld.product_at_least("impact cone", t, one, g)
        bld.minimize(t, k[active] * c)
        ctx.pair_cost = ctx.pair_cost + Affine.scatter(d.n_pairs, active, t * (k[active] * c))

    def costs(self, data: ProblemData, x: Point) -> dict[str, float]:
        k = data.impact_cost[data.pair_security]
        return {"impact": float(impact_cost(k, gross(data, x), data.impact_model).sum())}
