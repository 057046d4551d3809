r"""Polish of an interior-point answer: Newton's method on the optimality conditions of its
active set.

Clarabel holds a program with cones to a duality gap of 1e-12 (:data:`~optirebal.program.
solvers.SOLVER_OPTIONS`), and at reduced accuracy (``AlmostSolved``) to 5e-9. Along the
flattest optimal direction of a rebalancing program (the split of a sale between securities
whose only difference is a weak impact curvature ``k``) a gap ``g`` pins the weights only to
about :math:`\sqrt{2 g / k}`: 3e-6 for an answer at reduced accuracy. The answer of the same
portfolio at another NAV then differs by that much. The exact optimum does not.

From the interior-point primal ``x`` and duals ``z`` (Clarabel's form: ``A x + s = b``,
``s`` in the cone, ``P x + q + A' z = 0``), the rows are split by complementarity:

- a zero-cone row, and a non-negative row whose dual exceeds its slack, is an equality;
- a second-order cone ``s = (s_0, \bar s)`` is *inactive* when its dual is below the distance
  of ``s`` to the cone's boundary, at its *apex* (``s = 0``, all rows equalities) when ``s_0``
  is below the distance of the dual to the boundary, and otherwise on its *boundary*:
  :math:`\lVert \bar s \rVert - s_0 = 0` with multiplier :math:`\lambda = z_0`;
- other rows are dropped.

Newton's method then solves stationarity, the equalities and the boundaries together
(symmetric KKT system, Hessian ``P`` plus each boundary's curvature
:math:`\lambda A_c^\top \nabla^2 \lVert \bar s \rVert A_c`), in at most :data:`MAX_STEPS`
steps from the interior-point point. A tiny proximal term (:data:`PROXIMAL`) keeps directions
that nothing in the program determines (two lots of equal tax) where the solver left them. When
the Newton point violates a dropped row, the worst joins the active set; when an equality's
multiplier has the wrong sign, the worst leaves it; and Newton's method runs again (at most
:data:`MAX_ROUNDS` times). One row a round, because rows the point violates by rounding alone
would otherwise join together and make the equalities inconsistent.

The polished point is returned only when it is certified: every row inside its cone, every
multiplier in its dual cone, the optimality conditions met to :data:`KKT_TOLERANCE`, and an
objective no worse than the interior-point answer's beyond that answer's own duality gap and
infeasibility. Otherwise (a wrong guess of the active
set, a degenerate vertex) the caller keeps the interior-point answer. Power cones are not
polished.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from optirebal.program.conic import NONNEG, SOC, ZERO, ConicProgram

MAX_STEPS = 8
"""Most Newton steps; from an interior-point answer it converges in two to four."""

KKT_TOLERANCE = 1e-13
"""Largest residual of the optimality conditions (objective in fractions of NAV) at which the
polished point is taken: two orders below the interior-point gap it replaces."""

FEASIBILITY = 1e-12
"""How far outside its cone a row, or a multiplier outside its dual cone, may end (weights)."""

OBJECTIVE_SLACK = 1e-12
"""How much above the interior-point objective the polished one may end, beyond what the
interior-point answer's duality gap and its infeasibility (within the solver's tolerance, priced
at its duals) allow."""

PROXIMAL = 1e-12
"""Weight of ``|x - x_ipm|^2 / 2`` in the Newton system: it only decides directions with no
curvature and no active row (ties the program itself does not break)."""

MAX_ROUNDS = 20
"""Most corrections of the active set, one row at a time: the row the Newton point violates most
joins it, else the equality whose multiplier is most negative leaves it."""

INACTIVE, APEX, BOUNDARY = 0, 1, 2


def polish(program: ConicProgram, x: np.ndarray, z: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray] | None:
    """The optimum on the active set of the interior-point answer ``(x, z)`` with its duals (in
    ``z``'s form), certified, or None (module docstring)."""
    if program.has_pow or x is None or z is None:
        return None
    if any(kind not in (ZERO, NONNEG, SOC) for kind, _ in program.cones):
        return None
    A, b = program.A.tocsr(), program.b
    s = b - A @ x
    zero, nonneg, cones = _rows(program)
    held = z[nonneg] > s[nonneg]  # non-negative rows held as equalities
    state = np.array([_cone_state(s[rows], z[rows]) for rows in cones], dtype=np.int64)
    for _ in range(MAX_ROUNDS):
        equal = np.concatenate([zero, nonneg[held], *[cones[c] for c in
                                                     np.flatnonzero(state == APEX)]])
        boundary = [cones[c] for c in np.flatnonzero(state == BOUNDARY)]
        found = _newton(program, A, x, z, equal, boundary)
        if found is None:
            return None
        point, y, lam = found
        s = b - A @ point
        multiplier = np.zeros(len(b))
        multiplier[equal] = y
        changed = False
        # a dropped row the point violates joins, else an equality pulling the wrong way leaves;
        # one row at a time, the worst first: rows the point violates by rounding alone would
        # otherwise join together and make the equalities inconsistent
        outside = np.where(held, 0.0, -s[nonneg])
        pulling_rows = np.where(held, -multiplier[nonneg], 0.0)
        if outside.max(initial=0.0) > FEASIBILITY:
            held[int(np.argmax(outside))] = True
            changed = True
        elif pulling_rows.max(initial=0.0) > FEASIBILITY:
            held[int(np.argmax(pulling_rows))] = False
            changed = True
        for c, rows in enumerate(cones):
            if state[c] == INACTIVE and np.linalg.norm(s[rows][1:]) - s[rows][0] > FEASIBILITY:
                state[c], changed = BOUNDARY, True
        on_boundary = np.flatnonzero(state == BOUNDARY)
        pulling = lam < -FEASIBILITY
        if pulling.any():
            state[on_boundary[pulling]] = INACTIVE
            changed = True
        if not changed:
            break
    else:
        return None
    if not _certified(program, point, x, z, multiplier, lam):
        return None
    for lam_c, rows in zip(lam, boundary, strict=True):
        tail = s[rows[1:]]
        multiplier[rows] = lam_c * np.concatenate([[1.0], -tail / np.linalg.norm(tail)])
    return point, multiplier


def _rows(program: ConicProgram) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """The zero-cone rows, the non-negative rows, and the rows of each second-order cone."""
    zero, nonneg, cones = [], [], []
    start = 0
    for kind, size in program.cones:
        rows = np.arange(start, start + size)
        start += size
        if kind == ZERO:
            zero.append(rows)
        elif kind == NONNEG:
            nonneg.append(rows)
        else:
            cones.append(rows)
    empty = np.zeros(0, dtype=np.int64)
    return (np.concatenate(zero) if zero else empty, np.concatenate(nonneg) if nonneg else empty,
            cones)


def _cone_state(s_c: np.ndarray, z_c: np.ndarray) -> int:
    """Inactive when the dual is below the distance of ``s`` to the boundary, at the apex when
    ``s_0`` is below the dual's distance to its boundary, else on the boundary."""
    if z_c[0] < s_c[0] - np.linalg.norm(s_c[1:]):
        return INACTIVE
    if s_c[0] < z_c[0] - np.linalg.norm(z_c[1:]) or not np.linalg.norm(s_c[1:]) > 0:
        return APEX
    return BOUNDARY


def _newton(program: ConicProgram, A: sp.csr_matrix, x: np.ndarray, z: np.ndarray,
            equal: np.ndarray, boundary: list[np.ndarray]
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Newton's method on stationarity, the equalities ``equal`` and the cones on their
    ``boundary``, from ``x`` and the multipliers ``z`` gives them; the point and multipliers,
    or None when it does not converge in :data:`MAX_STEPS`."""
    b, P, q = program.b, program.P.tocsc(), program.q
    n, n_e, n_c = len(x), len(equal), len(boundary)
    A_eq = A[equal]
    y = z[equal].copy()
    lam = np.array([max(z[rows[0]], 0.0) for rows in boundary])
    point = x.copy()
    for _ in range(MAX_STEPS):
        s = b - A @ point
        normals, curvature, gaps = _boundary_terms(A, s, boundary, lam)
        J = sp.vstack([A_eq, normals], format="csr")
        r_dual = P @ point + q + J.T @ np.concatenate([y, lam]) + PROXIMAL * (point - x)
        r_primal = np.concatenate([A_eq @ point - b[equal], gaps])
        if _size(r_dual, r_primal) <= KKT_TOLERANCE:
            return point, y, lam
        H = P + curvature + PROXIMAL * sp.identity(n, format="csc")
        K = sp.bmat([[H, J.T], [J, -PROXIMAL * sp.identity(n_e + n_c)]], format="csc")
        try:
            step = spla.splu(K).solve(-np.concatenate([r_dual, r_primal]))
        except RuntimeError:  # singular: the active rows are dependent
            return None
        if not np.all(np.isfinite(step)):
            return None
        point = point + step[:n]
        y, lam = y + step[n:n + n_e], lam + step[n + n_e:]
    return None


def _boundary_terms(A: sp.csr_matrix, s: np.ndarray, boundary: list[np.ndarray],
                    lam: np.ndarray) -> tuple[sp.csr_matrix, sp.csr_matrix, np.ndarray]:
    """For the boundary cones ``g(x) = |s_bar| - s_0`` with ``s = b - A x``: their gradients
    ``A_c' (1, -u)`` as rows (``u = s_bar / |s_bar|``), the sum of their Hessians times their
    multipliers ``sum lam_c A_c' H_c A_c`` with ``H_c = [0, 0; 0, (I - u u') / |s_bar|]``, and
    their values ``g``; cones of one size at a time, in numpy."""
    m, n = A.shape
    if not boundary:
        return sp.csr_matrix((0, n)), sp.csr_matrix((n, n)), np.zeros(0)
    order = np.arange(len(boundary))
    sizes = np.array([len(rows) for rows in boundary])
    w_rows, w_cols, w_vals, h_rows, h_cols, h_vals = [], [], [], [], [], []
    gaps = np.zeros(len(boundary))
    for size in np.unique(sizes):
        which = order[sizes == size]
        R = np.stack([boundary[c] for c in which])  # cones x size
        tail = s[R[:, 1:]]
        norm = np.linalg.norm(tail, axis=1)
        u = tail / norm[:, None]
        gaps[which] = norm - s[R[:, 0]]
        w_rows += [np.repeat(which, size)]
        w_cols += [R.ravel()]
        w_vals += [np.concatenate([np.ones((len(which), 1)), -u], axis=1).ravel()]
        eye = np.eye(size - 1)
        H = (eye[None] - u[:, :, None] * u[:, None, :]) / norm[:, None, None]
        H *= lam[which][:, None, None]
        h_rows += [np.repeat(R[:, 1:], size - 1, axis=1).ravel()]
        h_cols += [np.tile(R[:, 1:], (1, size - 1)).ravel()]
        h_vals += [H.ravel()]
    W = sp.csr_matrix((np.concatenate(w_vals), (np.concatenate(w_rows), np.concatenate(w_cols))),
                      shape=(len(boundary), m))
    D = sp.csr_matrix((np.concatenate(h_vals), (np.concatenate(h_rows), np.concatenate(h_cols))),
                      shape=(m, m))
    return sp.csr_matrix(W @ A), sp.csr_matrix(A.T @ D @ A), gaps


def _size(r_dual: np.ndarray, r_primal: np.ndarray) -> float:
    return float(max(np.abs(r_dual).max(initial=0.0), np.abs(r_primal).max(initial=0.0)))


def _certified(program: ConicProgram, point: np.ndarray, x: np.ndarray, z: np.ndarray,
               multiplier: np.ndarray, lam: np.ndarray) -> bool:
    """Whether ``point`` is feasible, its multipliers (per row; ``lam`` of the boundary cones)
    dual feasible, and its objective no worse than the interior-point answer's beyond that
    answer's duality gap and infeasibility (and :data:`OBJECTIVE_SLACK`)."""
    if not np.all(np.isfinite(point)):
        return False
    s = program.b - program.A @ point
    start = 0
    for kind, size in program.cones:
        rows = slice(start, start + size)
        start += size
        if kind == NONNEG:
            if s[rows].min(initial=0.0) < -FEASIBILITY:
                return False
            if multiplier[rows].min(initial=0.0) < -FEASIBILITY:
                return False
        elif kind == SOC:
            if np.linalg.norm(s[rows][1:]) - s[rows][0] > FEASIBILITY:
                return False
            if np.linalg.norm(multiplier[rows][1:]) - multiplier[rows][0] > FEASIBILITY:
                return False
        elif np.abs(s[rows]).max(initial=0.0) > FEASIBILITY:
            return False
    if lam.min(initial=0.0) < -FEASIBILITY:
        return False
    quadratic = float(x @ (program.P @ x))
    before = 0.5 * quadratic + program.q @ x
    # the interior-point answer is within its duality gap of the optimum, and may be cheaper
    # than it by its infeasibility priced at its duals
    bracket = abs(quadratic + program.q @ x + program.b @ z) \
        + float(np.abs(z) @ _violation(program, program.b - program.A @ x))
    after = 0.5 * point @ (program.P @ point) + program.q @ point
    return bool(after <= before + bracket + OBJECTIVE_SLACK)


def _violation(program: ConicProgram, s: np.ndarray) -> np.ndarray:
    """Per row, how far ``s`` lies outside its cone (a second-order cone's on its first row)."""
    out = np.zeros(len(s))
    start = 0
    for kind, size in program.cones:
        rows = slice(start, start + size)
        if kind == ZERO:
            out[rows] = np.abs(s[rows])
        elif kind == NONNEG:
            out[rows] = np.maximum(-s[rows], 0.0)
        else:
            out[start] = max(float(np.linalg.norm(s[rows][1:]) - s[start]), 0.0)
        start += size
    return out
