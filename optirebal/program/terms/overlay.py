r"""The derivative overlay: notional changes, their exposure, costs, margin and limits.

Variable: the change of derivative notional ``u`` (weights), position ``o = o0 + u``, with
epigraphs ``v >= |u|`` and ``a >= |o|``. With ``h`` the spread, ``c`` the carry over the horizon,
``m`` the margin (rate plus variation buffer) and ``pi`` the option premium, all per unit of
notional:

.. math::

    z \mathrel{+}= D u, \qquad
    \text{objective} \mathrel{+}= h^\top v + c^\top a + \|\beta \circ o\|^2 + \epsilon 1^\top v,

    \text{cash of the margin account} \mathrel{+}= h^\top v + \pi^\top u + m^\top a, \qquad
    \text{costs paid now} \mathrel{+}= h^\top v,

    \ell \le o \le \bar o, \qquad 1^\top a \le \bar G,

with ``beta = sqrt(gamma H / 2) sigma_b / (1 + F)`` (basis risk as an independent risk of each
instrument). The spread is paid now, so it enters the cash and the post-cost bands; carry accrues
over the horizon and is only an objective cost. The bounds and the gross cap are relaxable in the
diagnosis.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from optirebal.program.conic import Affine
from optirebal.program.terms.base import BaseTerm, Context, Point
from optirebal.program.terms.trades import TIE_BREAK

if TYPE_CHECKING:
    from optirebal.program.data import ProblemData


def _change(data: ProblemData, x: Point | np.ndarray | None) -> np.ndarray:
    ov = data.overlay
    if ov is None:
        return np.zeros(0)
    u = x.derivatives if isinstance(x, Point) else x
    return np.zeros(ov.size) if u is None or len(u) == 0 else np.asarray(u, dtype=float)


def basis_weights(data: ProblemData) -> np.ndarray:
    """``beta`` per instrument (module docstring)."""
    ov = data.overlay
    assert ov is not None
    return np.sqrt(data.risk_weight * ov.basis_variance) / data.scale


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


def overlay_immediate_cost(data: ProblemData, change: np.ndarray | None) -> float:
    """Total cost paid now (weights): the derivative spread."""
    return float(overlay_costs(data, change)["derivative_spread"].sum())


def overlay_residual(data: ProblemData, change: np.ndarray | None) -> float:
    """Largest violation (weights) of the overlay's bounds and gross cap."""
    ov = data.overlay
    if ov is None:
        return 0.0
    o = ov.position + _change(data, change)
    return float(max(np.max(o - ov.upper, initial=0.0), np.max(ov.lower - o, initial=0.0),
                     np.abs(o).sum() - ov.gross_cap))


class Overlay(BaseTerm):
    """The overlay's variables, costs, cash, exposure and limits (module docstring)."""

    name = "overlay"

    def applies(self, data: ProblemData) -> bool:
        return data.overlay is not None

    def build(self, ctx: Context) -> None:
        d, bld = ctx.data, ctx.builder
        ov = d.overlay
        assert ov is not None and ctx.exposure_change is not None
        assert ctx.immediate_cost is not None
        n = ov.size
        u = bld.variable("derivatives", n)
        v = bld.variable("derivative traded", n)
        a = bld.variable("derivative gross", n)
        o = u + ov.position
        bld.at_most("derivative traded", Affine.stack([u - v, -u - v]))
        bld.at_most("derivative gross", Affine.stack([o - a, -o - a]))
        bld.at_most("overlay upper", o, ov.upper, relax=True,
                    labels=lambda k: f"overlay bounds of {ov.instruments[k]!r} "
                                     f"({ov.bound_reason[k] or 'notional cap'})")
        bld.at_most("overlay lower", -o, -ov.lower, relax=True,
                    labels=lambda k: f"overlay bounds of {ov.instruments[k]!r} "
                                     f"({ov.bound_reason[k] or 'notional cap'})")
        bld.at_most("overlay gross cap", a.sum(), ov.gross_cap, relax=True,
                    labels=lambda _: f"overlay gross notional cap ({ov.gross_cap:.4g})")
        bld.minimize(v, ov.spread + TIE_BREAK)
        bld.minimize(a, ov.carry)
        beta2 = basis_weights(d) ** 2
        bld.minimize_squares("derivatives", beta2)
        bld.minimize(u, 2.0 * beta2 * ov.position)
        if not bld.elastic:
            bld.constant += float(beta2 @ ov.position**2)
        spread = (ov.spread * v).sum()
        ctx.immediate_cost = ctx.immediate_cost + spread
        ctx.exposure_change = ctx.exposure_change + sp.csr_matrix(ov.exposure) @ u
        margin_cash = spread + (ov.premium * u).sum() + (ov.margin * a).sum()
        selector = sp.csr_matrix(([1.0], ([ov.margin_account], [0])), shape=(len(d.accounts), 1))
        ctx.account_cash = selector @ margin_cash

    def costs(self, data: ProblemData, x: Point) -> dict[str, float]:
        return {k: float(v.sum()) for k, v in overlay_costs(data, _change(data, x)).items()}

    def objective(self, data: ProblemData, x: Point) -> float:
        u = _change(data, x)
        beta = basis_weights(data)
        assert data.overlay is not None
        return float(sum(self.costs(data, x).values()) + TIE_BREAK * np.abs(u).sum()
                     + np.sum((beta * (data.overlay.position + u)) ** 2))

    def residual(self, data: ProblemData, x: Point) -> float:
        return overlay_residual(data, _change(data, x))
