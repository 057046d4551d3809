"""A re-solve as the program just solved, with the trades it closes removed.

A call solves again after it closes trades: the buys of a group and the loss sales of another
after a same-solve wash-sale conflict, the orders below the minimum trade
(:mod:`optirebal.program.fixes`). Such data differs from the last only in caps set to zero,
and its program is the last program with those variables fixed at zero: their columns removed,
and with them the rows left empty (their bounds, ``0 <= cap``) and the tie-break square of a
pair that can no longer trade (its ``positions after`` column and row). Removing them costs a
tenth of a millisecond where assembling again cost two (on the book's households, where a
third of the solves are such re-solves).

The program differs from the one :func:`~optirebal.program.terms.build_program` assembles for
the new data in one respect: the impact cones of a pair that can no longer trade stay, pinned
at zero, where the assembly leaves them out. Both have the same optimum; on the book's 77
re-solves of its first 150 households Clarabel took the same iterations to the same statuses,
objectives within 6e-11 (its gap).

Anything else changed (a cap lowered but not closed, a pooled sale whose lots close only in
part, the soft bands' cost credit, a fixed relief order, the exact tax model's regions) is
assembled afresh.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.sparse as sp

from optirebal.program.conic import NONNEG, ZERO, Affine, ConicProgram
from optirebal.program.data import ProblemData
from optirebal.program.terms.base import Context
from optirebal.program.terms.trades import movable_pairs

__all__ = ["closes_only", "without_closed"]

_CAPS = ("buy_cap", "sell_cap", "cap_reasons")
_AFTER = "positions after"


def closes_only(before: ProblemData, after: ProblemData) -> bool:
    """Whether ``after`` is ``before`` with trades closed and nothing else changed: every
    field the same object but the caps (as :meth:`ProblemData.with_closed` makes it), and
    every cap that changed went from open to zero."""
    for field in dataclasses.fields(ProblemData):
        if field.name not in _CAPS and getattr(before, field.name) is not getattr(after,
                                                                                 field.name):
            return False
    if before.policy.tax.lot_relief != "optimal" or (before.tax is not None and before.tax.exact):
        return False  # relief rows read the caps; the exact model solves region by region
    return _caps_only_closed(before, after)


def _caps_only_closed(before: ProblemData, after: ProblemData) -> bool:
    """Whether every buy and sell cap of ``after`` is that of ``before`` or closed from open."""
    return all(len(old) == len(new) and bool(np.all((new == old) | ((new <= 0) & (old > 0))))
               for old, new in ((before.buy_cap, after.buy_cap),
                                (before.sell_cap, after.sell_cap)))


def without_closed(program: ConicProgram, ctx: Context, before: ProblemData,
                   after: ProblemData) -> tuple[ConicProgram, Context] | None:
    """``program`` (built from ``before``, with its context) for ``after``, the same data with
    trades closed (:func:`closes_only`, on the data the program was built from: the pooled
    views when lots are pooled); None when it cannot be derived (then assemble afresh)."""
    assert ctx.buys is not None and ctx.sells is not None
    if not _caps_only_closed(before, after):
        return None  # a pooled sale whose lots close only in part: its cap changed
    closed_buys = np.flatnonzero((after.buy_cap <= 0) & (before.buy_cap > 0))
    closed_sells = np.flatnonzero((after.sell_cap <= 0) & (before.sell_cap > 0))
    columns = np.concatenate([ctx.buys.cols[np.isin(ctx.buys.rows, closed_buys)],
                              ctx.sells.cols[np.isin(ctx.sells.rows, closed_sells)]])
    rows = np.zeros(0, dtype=np.int64)
    moved_before = movable_pairs(before)
    gone = np.flatnonzero(~np.isin(moved_before, movable_pairs(after)))
    if len(gone):
        if _AFTER not in program.variables:
            return None
        # a pair that can no longer trade: its position after and its square go, as the
        # assembly leaves them out (the position is fixed at what it holds)
        columns = np.concatenate([columns, program.variables[_AFTER].start + gone])
        rows = program.blocks[_AFTER].start + gone
    if len(columns) == 0:
        return None
    keep = np.ones(program.n, dtype=bool)
    keep[columns] = False
    A = program.A[:, keep]
    kept_rows = np.ones(A.shape[0], dtype=bool)
    kept_rows[rows] = False
    empty = np.diff(A.tocsr().indptr) == 0
    kinds = np.concatenate([np.full(size, kind, dtype=object) for kind, size in program.cones])
    droppable = empty & np.isin(kinds, [ZERO, NONNEG])
    # an empty row must hold as it stands (0 <= b, or 0 == b) to be dropped
    holds = np.where(kinds == ZERO, program.b == 0, program.b >= 0)
    if (droppable & ~holds & kept_rows).any():
        return None
    kept_rows &= ~droppable
    old_to_new = np.full(program.n, -1, dtype=np.int64)
    old_to_new[keep] = np.arange(int(keep.sum()))
    fixed = np.zeros(program.n, dtype=bool)
    if len(gone):
        fixed[program.variables[_AFTER].start + gone] = True
    patched_ctx = _remapped(ctx, old_to_new, fixed)
    if patched_ctx is None:
        return None
    return ConicProgram(
        P=sp.csc_matrix(program.P[keep][:, keep]), q=program.q[keep],
        A=sp.csc_matrix(A[kept_rows]),
        b=program.b[kept_rows], cones=_cones(program.cones, kept_rows),
        blocks=_slices(program.blocks, kept_rows), variables=_slices(program.variables, keep),
        constant=program.constant, powers=list(program.powers)), patched_ctx


def _cones(cones: list[tuple[str, int]], kept: np.ndarray) -> list[tuple[str, int]]:
    """The cones with their rows kept (only zero and non-negative rows are ever dropped)."""
    out: list[tuple[str, int]] = []
    start = 0
    for kind, size in cones:
        left = int(kept[start:start + size].sum())
        start += size
        if left:
            out.append((kind, left))
    return out


def _slices(named: dict[str, slice], kept: np.ndarray) -> dict[str, slice]:
    """Contiguous named ranges after dropping what ``kept`` marks False."""
    before = np.concatenate([[0], np.cumsum(kept)])
    return {name: slice(int(before[s.start]), int(before[s.stop])) for name, s in named.items()}


def _remapped(ctx: Context, old_to_new: np.ndarray, fixed: np.ndarray) -> Context | None:
    """The context's expressions on the columns kept: a removed trade is zero, so its entries
    go; None if an expression reads a removed position after (``fixed``: not zero)."""
    changes: dict[str, Affine] = {}
    for field in dataclasses.fields(Context):
        value = getattr(ctx, field.name)
        if not isinstance(value, Affine):
            continue
        if fixed[value.cols].any():
            return None
        new = old_to_new[value.cols]
        changes[field.name] = Affine.of(value.rows[new >= 0], new[new >= 0],
                                        value.vals[new >= 0],
                                        (value.size, int((old_to_new >= 0).sum())),
                                        value.constant)
    return dataclasses.replace(ctx, **changes)  # type: ignore[arg-type]
