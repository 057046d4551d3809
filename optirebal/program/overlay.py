r"""The overlay's terms of the convex program, and the same terms evaluated in numpy.

Variable: the change of derivative notional ``u`` (weights), position ``o = o0 + u``, and an
epigraph ``a >= |o|``. With ``h`` the spread, ``c`` the carry over the horizon, ``m`` the margin
(rate plus variation buffer) and ``pi`` the option premium, all per unit of notional:

.. math::

    z \mathrel{+}= D u, \qquad
    \text{objective} \mathrel{+}= h^\top |u| + c^\top a + \|\beta \circ o\|^2 + \epsilon 1^\top |u|,

    \text{cash of the margin account} \mathrel{+}= h^\top |u| + \pi^\top u + m^\top a, \qquad
    \text{total cost} \mathrel{+}= h^\top |u|,

    \ell \le o \le \bar o, \qquad 1^\top a \le \bar G,

with ``beta = sqrt(gamma H / 2) sigma_b / (1 + F)`` (basis risk as an independent risk of each
instrument). The spread is paid now, so it enters the cash and the post-cost bands; carry accrues
over the horizon and is only an objective cost. Numpy twins of every term verify a solution.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import cvxpy as cp
import numpy as np
import scipy.sparse as sp

if TYPE_CHECKING:
    from optirebal.program.data import ProblemData


@dataclass(eq=False)
class OverlayTerms:
    """What the overlay adds to the program (see the module docstring)."""

    change: cp.Variable
    parameters: dict[str, cp.Parameter]
    exposure: cp.Expression
    immediate_cost: cp.Expression
    account_cash: cp.Expression
    objective: list[cp.Expression]
    constraints: list[cp.Constraint]


def overlay_terms(data: ProblemData, tie_break: float) -> OverlayTerms:
    """Build the overlay's variables, parameters and terms for ``data``'s structure."""
    ov = data.overlay
    assert ov is not None
    n_d, n_a = ov.size, len(data.accounts)
    u = cp.Variable(n_d, name="derivatives")
    a = cp.Variable(n_d, nonneg=True, name="derivative_gross")
    par = {
        "overlay_delta": cp.Parameter(n_d, name="overlay_delta"),
        "overlay_position": cp.Parameter(n_d, name="overlay_position"),
        "overlay_lower": cp.Parameter(n_d, name="overlay_lower"),
        "overlay_upper": cp.Parameter(n_d, name="overlay_upper"),
        "overlay_gross_cap": cp.Parameter(nonneg=True, name="overlay_gross_cap"),
        "overlay_spread": cp.Parameter(n_d, nonneg=True, name="overlay_spread"),
        "overlay_carry": cp.Parameter(n_d, nonneg=True, name="overlay_carry"),
        "overlay_basis": cp.Parameter(n_d, nonneg=True, name="overlay_basis"),
        "overlay_basis_position": cp.Parameter(n_d, name="overlay_basis_position"),
        "overlay_margin": cp.Parameter(n_d, nonneg=True, name="overlay_margin"),
        "overlay_premium": cp.Parameter(n_d, name="overlay_premium"),
    }
    o = par["overlay_position"] + u
    traded = cp.abs(u)
    spread = par["overlay_spread"] @ traded
    selector = sp.csr_matrix((np.ones(1), ([ov.margin_account], [0])), shape=(n_a, 1))
    cash = spread + par["overlay_premium"] @ u + par["overlay_margin"] @ a
    return OverlayTerms(
        # D u = L (delta o u): the loadings L are structure (a constant), the deltas parameters;
        # a dense parameter matrix D would cost cvxpy seconds of compilation
        change=u, parameters=par,
        exposure=sp.csr_matrix(ov.loadings) @ cp.multiply(par["overlay_delta"], u),
        immediate_cost=spread,
        account_cash=selector @ cp.reshape(cash, (1,), order="F"),
        objective=[spread, par["overlay_carry"] @ a,
                   # beta o = beta u + beta o0: parameter times variable only, so DPP
                   cp.sum_squares(cp.multiply(par["overlay_basis"], u)
                                  + par["overlay_basis_position"]),
                   tie_break * cp.sum(traded)],
        constraints=[a >= o, a >= -o, o >= par["overlay_lower"], o <= par["overlay_upper"],
                     cp.sum(a) <= par["overlay_gross_cap"]])


def bind_overlay(parameters: dict[str, cp.Parameter], data: ProblemData) -> None:
    """Fill the overlay's parameters from ``data`` (weights)."""
    ov = data.overlay
    assert ov is not None
    p = parameters
    p["overlay_delta"].value = ov.delta
    p["overlay_position"].value = ov.position
    p["overlay_lower"].value = ov.lower
    p["overlay_upper"].value = ov.upper
    p["overlay_gross_cap"].value = ov.gross_cap
    p["overlay_spread"].value = ov.spread
    p["overlay_carry"].value = ov.carry
    beta = np.sqrt(data.risk_weight * ov.basis_variance) / data.scale
    p["overlay_basis"].value = beta
    p["overlay_basis_position"].value = beta * ov.position
    p["overlay_margin"].value = ov.margin
    p["overlay_premium"].value = ov.premium


