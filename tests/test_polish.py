"""The polish of an interior-point answer (``optirebal.program.polish``): exact optima of known
cone programs from answers at low accuracy, only certified points, and the solver chain that
polishes an answer at reduced accuracy."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import multi_asset

import optirebal as orb
from optirebal.program import solvers
from optirebal.program.conic import NONNEG, SOC, ZERO, ConicProgram
from optirebal.program.polish import polish
from optirebal.program.solvers import solve_conic


def two_squares(k1: float, k2: float, cap: float) -> ConicProgram:
    r"""``min k1 g1^2 + k2 g2^2`` over ``g1 + g2 = 1``, ``0 <= g <= cap``, the squares as
    epigraphs ``t >= g^2`` in second-order cones ``|(2 g, t - 1)| <= t + 1``: variables
    ``(g1, g2, t1, t2)``, objective ``k1 t1 + k2 t2``. Without the cap binding the optimum is
    ``g1 = k2 / (k1 + k2)``."""
    rows: list[list[float]] = [[1, 1, 0, 0]]  # zero cone: g1 + g2 = 1
    b = [1.0]
    for j in range(2):  # non-negative: -g <= 0 and g <= cap
        rows += [[-(i == j) for i in range(4)], [float(i == j) for i in range(4)]]
        b += [0.0, cap]
    for j in range(2):  # s = (1 + t, 2 g, t - 1) in the cone
        rows += [[-float(i == 2 + j) for i in range(4)], [-2.0 * (i == j) for i in range(4)],
                 [-float(i == 2 + j) for i in range(4)]]
        b += [1.0, 0.0, -1.0]
    return ConicProgram(P=sp.csc_matrix((4, 4)), q=np.array([0.0, 0.0, k1, k2]),
                        A=sp.csc_matrix(np.array(rows, dtype=float)), b=np.array(b),
                        cones=[(ZERO, 1), (NONNEG, 4), (SOC, 3), (SOC, 3)], blocks={},
                        variables={"g": slice(0, 2), "t": slice(2, 4)}, constant=0.0)


LOOSE = {"tol_gap_abs": 1e-4, "tol_gap_rel": 1e-4, "tol_feas": 1e-5, "max_iter": 200}


@pytest.mark.parametrize(("cap", "expected"), [(1.0, 0.75), (0.7, 0.7)])
def test_polish_reaches_the_exact_optimum_from_a_loose_answer(cap, expected):
    program = two_squares(1.0, 3.0, cap)
    loose = solve_conic(program, "CLARABEL", settings=LOOSE)
    assert abs(loose.x[0] - expected) > 1e-9  # the loose answer is not exact
    polished = polish(program, loose.x, loose.duals)
    assert polished is not None
    x, duals = polished
    assert x[0] == pytest.approx(expected, abs=1e-12)
    assert x[1] == pytest.approx(1.0 - expected, abs=1e-12)
    assert x[2:] == pytest.approx(x[:2] ** 2, abs=1e-12)  # both epigraphs tight
    # the duals certify it: P x + q + A' z = 0, z in the dual cone
    assert np.abs(program.A.T @ duals + program.q).max() < 1e-12
    assert duals[1:5].min() >= -1e-12
    if cap < 0.75:  # the cap binds with a positive multiplier
        assert duals[2] > 1e-3


def test_polish_returns_only_certified_points():
    program = two_squares(1.0, 3.0, 1.0)
    for x, z in [(np.array([5.0, -3.0, 0.0, 0.0]), np.zeros(15)),
                 (np.array([0.5, 0.5, 0.25, 0.25]), -np.ones(15))]:
        polished = polish(program, x, z)
        # either nothing, or the exact optimum: never a point that is not optimal
        assert polished is None or np.allclose(polished[0], [0.75, 0.25, 0.5625, 0.0625],
                                               atol=1e-12)


def test_an_answer_at_reduced_accuracy_is_polished_in_the_chain(monkeypatch):
    # an unreachable gap ends Clarabel at its reduced tolerances (AlmostSolved)
    options = {**solvers.SOLVER_OPTIONS["CLARABEL"], "tol_gap_abs": 1e-30, "tol_gap_rel": 1e-30,
               "reduced_tol_gap_abs": 1e-6, "reduced_tol_gap_rel": 1e-6}
    monkeypatch.setitem(solvers.SOLVER_OPTIONS, "CLARABEL", options)
    portfolio = multi_asset(seed=4, n_securities=12, accounts=("taxable", "ira"))
    policy = orb.Policy(targets={"equity": 0.5, "bonds": 0.3, "real_estate": 0.18, "cash": 0.02},
                        band=orb.Band.absolute(0.01), risk_aversion=1.0,
                        costs=orb.Costs(impact="quadratic"))
    result = orb.solve(portfolio, policy)
    name, status = result.diagnostics.attempts[0]
    assert name == "CLARABEL"
    assert status.startswith("optimal_inaccurate, polished to optimal"), status
    assert result.diagnostics.status == "optimal"
    monkeypatch.undo()
    exact = orb.solve(portfolio, policy)  # Clarabel at its own tolerances
    after = result.weights["after"]
    assert np.abs(after - exact.weights["after"]).max() < 1e-6
