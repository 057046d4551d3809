r"""Tax data of the program: rates, year-to-date gains, the exact-netting regions, a budget.

:func:`optirebal.program.prepare.with_tax` fills it; the program's tax term
(:mod:`optirebal.program.terms.tax`) reads it.

Realized gains in weights (fractions of pre-trade NAV ``V``), for lot sells ``s``:

.. math::

    S = S_0 / V + g_S^\top s, \qquad L = L_0 / V + g_L^\top s,

with ``g_S[l] = g_l`` for short-term lots of taxable accounts (0 otherwise), ``g_L`` likewise for
long-term lots, and ``g_l = (value - basis) / value`` the lot's gain fraction (0 for a loss lot
whose loss a wash sale disallows). The ``exact`` model adds, for one region ``r`` at a time
(DESIGN section 5; one region at a time, see :mod:`optirebal.program.regions`),

.. math::

    A_r \begin{bmatrix} g_S^\top \\ g_L^\top \end{bmatrix} s \ge
        -A_r \begin{bmatrix} S_0 \\ L_0 \end{bmatrix} / V - a_{d,r} D / V, \qquad
    \text{tax} = (c_{s,r} g_S + c_{l,r} g_L)^\top s + c_{0,r} / V + c_{s,r} S_0 / V
        + c_{l,r} L_0 / V,

where ``A_r`` holds at most two rows of :data:`optirebal.tax.netting.REGIONS` (a missing row is
``0 >= -1``) and ``(c_s, c_l, c_0)`` is :func:`~optirebal.tax.netting.region_affine`. The
per-lot part goes into the program's ``tax_rate``. A gain budget adds
``(g_S + g_L)^\top s \le B / V + e``, ``0 \le e \le \bar e``
with ``\bar e = 0`` for the hard cap and a cost ``\pi e`` in the penalty form.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from optirebal.tax.exclusions import Exclusions
from optirebal.tax.netting import REGIONS, TaxRates, region_affine

__all__ = ["TaxData", "region_coefficients"]


@dataclass(frozen=True, eq=False)
class TaxData:
    """The tax side of the problem data, in weights (fractions of pre-trade NAV).

    Attributes
    ----------
    model : str
        ``linear``, ``exact`` or ``none``.
    structure : tuple
        ``(exact, budget)``: what the tax adds to the program's shape (part of its cache key).
    rates : TaxRates
        Rates with the offset ``D / V`` and ``kappa``.
    short0, long0 : float
        Year-to-date net short- and long-term gain over ``V``.
    gain_short, gain_long : ndarray, per lot
        Realized gain per unit of lot sold, short-term and long-term (0 outside taxable
        accounts, and 0 for loss lots whose loss a wash sale disallows).
    extra : ndarray, per lot
        Cost per unit sold besides the tax: the short-term penalty.
    budget, budget_penalty : float
        Gain budget ``B / V`` (inf for none) and the cost per unit above it (inf: hard cap).
    exclusions : Exclusions
        The wash-sale exclusions applied to the caps and rates.
    substitute : ndarray of bool, per security
        Listed as a substitute of some class.
    notes : tuple of str
        What a user should know (exclusions, tax-free lots with tax data).
    region : int or None
        The netting region the program is bound to (exact model), None for none.
    """

    model: str
    structure: tuple[bool, bool]
    rates: TaxRates
    short0: float
    long0: float
    gain_short: np.ndarray
    gain_long: np.ndarray
    extra: np.ndarray
    budget: float
    budget_penalty: float
    exclusions: Exclusions
    substitute: np.ndarray
    notes: tuple[str, ...] = ()
    region: int | None = None

    @property
    def exact(self) -> bool:
        return self.structure[0]

    @property
    def has_budget(self) -> bool:
        return self.structure[1]


def region_coefficients(info: TaxData, region: int | None,
                        fallback: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
    """Region rows (2 x lots), bounds (2), tax constant and per-lot tax rate, in weights.

    ``region`` None gives no region constraint and the ``fallback`` per-lot rates (the linear
    model): a valid relaxation, used when the program is solved outside the region driver.
    """
    n_l = len(info.gain_short)
    rows, bound = np.zeros((2, n_l)), np.full(2, -1.0)
    if region is None:
        return rows, bound, 0.0, fallback
    D = info.rates.offset
    for k, (a_s, a_l, a_d) in enumerate(REGIONS[region]):
        rows[k] = a_s * info.gain_short + a_l * info.gain_long
        bound[k] = -(a_s * info.short0 + a_l * info.long0 + a_d * D)
    c_s, c_l, c_0 = region_affine(region, info.rates)
    constant = c_0 + c_s * info.short0 + c_l * info.long0
    rate = c_s * info.gain_short + c_l * info.gain_long + info.extra
    return rows, bound, constant, rate