# --- numpy twins --------------------------------------------------------------------------------


def _change(data: ProblemData, change: np.ndarray | None) -> np.ndarray:
    ov = data.overlay
    if ov is None:
        return np.zeros(0)
    return np.zeros(ov.size) if change is None else np.asarray(change, dtype=float)


def overlay_exposure(data: ProblemData, change: np.ndarray | None) -> np.ndarray:
    """Change of class exposure (units of V) from a change of notional ``change`` (weights)."""
    if data.overlay is None:
        return np.zeros(len(data.classes))
    return data.overlay.exposure @ _change(data, change)


def overlay_costs(data: ProblemData, change: np.ndarray | None) -> dict[str, np.ndarray]:
    """Per instrument, the spread paid now and the carry over the horizon (weights)."""
    u = _change(data, change)
    if data.overlay is None:
        return {"derivative_spread": u, "carry": u}
    ov = data.overlay
    return {"derivative_spread": ov.spread * np.abs(u), "carry": ov.carry * np.abs(ov.position + u)}


def overlay_margin(data: ProblemData, change: np.ndarray | None) -> np.ndarray:
    """Per instrument, the cash reserved for margin after the change (weights)."""
    u = _change(data, change)
    if data.overlay is None:
        return u
    return data.overlay.margin * np.abs(data.overlay.position + u)


def overlay_cash(data: ProblemData, change: np.ndarray | None) -> np.ndarray:
    """Per account, cash the overlay uses (weights): spread, option premium and margin."""
    out = np.zeros(len(data.accounts))
    ov = data.overlay
    if ov is None:
        return out
    u = _change(data, change)
    out[ov.margin_account] = (overlay_costs(data, u)["derivative_spread"].sum()
                              + ov.premium @ u + overlay_margin(data, u).sum())
    return out


def overlay_residual(data: ProblemData, change: np.ndarray | None) -> float:
    """Largest violation (weights) of the overlay's bounds and gross cap."""
    ov = data.overlay
    if ov is None:
        return 0.0
    o = ov.position + _change(data, change)
    return float(max(np.max(o - ov.upper, initial=0.0), np.max(ov.lower - o, initial=0.0),
                     np.abs(o).sum() - ov.gross_cap))


def overlay_immediate_cost(data: ProblemData, change: np.ndarray | None) -> float:
    """Total cost paid now (weights): the derivative spread."""
    return float(overlay_costs(data, change)["derivative_spread"].sum())


@dataclass(eq=False)
class OverlayElastic:
    """The overlay in the elastic diagnosis of an infeasible program: its bounds and gross cap
    relaxed by slacks, its exposure, spread and margin cash as in the program."""

    exposure: cp.Expression
    cost: cp.Expression
    cash: cp.Expression
    constraints: list[cp.Constraint]
    slack: cp.Expression
    bound_slack: cp.Variable
    gross_slack: cp.Variable

    def conflicts(self, data: ProblemData, cash_slack: np.ndarray, tolerance: float) -> list[str]:
        """Names of the overlay constraints that must give, for the :class:`InfeasibleError`."""
        ov = data.overlay
        assert ov is not None
        bound = np.asarray(self.bound_slack.value, dtype=float)
        out = [f"overlay bounds of {name!r} ({ov.bound_reason[d] or 'notional cap'})"
               for d, name in enumerate(ov.instruments) if bound[d] > tolerance]
        if float(np.asarray(self.gross_slack.value, dtype=float)) > tolerance:
            out.append(f"overlay gross notional cap ({ov.gross_cap:.4g})")
        if cash_slack[ov.margin_account] > tolerance and (ov.margin > 0).any():
            out.append(f"overlay margin in account {data.accounts[ov.margin_account]!r}")
        return out


def overlay_elastic(data: ProblemData) -> OverlayElastic:
    """The overlay's terms with constants (no parameters) and elastic bounds, for diagnosis."""
    ov = data.overlay
    assert ov is not None
    n_d, n_a = ov.size, len(data.accounts)
    u = cp.Variable(n_d)
    e_bound = cp.Variable(n_d, nonneg=True)
    e_gross = cp.Variable(nonneg=True)
    o = ov.position + u
    spread = ov.spread @ cp.abs(u)
    selector = sp.csr_matrix((np.ones(1), ([ov.margin_account], [0])), shape=(n_a, 1))
    cash = spread + ov.premium @ u + ov.margin @ cp.abs(o)
    return OverlayElastic(
        exposure=ov.exposure @ u, cost=spread,
        cash=selector @ cp.reshape(cash, (1,), order="F"),
        constraints=[o >= ov.lower - e_bound, o <= ov.upper + e_bound,
                     cp.sum(cp.abs(o)) <= ov.gross_cap + e_gross],
        slack=cp.sum(e_bound) + e_gross, bound_slack=e_bound, gross_slack=e_gross)
