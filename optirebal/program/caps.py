"""Closing trades: caps set to zero, each with the first reason it got.

Restrictions, modes, wash-sale rules, the overlay and the minimum trade value all close buys (per
account-security pair) or lot sells the same way; the reasons reach order notes and the
infeasibility diagnosis.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def close(caps: np.ndarray, where: np.ndarray, reasons: dict[tuple[str, int], str], side: str,
          reason: str | Sequence[str]) -> None:
    """Set ``caps[where]`` to zero in place, recording for each the first reason it got.

    ``side`` is ``"buy"`` (``caps`` per pair) or ``"sell"`` (per lot); ``reason`` is one text
    for all, or one per entry of ``where``.
    """
    for k, n in enumerate(np.asarray(where, dtype=np.int64)):
        if caps[n] > 0:
            caps[n] = 0.0
            reasons.setdefault((side, int(n)), reason if isinstance(reason, str) else reason[k])
