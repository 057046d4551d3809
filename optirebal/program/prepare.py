"""Preparing the problem data: the portfolio and policy in weights, then everything tax adds.

:func:`build_problem_data` is the one entry: :func:`optirebal.program.data.base_problem_data`
(arrays, checks), then :func:`with_tax` (per-lot tax rates, wash-sale exclusions from the pure
rules of :mod:`optirebal.tax`, harvest mode, substitutes, the exact model's data).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from optirebal.errors import InputError
from optirebal.policy import Policy
from optirebal.portfolio import Portfolio
from optirebal.program.caps import close
from optirebal.program.data import ProblemData, base_problem_data
from optirebal.program.taxdata import TaxData, region_coefficients
from optirebal.tax.exclusions import wash_exclusions

__all__ = ["build_problem_data", "region_data", "with_tax"]


def build_problem_data(portfolio: Portfolio, policy: Policy) -> ProblemData:
    """Problem data of ``portfolio`` under ``policy``, tax and wash-sale exclusions applied.

    See :func:`~optirebal.program.data.base_problem_data` (arrays, checks) and :func:`with_tax`.
    """
    return with_tax(base_problem_data(portfolio, policy))


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
    if not subs:
        return out
    # positions and arrays, not pandas scalar lookups: this runs for every household
    position = {str(s): n for n, s in enumerate(sec.index)}
    group = data.portfolio.security_columns["group"]
    classes = {str(k): n for n, k in enumerate(exposures.index)}
    matrix = exposures.to_numpy(dtype=float)
    column = exposures.columns.get_indexer(sec.index)
    for name, listed in subs.items():
        if name not in classes:
            raise InputError(f"no security loads on class {name!r}", field="tax.substitutes",
                             row=name)
        loads = matrix[classes[name], column]  # per security, in the order of sec
        listed_set = set(listed)
        for security in listed:
            if security not in position:
                raise InputError(f"unknown security {security!r}", field="tax.substitutes",
                                 row=name)
            if not loads[position[security]] > 0:
                raise InputError(f"substitute {security!r} does not load on class {name!r}",
                                 field="tax.substitutes", row=name)
        replaced = [n for n, s in enumerate(sec.index) if loads[n] > 0 and s not in listed_set]
        for security in listed:
            same = [n for n in replaced if group[n] == group[position[security]]]
            if same:
                raise InputError(
                    f"substitute {security!r} is in group {group[position[security]]!r} with "
                    f"{sec.index[same[0]]!r}, the security it would replace: a substitute must "
                    "come from another group", field="tax.substitutes", row=name)
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
    exc = wash_exclusions(pf.security_columns, pf.account_columns, pf.lot_columns,
                          pf.lot_values.to_numpy(),
                          pf.as_of, pf.history, pf.scheduled, days_held=data.days_held)
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
    group = pf.security_columns["group"]
    for name, (_, why) in exc.blocked.items():
        members = np.flatnonzero(group == name)
        close(buy_cap, np.flatnonzero(np.isin(data.pair_security, members)), reasons, "buy", why)
    if policy.mode == "harvest_only":
        keep = taxable & (gain < 0)
        close(sell_cap, np.flatnonzero(~keep), reasons, "sell",
             "mode harvest_only: only loss lots of taxable accounts are sold")
        account_taxable = pf.account_columns["type"] == "taxable"
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
    kinds = dict(zip(pf.accounts.index, pf.account_columns["type"], strict=True))
    free = sorted(a for a in set(pf.lot_columns["account"]) if kinds[a] != "taxable")
    if free and tax.model != "none":
        notes.append(f"lots in tax-free accounts ({', '.join(free)}) carry cost basis and "
                     "acquisition dates: accepted, tax ignored there")
    budget = tax.gain_budget / nav
    structure = (tax.model == "exact", bool(np.isfinite(budget)))
    taxable_gain = np.where(taxable, gain, 0.0)
    info = TaxData(
        model=tax.model, structure=structure,
        rates=tax.rates(scale=nav),
        short0=tax.realized_short / nav, long0=tax.realized_long / nav,
        gain_short=np.where(long_term, 0.0, taxable_gain),
        gain_long=np.where(long_term, taxable_gain, 0.0), extra=extra, budget=budget,
        budget_penalty=tax.gain_budget_penalty, exclusions=exc, substitute=substitute,
        notes=tuple(notes))
    return data.replaced(tax_rate=tax_rate, buy_cap=buy_cap, sell_cap=sell_cap,
                         cap_reasons=reasons, buy_counterflow=buy_counterflow, tax=info)


def region_data(data: ProblemData, region: int) -> ProblemData:
    """``data`` bound to one netting region: its per-lot rates and region in ``data.tax``."""
    info = data.tax
    assert info is not None and info.exact
    rate = region_coefficients(info, region, data.tax_rate)[3]
    return data.replaced(tax_rate=rate, tax=dataclasses.replace(info, region=region))
