r"""Tax data of the program: per-lot rates, wash-sale caps, the exact-netting regions, a budget.

:func:`with_tax` finishes the problem data (:mod:`optirebal.program.data`) with everything tax
adds, applying the pure rules of :mod:`optirebal.tax` (netting, wash-sale exclusions); the
program's tax term (:mod:`optirebal.program.terms.tax`) reads it.

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

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from optirebal.errors import InputError
from optirebal.program.caps import close
from optirebal.tax.exclusions import Exclusions, wash_exclusions
from optirebal.tax.netting import REGIONS, TaxRates, region_affine

if TYPE_CHECKING:
    from optirebal.program.data import ProblemData

__all__ = ["TaxData", "region_coefficients", "region_data", "with_tax"]


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


def _substitutes(data: ProblemData) -> np.ndarray:
    """Per security, whether it is a listed substitute; checks the policy's list.

    Raises
    ------
    InputError
        An unknown class or security, a substitute that does not load on its class, or one in
        the same substantially-identical group as a security of the class it replaces.
    """
    subs = data.policy.tax.substitutes
    sec = data.portfolio.securities
    exposures = data.portfolio.exposures
    out = np.zeros(len(data.securities), dtype=bool)
    for name, listed in subs.items():
        if name not in exposures.index:
            raise InputError(f"no security loads on class {name!r}", field="tax.substitutes",
                             row=name)
        loads = exposures.loc[name]
        listed_set = set(listed)
        for security in listed:
            if security not in sec.index:
                raise InputError(f"unknown security {security!r}", field="tax.substitutes",
                                 row=name)
            if not loads[security] > 0:
                raise InputError(f"substitute {security!r} does not load on class {name!r}",
                                 field="tax.substitutes", row=name)
        replaced = [s for s in sec.index if loads[s] > 0 and s not in listed_set]
        for security in listed:
            group = sec.loc[security, "group"]
            same = [s for s in replaced if sec.loc[s, "group"] == group]
            if same:
                raise InputError(
                    f"substitute {security!r} is in group {group!r} with {same[0]!r}, the "
                    "security it would replace: a substitute must come from another group",
                    field="tax.substitutes", row=name)
            out[data.securities.index(security)] = True
    return out


def with_tax(data: ProblemData) -> ProblemData:
    """Problem data with the tax model, wash-sale exclusions and harvest mode applied.

    Sets the per-lot ``tax_rate`` (tax plus short-term penalty, per unit of lot sold, fraction
    of NAV; a harvested loss counted at ``1 - harvest_discount`` of its amount), caps buys of
    groups blocked by a recent loss sale, caps sells of wash-sale loss lots under
    ``wash_sale_lots = "no_sell"``, the caps of ``harvest_only``,
    the swap cost of substitutes, and the :class:`TaxData` of the exact model and the budget.
    With the ``linear`` model, no budget and no exclusions the data is unchanged.
    """
    pf, policy = data.portfolio, data.policy
    tax = policy.tax
    nav = data.nav
    substitute = _substitutes(data)
    exc = wash_exclusions(pf.securities, pf.accounts, pf.lots, pf.lot_values.to_numpy(),
                          pf.as_of, pf.history, pf.scheduled)
    buy_cap, sell_cap = data.buy_cap.copy(), data.sell_cap.copy()
    reasons = dict(data.cap_reasons)
    taxable = data.taxable_lot
    gain = data.gain_fraction
    washed = exc.washed_lot
    if tax.wash_sale_lots == "no_sell":
        where = np.flatnonzero(washed)
        close(sell_cap, where, reasons, "sell", [exc.washed_reason[int(n)] for n in where])
    else:
        gain = np.where(washed, np.maximum(gain, 0.0), gain)  # the loss is disallowed
    group = pf.securities["group"].to_numpy()
    for name, (_, why) in exc.blocked.items():
        members = np.flatnonzero(group == name)
        close(buy_cap, np.flatnonzero(np.isin(data.pair_security, members)), reasons, "buy", why)
    if policy.mode == "harvest_only":
        keep = taxable & (gain < 0)
        close(sell_cap, np.flatnonzero(~keep), reasons, "sell",
             "mode harvest_only: only loss lots of taxable accounts are sold")
        account_taxable = (pf.accounts["type"] == "taxable").to_numpy()
        close(buy_cap, np.flatnonzero(~account_taxable[data.pair_account]), reasons, "buy",
             "mode harvest_only: no trades in tax-free accounts")
        # the sale proceeds fund the replacements; idle cash is not deployed in this mode
        reserve = np.maximum(data.reserve, data.cash + data.flow)
        data = dataclasses.replace(data, reserve=reserve)

    long_term = data.long_term
    rate = np.where(long_term, tax.long_term_rate, tax.short_term_rate)
    extra = np.zeros(len(gain))
    tax_rate = data.tax_rate
    if tax.model != "none":
        near = (taxable & ~long_term & (data.days_to_long_term <= tax.near_long_term_days)
                & (gain > 0))
        extra = tax.short_term_penalty * gain * near
        # a harvested loss counts at (1 - discount) of its amount: the lower basis of the
        # replacement means a later gain that gives part of it back
        gain = np.where(taxable & (gain < 0), (1.0 - tax.harvest_discount) * gain, gain)
        tax_rate = np.where(taxable, rate * gain, 0.0) + extra
    buy_counterflow = data.buy_counterflow
    if tax.swap_tracking_cost_bps > 0 and substitute.any():
        buy_counterflow = buy_counterflow + tax.swap_tracking_cost_bps / 1e4 * \
            substitute[data.pair_security]

    notes = list(exc.notes)
    notes += [why for _, why in exc.blocked.values()]
    kinds = pf.accounts["type"]
    free = sorted(a for a in pf.lots["account"].unique() if kinds[a] != "taxable")
    if free and tax.model != "none":
        notes.append(f"lots in tax-free accounts ({', '.join(free)}) carry cost basis and "
                     "acquisition dates: accepted, tax ignored there")
    budget = tax.gain_budget / nav
    structure = (tax.model == "exact", bool(np.isfinite(budget)))
    taxable_gain = np.where(taxable, gain, 0.0)
    info = TaxData(
        model=tax.model, structure=structure,
        rates=TaxRates(tax.short_term_rate, tax.long_term_rate, tax.ordinary_rate,
                       tax.offset / nav, tax.loss_carry_value),
        short0=tax.realized_short / nav, long0=tax.realized_long / nav,
        gain_short=np.where(long_term, 0.0, taxable_gain),
        gain_long=np.where(long_term, taxable_gain, 0.0), extra=extra, budget=budget,
        budget_penalty=tax.gain_budget_penalty, exclusions=exc, substitute=substitute,
        notes=tuple(notes))
    return dataclasses.replace(data, tax_rate=tax_rate, buy_cap=buy_cap, sell_cap=sell_cap,
                               cap_reasons=reasons, buy_counterflow=buy_counterflow, tax=info)


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


def region_data(data: ProblemData, region: int) -> ProblemData:
    """``data`` bound to one netting region: its per-lot rates and region in ``data.tax``."""
    info = data.tax
    assert info is not None and info.exact
    rate = region_coefficients(info, region, data.tax_rate)[3]
    return dataclasses.replace(data, tax_rate=rate, tax=dataclasses.replace(info, region=region))
