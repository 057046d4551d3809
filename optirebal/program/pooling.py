"""Lots the program cannot tell apart, solved as one variable.

A household's IRA and Roth hold many lots per security (the book's households: 117 of their 200
lots), and no rule reads their basis or date: every lot of one account and security in a
tax-free account has the same coefficient in every row and in the objective (no tax, the same
pair, exposure, account and counter-flow charge). Selling ``s_i`` in ``[0, cap_i]`` from each is
then exactly selling ``S = sum s_i`` in ``[0, sum cap_i]``: one variable instead of many, which
halves the sell variables and their bound rows of a typical household (Clarabel's time per
solve on the book's households 5.6 to 3.9 ms) without changing the optimum.

:func:`pooled` gives the program's view of the data with such lots merged, and the
:class:`Pools` that maps a pooled solution back to lots: a pooled sale is taken from its lots
oldest first (first in, first out), a convention where the split has no effect; before, the
interior-point solver left an arbitrary split between lots of equal cost.

Lots are merged only where the program provably cannot tell them apart: lots of tax-free
accounts, with equal tax rate, counter-flow charge and tax-model coefficients, and never under
a fixed lot relief order (``Tax.lot_relief`` other than ``optimal``, whose rows read each lot).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from optirebal.program.data import ProblemData

__all__ = ["Pools", "pooled"]


@dataclass(frozen=True)
class Pools:
    """Per lot its pool (``pool_of``), and the order lots give up their shares (oldest first)."""

    pool_of: np.ndarray  # per lot, its pool's position in the pooled data
    order: np.ndarray  # lot positions, pool by pool, oldest first
    caps: np.ndarray  # per lot, most it can sell (weights)

    def lot_sells(self, pooled_sells: np.ndarray) -> np.ndarray:
        """Per lot, its share of its pool's sale: lots are emptied oldest first."""
        out = np.zeros(len(self.pool_of))
        pools = self.pool_of[self.order]
        caps = self.caps[self.order]
        # cumulative capacity of the lots before each one within its pool
        before = np.cumsum(caps) - caps
        start = np.zeros(len(pooled_sells))
        first = np.r_[True, pools[1:] != pools[:-1]]
        start[pools[first]] = before[first]
        taken = np.clip(pooled_sells[pools] - (before - start[pools]), 0.0, caps)
        # the last lot a pool sells from takes what rounding left (the first lot when it sells
        # none), so that its lots add up to its sale exactly: a lot alone in its pool keeps the
        # solver's value as it is
        left = pooled_sells - np.bincount(pools, weights=taken, minlength=len(pooled_sells))
        at = np.zeros(len(pooled_sells), dtype=np.int64)
        at[pools[first]] = np.flatnonzero(first)  # each pool's first position (pools ascend)
        selling = np.flatnonzero(taken > 0)
        np.maximum.at(at, pools[selling], selling)  # its last position that sells, if any
        taken[at] += left
        out[self.order] = taken
        return out


def pooled(data: ProblemData) -> tuple[ProblemData, Pools] | None:
    """The data with the lots the program cannot tell apart merged (module docstring), and the
    map back to lots; None when no two lots merge."""
    if data.policy.tax.lot_relief != "optimal":
        return None
    n_l = len(data.lot_ids)
    free = ~data.taxable_lot
    if free.sum() < 2:
        return None
    tax = data.tax
    coefficients = [data.tax_rate, data.sell_counterflow]
    if tax is not None:
        coefficients += [tax.gain_short, tax.gain_long, tax.extra]
    # a key per lot: its own position when it is taxable, else its pair and coefficients
    rows = np.column_stack([np.where(free, data.lot_pair, -1 - np.arange(n_l)).astype(float),
                            *[np.where(free, c, 0.0) for c in coefficients]])
    first, pool_of = _groups(rows)
    if len(first) == n_l:
        return None
    # pools in the order of their first lot, so that unmerged lots keep their order
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    pool_of = rank[pool_of]
    lead = np.sort(first)  # per pool, its first lot
    n_p = len(lead)

    def total(values: np.ndarray) -> np.ndarray:
        return np.bincount(pool_of, weights=values, minlength=n_p)

    caps = np.minimum(data.sell_cap, data.lot_weight)
    view = data.replaced(
        lot_ids=[data.lot_ids[n] for n in lead], lot_pair=data.lot_pair[lead],
        lot_weight=total(data.lot_weight), sell_cap=total(data.sell_cap),
        gain_fraction=data.gain_fraction[lead], long_term=data.long_term[lead],
        days_to_long_term=data.days_to_long_term[lead], days_held=data.days_held[lead],
        taxable_lot=data.taxable_lot[lead], tax_rate=data.tax_rate[lead],
        sell_counterflow=data.sell_counterflow[lead],
        cap_reasons={key: why for key, why in data.cap_reasons.items() if key[0] == "buy"},
        tax=None if tax is None else dataclasses.replace(
            tax, gain_short=tax.gain_short[lead], gain_long=tax.gain_long[lead],
            extra=tax.extra[lead], exclusions=dataclasses.replace(
                tax.exclusions, washed_lot=tax.exclusions.washed_lot[lead], washed_reason={})))
    # oldest first within a pool: the most days held first, then the lot's position
    order = np.lexsort((np.arange(n_l), -data.days_held, pool_of))
    return view, Pools(pool_of, order, caps)


def _groups(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The equal rows of ``rows``: per group (in the order of its rows sorted) its first row,
    and per row its group; what ``np.unique(rows, axis=0, return_index=True,
    return_inverse=True)`` returns, at a fifth of its cost (a lexicographic sort, stable, so a
    group's first row is its smallest position)."""
    order = np.lexsort(rows.T[::-1])
    ranked = rows[order]
    starts = np.r_[True, (ranked[1:] != ranked[:-1]).any(axis=1)]
    group = np.empty(len(rows), dtype=np.int64)
    group[order] = np.cumsum(starts) - 1
    return order[starts], group
