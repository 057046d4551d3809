"""Decoded trades: what rounding and repair hand to verification and to the result."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from optirebal.events import Event

if TYPE_CHECKING:
    from optirebal.program.data import ProblemData

CASH_TOLERANCE = 1e-9
"""Cash may fall below a reserve by at most this fraction of NAV (solver round-off only)."""


@dataclass(frozen=True)
class Trades:
    """Decoded trades in shares and in weights, after rounding and repair."""

    buy_shares: np.ndarray  # per pair
    sell_shares: np.ndarray  # per lot
    buys: np.ndarray  # per pair, weights
    sells: np.ndarray  # per lot, weights
    band_tolerance: np.ndarray  # per class, weights
    contracts: np.ndarray | None = None  # per derivative, post-trade whole contracts
    derivatives: np.ndarray | None = None  # per derivative, change of notional, weights
    derivative_solution: np.ndarray | None = None  # the program's change before rounding
    repairs: tuple[Event, ...] = ()  # what the cash repair after rounding changed

    @staticmethod
    def none(data: ProblemData) -> Trades:
        """No trade at all."""
        pairs, lots = np.zeros(data.n_pairs), np.zeros(len(data.lot_ids))
        return Trades(pairs, lots, pairs, lots, np.zeros(len(data.classes)))
