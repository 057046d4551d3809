"""Clarabel, ECOS and OSQP on the assembled conic data (:mod:`optirebal.program.conic`).

Each solver reads :class:`~optirebal.program.conic.ConicProgram` in its own standard form and
answers with an :class:`Answer`: primal ``x``, the duals of the rows, a status among
``optimal``, ``optimal_inaccurate``, ``infeasible``, ``unbounded`` or what went wrong, and the
iterations. Checking the answer is the chain's job (:mod:`optirebal.program.solve`). Power cones
go to Clarabel alone: ECOS and OSQP answer a program with them ``skipped: ...``.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import version

import numpy as np
import scipy.sparse as sp

from optirebal.program.conic import NONNEG, POW, SOC, ZERO, ConicProgram

OPTIMAL, INACCURATE, INFEASIBLE, UNBOUNDED = ("optimal", "optimal_inaccurate", "infeasible",
                                              "unbounded")

# OSQP 1.0 renamed its solution-polishing setting
_OSQP_POLISH = "polishing" if int(version("osqp").split(".")[0]) >= 1 else "polish"


SOLVER_OPTIONS: dict[str, dict[str, object]] = {
    "CLARABEL": {"tol_gap_abs": 1e-12, "tol_gap_rel": 1e-12, "tol_feas": 1e-8, "max_iter": 200,
                 "reduced_tol_gap_abs": 5e-9, "reduced_tol_gap_rel": 5e-9,
                 "reduced_tol_feas": 1e-6, "iterative_refinement_enable": False},
    "ECOS": {"abstol": 1e-9, "reltol": 1e-8, "feastol": 1e-9, "max_iters": 200},
    "OSQP": {"eps_abs": 1e-9, "eps_rel": 1e-9, _OSQP_POLISH: True, "max_iter": 200_000},
}
"""Tolerances. The objective is in fractions of NAV (a basis point is 1e-4) and its smallest
slope is the tie-break, 1e-6 per unit of turnover: a trade accurate to 1e-7 of NAV needs a
duality gap near 1e-13. Clarabel divides its relative gap by ``max(1, |objective|)``, so both of
its gap tolerances act as absolute ones here. With cones, 1e-12: at 1e-10 a to-target trade
is 1.6e-9 of NAV off, and at 1e-11 an impact program whose tracking error curves weakly leaves
its weights 1e-6 apart when the NAV is multiplied by 1,000 (the fuzz's seeds 1378, 4412, 4612;
2e-8 at 1e-12), for about 1.5 more iterations (22 on the book's households). Reduced accuracy
(``AlmostSolved``) means a gap within 5e-9 (0.00005 bp).

Clarabel runs without iterative refinement of its KKT solves here: on the book's households
(programs with impact) it takes the same iterations to the same statuses in half the time (1.8
against 3.4 ms a solve) and the same trades to the share. A program without impact, whose
tighter gaps need refined solves, and every further try
(:data:`~optirebal.program.solve.CLARABEL_RETRIES`) turn it on.

A program without cones (no impact: a QP, often with flat directions that only the tie-break
decides) is solved to :data:`QP_GAP`: its active band rows then hold to 1e-9 where 1e-12 leaves
1e-7, and Clarabel gets there in a few more of its cheap iterations. With cones, the strictly
convex impact pins the traded directions, and 1e-13 would cost iterations or stall at
``AlmostSolved``."""

QP_GAP = 1e-13


@dataclass
class Answer:
    """What one solver returned."""

    x: np.ndarray | None
    duals: np.ndarray | None
    status: str
    iterations: int | None
    seconds: float


def solve_conic(program: ConicProgram, solver: str, options: Mapping[str, object] | None = None,
                settings: Mapping[str, object] | None = None, *,
                qp_gap: float | None = QP_GAP) -> Answer:
    """Run ``solver`` on ``program`` with its :data:`SOLVER_OPTIONS` updated by ``options``, or
    with exactly ``settings`` (the solver's defaults elsewhere).

    ``qp_gap`` is the duality gap Clarabel is held to on a program without cones (see
    :data:`SOLVER_OPTIONS`); None keeps the settings' gap, for QPs without flat directions (the
    execution schedule, where 1e-13 only stalls Clarabel at its iteration limit)."""
    if settings is None:
        settings = {**SOLVER_OPTIONS[solver], **(options or {})}
    start = time.perf_counter()
    if solver == "CLARABEL":
        answer = _clarabel(program, settings, qp_gap)
    elif solver == "ECOS":
        answer = _ecos(program, settings)
    elif solver == "OSQP":
        answer = _osqp(program, settings)
    else:  # the policy validates the chain; this guards internal callers
        raise ValueError(f"unknown solver {solver!r}")
    answer.seconds = time.perf_counter() - start
    return answer


def _clarabel(program: ConicProgram, settings: Mapping[str, object],
              qp_gap: float | None = QP_GAP) -> Answer:
    import clarabel

    cones = []
    alphas = iter(program.powers)
    for kind, size in program.cones:
        cones.append(clarabel.ZeroConeT(size) if kind == ZERO else
                     clarabel.NonnegativeConeT(size) if kind == NONNEG else
                     clarabel.PowerConeT(next(alphas)) if kind == POW else
                     clarabel.SecondOrderConeT(size))
    config = clarabel.DefaultSettings()
    config.verbose = False
    for name, value in settings.items():
        setattr(config, name, value)
    if (not program.has_soc and not program.has_pow and "tol_gap_abs" in settings
            and qp_gap is not None):
        gap = settings["tol_gap_abs"]
        assert isinstance(gap, float)
        config.tol_gap_abs = config.tol_gap_rel = min(qp_gap, gap)
    solver = clarabel.DefaultSolver(_upper(program.P), program.q, program.A, program.b, cones,
                                    config)
    solution = solver.solve()
    status = str(solution.status)
    mapped = {"Solved": OPTIMAL, "AlmostSolved": INACCURATE, "PrimalInfeasible": INFEASIBLE,
              "AlmostPrimalInfeasible": INFEASIBLE, "DualInfeasible": UNBOUNDED}.get(status,
                                                                                    status)
    return Answer(np.asarray(solution.x), np.asarray(solution.z), mapped,
                  int(solution.iterations), 0.0)


def _upper(P: sp.spmatrix) -> sp.csc_matrix:
    """The upper triangle of ``P`` in CSC form, as Clarabel takes it: ``P`` itself when it
    is already an upper-triangular CSC matrix in canonical form without stored zeros (the
    diagonal ``P`` that :meth:`~optirebal.program.conic.Builder.assemble` makes, for which
    ``scipy.sparse.triu`` returns the same arrays at a tenth of a millisecond per solve)."""
    if (isinstance(P, sp.csc_matrix) and P.has_canonical_format and bool(np.all(P.data != 0))
            and bool(np.all(P.indices <= np.repeat(np.arange(P.shape[1]), np.diff(P.indptr))))):
        return P
    return sp.triu(P, format="csc")


def _ecos(program: ConicProgram, settings: Mapping[str, object]) -> Answer:
    """ECOS takes ``min c'x  s.t. A x = b, G x <=_K h`` with K non-negative then SOC, and no
    quadratic objective: ``sum(p_j x_j^2 / 2)`` becomes ``tau`` with
    ``||(sqrt(2 p) x, tau - 1)|| <= tau + 1`` (that is ``tau >= sum(p_j x_j^2) / 2``)."""
    import ecos

    if program.has_pow:
        return Answer(None, None, "skipped: ECOS has no power cones (write the power with "
                      "second-order cones for ECOS)", None, 0.0)
    n, A, b = program.n, program.A.tocsr(), program.b
    kinds = np.concatenate([np.full(size, kind) for kind, size in program.cones]) \
        if program.cones else np.zeros(0, dtype=str)
    eq, rest = kinds == ZERO, kinds != ZERO
    diagonal = program.P.diagonal()
    quad = np.flatnonzero(diagonal > 0)
    width = n + (1 if len(quad) else 0)
    G = sp.csr_matrix((A[rest].data, A[rest].indices, A[rest].indptr),
                      shape=(int(rest.sum()), width))
    h = b[rest]
    soc = [size for kind, size in program.cones if kind == SOC]
    c = np.append(program.q, 1.0) if len(quad) else program.q
    if len(quad):
        # rows of s = h - G x: (tau + 1, sqrt(2p) x, tau - 1); G holds minus their coefficients
        k = len(quad)
        rows = np.concatenate([[0], np.arange(1, k + 1), [k + 1]])
        cols = np.concatenate([[n], quad, [n]])
        # tau >= x' diag(p) x / 2 = |v|^2 with v = sqrt(p / 2) x; the cone holds 2 v
        vals = np.concatenate([[-1.0], -2.0 * np.sqrt(diagonal[quad] / 2.0), [-1.0]])
        cone = sp.csr_matrix((vals, (rows, cols)), shape=(k + 2, width))
        G = sp.vstack([G, cone], format="csr")
        h = np.concatenate([h, [1.0], np.zeros(k), [-1.0]])
        soc = [*soc, k + 2]
    dims = {"l": int(sum(size for kind, size in program.cones if kind == NONNEG)), "q": soc,
            "e": 0}
    A_eq = sp.csr_matrix((A[eq].data, A[eq].indices, A[eq].indptr), shape=(int(eq.sum()), width))
    solution = ecos.solve(c, G.tocsc(), h, dims, A_eq.tocsc(), b[eq], verbose=False, **settings)
    flag = solution["info"]["exitFlag"]
    status = {0: OPTIMAL, 10: INACCURATE, 1: INFEASIBLE, 11: INFEASIBLE, 2: UNBOUNDED,
              12: UNBOUNDED}.get(flag, f"ecos exit flag {flag}")
    x = np.asarray(solution["x"])[:n]
    duals = np.zeros(len(b))
    duals[eq] = solution["y"]
    duals[rest] = np.asarray(solution["z"])[: int(rest.sum())]
    return Answer(x, duals, status, int(solution["info"]["iter"]), 0.0)


@functools.cache
def _osqp_solve_options() -> dict[str, object]:
    """``raise_error=False`` where OSQP's ``solve`` takes it (1.x, which warns that its default
    will become True): a failed solve is read from its status here, as with older OSQP."""
    import inspect

    import osqp

    return ({"raise_error": False}
            if "raise_error" in inspect.signature(osqp.OSQP.solve).parameters else {})


def _osqp(program: ConicProgram, settings: Mapping[str, object]) -> Answer:
    """OSQP takes ``l <= A x <= u`` with a quadratic objective: no second-order cones."""
    import osqp

    if program.has_pow:
        return Answer(None, None, "skipped: OSQP takes QPs only, and this program has power "
                      "cones", None, 0.0)
    if program.has_soc:
        return Answer(None, None, "skipped: OSQP takes QPs only, and this program has "
                      "second-order cones (impact, paid from cash)", None, 0.0)
    kinds = np.concatenate([np.full(size, kind) for kind, size in program.cones])
    upper = program.b
    lower = np.where(kinds == ZERO, program.b, -np.inf)
    solver = osqp.OSQP()
    solver.setup(sp.triu(program.P, format="csc"), program.q, program.A, lower, upper,
                 verbose=False, **settings)
    result = solver.solve(**_osqp_solve_options())
    status = str(result.info.status).lower()
    mapped = OPTIMAL if status == "solved" else INACCURATE if "inaccurate" in status else \
        INFEASIBLE if "primal infeasible" in status else status
    return Answer(np.asarray(result.x), -np.asarray(result.y), mapped, int(result.info.iter),
                  0.0)
