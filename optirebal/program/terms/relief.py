r"""Lot relief in a fixed order (``Tax.lot_relief`` ``hifo``, ``fifo``, ``lifo``).

With ``lot_relief = "optimal"`` the program sells each lot freely (specific identification) and
this term adds nothing. With a fixed order a sale of a position relieves its lots strictly in
that order (:mod:`optirebal.tax.relief`), and the decode re-assigns each position's total to its
lots so (:mod:`optirebal.decode.relief`). The program keeps one sell variable per lot and adds,
for consecutive lots ``a`` then ``b`` of one position in the order, both open to sale,

.. math:: \frac{s_b}{c_b} \le \frac{s_a}{c_a},

with ``c`` the lot's sell cap (weights): the fraction sold never increases along the order. A
lot held at zero (a locked lot, a ``no_sell`` wash-sale lot, a trade closed between solves) has
no place in the chain: the order runs over the lots that may be sold, and skips the others.

The fraction vectors ``1 >= f_1 >= ... >= f_m >= 0`` form a simplex whose vertices are the
strict-order sales (the first ``k`` lots sold in full, the rest not at all), so the least
per-lot tax the program can reach for a position total ``X`` is the lower convex envelope of the
strict-order tax ``F(X)``. Where ``F`` is convex on the traded range (under a linear tax, the
per-unit tax non-decreasing along the order: HIFO under one rate, for instance) the envelope is
``F`` and the program prices the order exactly; elsewhere the program may sell a stretch of lots
pro rata and underestimate the order's tax, which the decode reports (event ``lot_relief``).
Each row is scaled by ``1 / max(c_a, c_b)`` so its coefficients are at most 1.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from optirebal.program.terms.base import BaseTerm, Context, Point
from optirebal.tax.relief import relief_order

if TYPE_CHECKING:
    from optirebal.program.data import ProblemData

__all__ = ["LotRelief", "lot_order", "relief_chain"]


def lot_order(data: ProblemData) -> np.ndarray | None:
    """Every lot, by position (account, security pair) and within it in relief order; None for
    ``lot_relief = "optimal"``."""
    method = data.policy.tax.lot_relief
    if method == "optimal":
        return None
    lots = data.portfolio.lot_columns
    basis = lots.floats("cost_basis") / lots.floats("quantity")
    # the same as_of for every lot: fewer days held is a later acquisition
    return relief_order(method, data.lot_pair, basis, -data.days_held, np.asarray(data.lot_ids))


def relief_chain(data: ProblemData) -> sp.csr_matrix:
    """The rows ``(c_a s_b - c_b s_a) / max(c_a, c_b) <= 0`` (chain rows x lots).

    One row per consecutive pair ``a`` then ``b`` of lots of one position in relief order,
    both with a positive sell cap ``c``; no rows for ``"optimal"``.
    """
    n_l = len(data.lot_ids)
    order = lot_order(data)
    if order is None:
        return sp.csr_matrix((0, n_l))
    order = order[data.sell_cap[order] > 0]
    same = data.lot_pair[order[:-1]] == data.lot_pair[order[1:]]
    a, b = order[:-1][same], order[1:][same]
    cap_a, cap_b = data.sell_cap[a], data.sell_cap[b]
    scale = np.maximum(cap_a, cap_b)
    rows = np.arange(len(a))
    return sp.csr_matrix((np.concatenate((cap_a / scale, -cap_b / scale)),
                          (np.concatenate((rows, rows)), np.concatenate((b, a)))),
                         shape=(len(a), n_l))


class LotRelief(BaseTerm):
    """A fixed relief order: the fraction of each lot sold never increases along the order
    (module docstring). No cost of its own."""

    name = "lot relief"

    def applies(self, data: ProblemData) -> bool:
        return data.policy.tax.lot_relief != "optimal"

    def build(self, ctx: Context) -> None:
        assert ctx.sells is not None
        chain = relief_chain(ctx.data)
        if chain.shape[0]:
            # the order is the policy's reading of the law, not a limit that may give: never
            # relaxed in the elastic form (like the lot quantities)
            ctx.builder.at_most("lot relief order", chain @ ctx.sells)

    def residual(self, data: ProblemData, x: Point) -> float:
        chain = relief_chain(data)
        return float(np.max(chain @ x.sells, initial=0.0))
