"""Events: what a rebalance repaired, fixed, defaulted or fell back on, as rows with numbers.

Every stage that changes or qualifies an answer records an :class:`Event` (a kind from
:data:`KINDS`, where it applies, a value and a limit); ``Result.events`` is their tidy frame and
the prose of ``Result.diagnostics.notes`` and ``.fixes`` is built from them, so tests and
pipelines can check kinds and numbers instead of wording.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

KINDS: dict[str, str] = {
    "not_triggered": "note",  # every class inside its trigger band, no cash to move
    "wash_prevented": "fix",  # groups whose wash-sale direction the bands decide (value: count)
    "wash_known_direction": "fix",  # directions carried from the last call (value: count)
    "wash_directions_dropped": "fix",  # those directions made the policy infeasible
    "wash_conflict": "fix",  # a group bought and sold at a loss, one side kept (security: group)
    "wash_exclusion_stale": "note",  # washed lots whose recent replacements are sold (value)
    "min_trade_dropped": "fix",  # orders below min_trade_value dropped (value)
    "cost_credit": "note",  # solved again, the soft rows' cost credit capped (value: currency)
    "min_trade_kept": "note",  # orders below the minimum kept: the bands need them (value)
    "no_trade_preferred": "note",  # trades found no better than none by 1e-12 of NAV: none
    "reduced_accuracy": "note",  # a verified answer at the solver's reduced tolerance
    "solver_fallback": "note",  # the answer came from a later solver of the chain (value)
    "tax_region": "note",  # the exact-netting region chosen (value: 1 to 5)
    "band_breach": "note",  # a class outside its band after rounding (value, limit: weights)
    "restriction": "note",  # a restriction held trades at zero (value: count)
    "cash_repair": "note",  # rounding repair moved value in a security (value: currency)
    "contract_residual": "note",  # exposure left by whole contracts (value: currency)
    "tax": "note",  # a tax rule applied (wash-sale exclusions, tax-free lots)
    "input_default": "note",  # a cost input took its default (value: securities; row: column)
    "wash_sale": "note",  # a sale flagged as a wash sale (value: disallowed loss, currency)
    "lot_relief": "note",  # a fixed relief order's tax above the program's (value: gap, currency)
}
"""Every event kind, and whether its message is a fix (between solves) or a note."""

COLUMNS = ("kind", "account", "security", "asset_class", "value", "limit", "message")


@dataclass(frozen=True)
class Event:
    """One thing a rebalance did or met (see :data:`KINDS`); money in currency, weights as
    fractions of NAV."""

    kind: str
    message: str
    account: str | None = None
    security: str | None = None
    asset_class: str | None = None
    value: float = np.nan
    limit: float = np.nan

    def __post_init__(self) -> None:
        if self.kind not in KINDS:  # a programming error, not a user's
            raise ValueError(f"unknown event kind {self.kind!r}")


def events_frame(events: Iterable[Event]) -> pd.DataFrame:
    """The events as a frame with :data:`COLUMNS`, in the order they happened."""
    rows = [{c: getattr(e, c) for c in COLUMNS} for e in events]
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    frame[["value", "limit"]] = frame[["value", "limit"]].astype(float)
    return frame.rename_axis("event")


def messages(events: Iterable[Event], role: str) -> tuple[str, ...]:
    """The messages of the events whose kind has ``role`` (``"fix"`` or ``"note"``)."""
    return tuple(e.message for e in events if KINDS[e.kind] == role)
