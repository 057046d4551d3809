r"""The exact US-netting model: the program solved per region, regions pruned.

The tax ``T(S, L)`` of the year's net short- and long-term gains is affine on each of the five
regions of DESIGN section 5 but not convex overall. :func:`solve_tax_program` solves the
program (:mod:`optirebal.program.terms.tax`) bound to one region at a time and keeps the best.
Regions are skipped when they cannot be reached or cannot win, by a bound that is exact
(nothing that could win is skipped):

- *reachable box*: with ``0 <= s <= cap``, ``S`` lies in
  ``[S_0/V + sum(min(g_S cap, 0)), S_0/V + sum(max(g_S cap, 0))]``, likewise ``L``; a region
  whose constraints miss that box is infeasible;
- *cannot win*: write the objective as ``f(S, L) + T_r(S, L)``, where ``f`` is the optimal value
  of every other term given the realized ``(S, L)``; ``f`` is convex (a partial minimization of a
  convex program over an affine constraint). A solved region ``q`` with optimum ``P_q`` and
  multipliers ``lambda_q`` of its region rows ``A_q P >= b_q`` gives the subgradient
  ``y_q = A_q' lambda_q - c_q`` of ``f`` at ``P_q`` (stationarity), hence the cut
  ``f(P) >= f(P_q) + y_q' (P - P_q)``. The least value of ``max_q(cut_q) + T_r`` over region
  ``r`` within the box, a linear program in three variables, bounds region ``r``'s optimum from
  below; when it is no better than the best answer found, the region is not solved.

The first region solved is the one holding the year-to-date point ``(S_0, L_0)``; then the
region with the lowest bound, until every region left is pruned.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np
from scipy.optimize import linprog

from optirebal.errors import SolverError
from optirebal.program.prepare import region_data
from optirebal.program.solve import Infeasible, Solution, solve_program
from optirebal.program.taxdata import TaxData
from optirebal.tax.netting import REGIONS, region_affine, region_of

if TYPE_CHECKING:
    from optirebal.program.data import ProblemData

__all__ = ["reachable_box", "region_bound", "solve_tax_program"]

PRUNE_TOLERANCE = 1e-10
"""A region is skipped when its bound is above the best objective less this (fraction of NAV)."""


def _rows(info: TaxData, region: int) -> tuple[np.ndarray, np.ndarray]:
    """Region ``A P >= b`` in the (S, L) plane (weights), padded to two rows."""
    A, b = np.zeros((2, 2)), np.full(2, -1.0)
    for k, (a_s, a_l, a_d) in enumerate(REGIONS[region]):
        A[k] = (a_s, a_l)
        b[k] = -a_d * info.rates.offset
    return A, b


def reachable_box(data: ProblemData) -> np.ndarray:
    """Reachable ``[[S_lo, S_hi], [L_lo, L_hi]]`` (weights) given the sell caps."""
    info = data.tax
    assert info is not None
    cap = data.sell_cap
    box = np.empty((2, 2))
    for k, (start, gain) in enumerate(((info.short0, info.gain_short),
                                       (info.long0, info.gain_long))):
        box[k] = (start + np.minimum(gain * cap, 0.0).sum(),
                  start + np.maximum(gain * cap, 0.0).sum())
    return box


def region_bound(info: TaxData, region: int, box: np.ndarray,
                 cuts: list[tuple[float, np.ndarray, np.ndarray]]) -> float | None:
    """Lower bound of a region's optimum (weights), ``None`` when the region is out of reach.

    Parameters
    ----------
    info : TaxData
        Rates and offset (weights).
    region : int
        1 to 5.
    box : ndarray (2, 2)
        Reachable range of ``S`` and ``L``.
    cuts : list of (f_q, y_q, P_q)
        Linear minorants ``f(P) >= f_q + y_q' (P - P_q)`` of the non-tax objective.

    Returns
    -------
    float or None
        ``-inf`` when there are no cuts yet and the region is reachable.
    """
    A, b = _rows(info, region)
    c_s, c_l, c_0 = region_affine(region, info.rates)
    # variables (S, L, t): minimize t + c_s S + c_l L + c_0
    A_ub = [np.append(-A[k], 0.0) for k in range(2)]
    b_ub = [-b[k] for k in range(2)]
    for f_q, y_q, p_q in cuts:
        A_ub.append(np.append(y_q, -1.0))
        b_ub.append(float(y_q @ p_q - f_q))
    bounds = [tuple(box[0]), tuple(box[1]), (None, None) if cuts else (0.0, 0.0)]
    res = linprog(np.array([c_s, c_l, 1.0]), A_ub=np.array(A_ub), b_ub=np.array(b_ub),
                  bounds=bounds, method="highs")
    if res.status == 2:  # infeasible: the region misses the reachable box
        return None
    if res.status != 0:
        return -np.inf
    return float(res.fun + c_0) if cuts else -np.inf


def solve_tax_program(data: ProblemData, log: list[str] | None = None) -> Solution:
    """Solve ``data``'s program; with the exact tax model, region by region (module docstring).

    Parameters
    ----------
    data : ProblemData
        Problem data; ``data.tax`` decides whether regions are enumerated.
    log : list of str, optional
        Receives one line saying which regions were solved, pruned or out of reach.

    Returns
    -------
    Solution
        The best region's verified solution; times and attempts summed over the regions solved.

    Raises
    ------
    Infeasible
        When every reachable region is infeasible.
    SolverError
        When a region that could win could not be solved.
    """
    info = data.tax
    if info is None or not info.exact:
        return solve_program(data)
    box = reachable_box(data)
    start = box.copy()
    start_point = (info.short0, info.long0)
    cuts: list[tuple[float, np.ndarray, np.ndarray]] = []
    status: dict[int, str] = {}
    for r in REGIONS:
        if region_bound(info, r, box, []) is None:
            status[r] = "out of reach"
    best: Solution | None = None
    best_region = 0
    attempts: list[tuple[str, str]] = []
    build_seconds = solve_seconds = 0.0
    first = int(region_of(*start_point, info.rates.offset))
    while True:
        open_regions = [r for r in REGIONS if r not in status]
        if not open_regions:
            break
        if best is None and first in open_regions:
            r = first
        else:
            bounds = {q: region_bound(info, q, start, cuts) for q in open_regions}
            for q, bound in bounds.items():
                if bound is None:
                    status[q] = "out of reach"
                elif best is not None and bound >= best.objective - PRUNE_TOLERANCE:
                    status[q] = "cannot win"
            open_regions = [q for q in open_regions if q not in status]
            if not open_regions:
                break
            r = min(open_regions, key=lambda q: bounds[q])  # type: ignore[arg-type, return-value]
        current = region_data(data, r)
        try:
            solution = solve_program(current)
        except Infeasible as exc:
            attempts.extend(exc.args[0] if exc.args else [])
            status[r] = "infeasible"
            continue
        except SolverError as exc:
            raise SolverError(f"exact tax, region R{r}: {exc}", attempts=exc.attempts) from None
        attempts.extend(solution.attempts)
        build_seconds += solution.build_seconds
        solve_seconds += solution.solve_seconds
        status[r] = "solved"
        point = np.array([info.short0 + info.gain_short @ solution.sells,
                          info.long0 + info.gain_long @ solution.sells])
        c_s, c_l, c_0 = region_affine(r, info.rates)
        cost = np.array([c_s, c_l])
        f_value = solution.objective - (cost @ point + c_0)
        dual = solution.duals.get("tax region")
        if dual is not None and np.all(np.isfinite(dual)):
            A, _ = _rows(info, r)
            slope = A.T @ np.maximum(np.asarray(dual, dtype=float), 0.0)
            cuts.append((f_value, slope - cost, point))
        if best is None or solution.objective < best.objective:
            best, best_region = solution, r
    if best is None:
        raise Infeasible(attempts)
    if log is not None:
        parts = ", ".join(f"R{r} {status[r]}" for r in sorted(status))
        log.append(f"exact tax: region R{best_region} chosen ({parts})")
    return dataclasses.replace(best, attempts=attempts, build_seconds=build_seconds,
                               region=best_region,
                               solve_seconds=solve_seconds)
