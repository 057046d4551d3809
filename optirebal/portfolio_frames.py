"""The input frames of a :class:`~optirebal.portfolio.Portfolio`: their schemas, and the checks
that read them, one holder's frames at a time or a chunk of households stacked (a book).

Every frame is checked against its schema (:data:`SECURITIES`, :data:`ACCOUNTS`, :data:`LOTS`,
:data:`HISTORY`, :data:`SCHEDULED`; :data:`optirebal.overlay.DERIVATIVES`): an unknown column is
an error naming it and the nearest known one (:func:`optirebal.schema.validate_frame`).
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import pandas as pd

from optirebal.errors import InputError
from optirebal.frame_checks import indexed
from optirebal.schema import Col, FrameSchema, number, numeric_matrix, validate_frame


class Columns(Mapping[str, np.ndarray]):
    """A validated frame's columns as read-only numpy arrays, each read from the frame once.

    pandas 3 builds a new Series on every column read (25 to 40 microseconds each; pandas 2 kept
    them), and a household's solve reads its portfolio's columns about forty times, from the
    problem data to the decode. The arrays are what ``frame[name].to_numpy()`` returns, made
    read-only, since every reader of the portfolio shares them. Pickled as its frame alone.
    """

    __slots__ = ("_arrays", "frame")

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self._arrays: dict[str, np.ndarray] = {}

    def __getitem__(self, name: str) -> np.ndarray:
        values = self._arrays.get(name)
        if values is None:
            values = self._keep(name, self.frame[name].to_numpy())
        return values

    def floats(self, name: str) -> np.ndarray:
        """Column ``name`` as float64 (what ``frame[name].to_numpy(dtype=float)`` returns; a
        validated number column already is one, so no copy)."""
        return np.asarray(self[name], dtype=float)

    def _keep(self, name: str, values: np.ndarray) -> np.ndarray:
        values = values.view()
        values.flags.writeable = False
        self._arrays[name] = values
        return values

    def rows(self, start: int, stop: int, frame: pd.DataFrame) -> Columns:
        """The columns of ``frame``, which holds rows ``start:stop`` of this frame (a copy of
        them), as slices of the arrays read here: a chunk of households stacked reads each
        column once for all of them."""
        out = Columns(frame)
        for name in self.frame.columns:
            out._keep(name, self[name][start:stop])
        return out

    def __iter__(self) -> Iterator[str]:
        return iter(self.frame.columns)

    def __len__(self) -> int:
        return len(self.frame.columns)

    def __reduce__(self) -> tuple[type[Columns], tuple[pd.DataFrame]]:
        return Columns, (self.frame,)


ACCOUNT_TYPES = ("taxable", "tax_deferred", "tax_exempt")

SECURITY_DEFAULTS: Mapping[str, float] = {
    "half_spread_bps": 0.0,
    "commission_bps": 0.0,
    "commission_per_share": 0.0,
    "daily_volatility": 0.0,
    "daily_traded_value": np.inf,
    "lot_size": 0.0,
}
ACCOUNT_DEFAULTS: Mapping[str, float] = {"flow": 0.0, "cash_reserve": 0.0}
IMPACT_COLUMNS = ("daily_volatility", "daily_traded_value")
"""Security columns market impact needs: without them a policy with impact would charge none."""

_TEXT = Col("text")
_FREE = Col("any")  # descriptive columns, kept as given
SECURITIES = FrameSchema("securities", {
    "price": Col(required=True, gt=0),
    "asset_class": _TEXT,
    "half_spread_bps": Col(default=SECURITY_DEFAULTS["half_spread_bps"], ge=0),
    "commission_bps": Col(default=SECURITY_DEFAULTS["commission_bps"], ge=0),
    "commission_per_share": Col(default=SECURITY_DEFAULTS["commission_per_share"], ge=0),
    "daily_volatility": Col(default=SECURITY_DEFAULTS["daily_volatility"], ge=0),
    "daily_traded_value": Col(default=SECURITY_DEFAULTS["daily_traded_value"], gt=0,
                              allow_inf=True),
    "lot_size": Col(default=SECURITY_DEFAULTS["lot_size"], ge=0),
    "group": Col("text", empty=True),
    "impact_coefficient": Col(ge=0),
    "name": _FREE, "description": _FREE,
})
"""Columns of the ``securities`` frame (index ``security``)."""
ACCOUNTS = FrameSchema("accounts", {
    "type": Col("text", required=True),
    "cash": Col(required=True, ge=0),
    "flow": Col(default=ACCOUNT_DEFAULTS["flow"], fill_empty=False),
    "cash_reserve": Col(default=ACCOUNT_DEFAULTS["cash_reserve"], fill_empty=False, ge=0),
    "name": _FREE, "description": _FREE,
})
"""Columns of the ``accounts`` frame (index ``account``)."""
LOTS = FrameSchema("lots", {
    "account": Col("text", required=True),
    "security": Col("text", required=True),
    "quantity": Col(required=True, gt=0),
    "cost_basis": Col(required=True, ge=0),
    "acquired": Col("date", required=True),
    "description": _FREE,
})
"""Columns of the ``lots`` frame (index ``lot``)."""
HISTORY = FrameSchema("history", {
    "date": Col("date", required=True),
    "account": Col("text", required=True),
    "security": Col("text", required=True),
    "shares": Col(required=True),
    "price": Col(required=True, ge=0),
    "cost_basis": Col(empty=True, ge=0),
    "lot_id": Col("text", empty=True),
    "description": _FREE,
}, field_prefix="history.")
"""Columns of the ``history`` frame (one row per past trade)."""
SCHEDULED = FrameSchema("scheduled", {
    "date": Col("date", required=True),
    "account": Col("text", required=True),
    "security": Col("text", required=True),
    "shares": Col(),
    "value": Col(),
    "description": _FREE,
}, field_prefix="scheduled.")
"""Columns of the ``scheduled`` frame (buys that will happen)."""


def validate_signals(signals: pd.DataFrame, classes: list[str]) -> pd.DataFrame:
    """Signals per asset class: index ``asset_class`` (a column of that name also works), a
    finite ``momentum`` column; every class named must be one the securities load on."""
    frame = indexed(signals, "asset_class", "signals")
    if "momentum" not in frame.columns:
        raise InputError("signals need a 'momentum' column", field="signals.momentum")
    unknown = [c for c in frame.columns if c != "momentum"]
    if unknown:
        raise InputError(f"unknown signals column {unknown[0]!r}; known: momentum",
                         field=f"signals.{unknown[0]}")
    for name, value in frame["momentum"].items():
        number("signals.momentum", value, row=name)
        if name not in classes:
            raise InputError(f"no security loads on class {name!r}", field="signals",
                             row=str(name))
    return frame.astype(float)


def validate_securities(sec: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, tuple[str, ...]]]:
    if len(sec) == 0:
        raise InputError("no securities given", field="securities")
    sec, defaults = validate_frame(sec, SECURITIES)
    empty = sec["group"].isna() if "group" in sec.columns else pd.Series(True, index=sec.index)
    sec["group"] = sec["group"].where(~empty, sec.index.to_series()) if "group" in sec.columns \
        else sec.index.to_series()
    sec["group"] = sec["group"].astype(object)
    return sec, {k: v for k, v in defaults.items() if v}


def exposure_frame(sec: pd.DataFrame, exposures: pd.DataFrame | None) -> pd.DataFrame:
    """Classes x securities exposure matrix, from the ``asset_class`` column or a given frame."""
    if exposures is None:
        if "asset_class" not in sec.columns:
            raise InputError("give an asset_class column or an exposures frame",
                             field="asset_class")
        classes = sec["asset_class"]
        bad = classes.isna()
        if bad.any():
            raise InputError("missing class", field="asset_class", row=classes.index[bad][0])
        names = list(dict.fromkeys(str(c) for c in classes))
        matrix = pd.DataFrame(0.0, index=pd.Index(names, name="class"), columns=sec.index)
        for security, name in classes.items():
            matrix.loc[str(name), security] = 1.0
        return matrix
    exp = numeric_matrix(indexed(exposures, "security", "exposures"), "exposures")
    unknown = [s for s in exp.index if s not in sec.index]
    if unknown:
        raise InputError("unknown security in exposures", field="exposures", row=unknown[0])
    missing = [s for s in sec.index if s not in exp.index]
    if missing:
        raise InputError("security has no exposures row", field="exposures", row=missing[0])
    exp = exp.reindex(sec.index)
    for column in exp.columns:
        bad = ~np.isfinite(exp[column].to_numpy(dtype=float))
        if bad.any():
            value = exp[column].to_numpy()[bad][0]
            rule = "empty: give 0 for none" if np.isnan(value) else f"{value!r}: must be finite"
            raise InputError(f"exposure to class {str(column)!r} is {rule}", field="exposures",
                             row=exp.index[bad][0])
    silent = (exp.abs().sum(axis=1) == 0).to_numpy()
    if silent.any():
        raise InputError("the security has no exposure to any class", field="exposures",
                         row=exp.index[silent][0])
    matrix = exp.T.astype(float)
    matrix.index = matrix.index.map(str)
    matrix.index.name = "class"
    return matrix


def validate_accounts(acc: pd.DataFrame) -> pd.DataFrame:
    if len(acc) == 0:
        raise InputError("no accounts given", field="accounts")
    acc, _ = validate_frame(acc, ACCOUNTS)
    return check_account_types(acc)


def check_account_types(acc: pd.DataFrame) -> pd.DataFrame:
    for row, kind in acc["type"].items():
        if kind not in ACCOUNT_TYPES:
            near = difflib.get_close_matches(str(kind), ACCOUNT_TYPES, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise InputError(f"account type must be one of {ACCOUNT_TYPES}, got {kind!r}{hint}",
                             field="type", row=row)
    return acc


def validate_lots(lot: pd.DataFrame, sec: pd.DataFrame, acc: pd.DataFrame,
                   as_of: dt.date) -> pd.DataFrame:
    lot, _ = validate_frame(lot, LOTS)
    return check_lots(lot, sec, acc, as_of)


def check_lots(lot: pd.DataFrame, sec: pd.DataFrame, acc: pd.DataFrame,
                as_of: dt.date, own: np.ndarray | None = None) -> pd.DataFrame:
    """The checks of lots against the other frames (after the schema's). ``own``: per lot,
    whether its account is one of its holder's (the lots of many holders stacked); by default,
    whether it is in ``acc``."""
    for column, known in (("account", acc.index), ("security", sec.index)):
        bad = ~(own if column == "account" and own is not None else lot[column].isin(known))
        if bad.any():
            raise InputError(f"unknown {column} {lot[column][bad].iloc[0]!r}", field=column,
                             row=lot.index[bad][0])
    acquired = lot["acquired"]
    late = acquired.dt.date > as_of
    if late.any():
        raise InputError(f"acquired after as_of {as_of}", field="acquired",
                         row=lot.index[late][0])
    lot["acquired"] = acquired.dt.date
    return lot


def stacked_ids(frames: Sequence[pd.DataFrame], name: str, what: str
                 ) -> tuple[pd.DataFrame, np.ndarray] | None:
    """Many holders' frames of one kind stacked and indexed by ``name`` as :func:`indexed`
    indexes each (ids as text, none empty, none repeated within a holder), and where each
    holder's rows end (``ends[n]:ends[n + 1]``); ``None`` when a frame is not a DataFrame, the
    columns differ, or an id is bad (the holders are then checked one by one)."""
    if not all(isinstance(f, pd.DataFrame) for f in frames):
        return None
    columns = list(frames[0].columns)
    if any(list(f.columns) != columns for f in frames):
        return None
    ends = np.cumsum([0, *map(len, frames)])
    try:
        if name in columns:  # one set_index over the stack, the ids checked once
            stacked = indexed(pd.concat(frames, ignore_index=True), name, what,
                              duplicates=False)
        else:  # ids in each frame's index: as given
            stacked = pd.concat([indexed(f, name, what, duplicates=False) for f in frames])
    except InputError:
        return None
    holder = np.repeat(np.arange(len(frames)), np.diff(ends))
    if pd.MultiIndex.from_arrays([holder, stacked.index]).duplicated().any():
        return None
    return stacked, ends


def stacked_schema(stacked: pd.DataFrame, schema: FrameSchema) -> pd.DataFrame:
    """One schema pass over many holders' rows (raises its InputError); labels made unique
    across holders for the check, restored after."""
    labels = stacked.index
    stacked = stacked.set_axis(pd.RangeIndex(len(stacked)).map(str), axis=0)
    valid, _ = validate_frame(stacked, schema)
    valid.index = labels
    return valid


STACK_FAILED: list[pd.DataFrame | None] = []
"""What :func:`stacked_trades` returns when a frame fails its schema."""


def stacked_trades(frames: Sequence[pd.DataFrame | None], schema: FrameSchema
                    ) -> list[pd.DataFrame | None]:
    """Many holders' history (or scheduled) frames through :func:`trades_frame` in one schema pass,
    each with its own rows and index again; ``None`` stays ``None``; :data:`STACK_FAILED` when a
    frame fails (the holders are then checked one by one)."""
    given = [n for n, f in enumerate(frames) if f is not None]
    out: list[pd.DataFrame | None] = [None] * len(frames)
    if not given:
        return out
    parts = [f for f in frames if f is not None]
    try:
        if not all(isinstance(f, pd.DataFrame) for f in parts) or any(
                list(f.columns) != list(parts[0].columns) for f in parts):
            for n, f in zip(given, parts, strict=True):  # not alike: one pass each
                out[n] = trades_frame(f, schema)
            return out
        stacked = pd.concat(parts)
        stacked.index = pd.RangeIndex(len(stacked)).map(str)  # unique labels for the check
        valid = trades_frame(stacked, schema)
    except InputError:
        return STACK_FAILED
    ends = np.cumsum([0, *(len(f) for f in parts)])
    for k, n in enumerate(given):
        one = valid.iloc[ends[k]:ends[k + 1]].copy()
        one.index = parts[k].index  # each frame's own labels
        out[n] = one
    return out


def trades_frame(frame: pd.DataFrame, schema: FrameSchema) -> pd.DataFrame:
    """A history or scheduled-buys frame checked against its schema (rows and index kept)."""
    if not isinstance(frame, pd.DataFrame):
        raise InputError(f"{schema.what} must be a pandas DataFrame, got "
                         f"{type(frame).__name__}", field=schema.what)
    if schema is SCHEDULED and {"shares", "value"} <= set(map(str, frame.columns)):
        raise InputError("give shares or value of each scheduled buy, not both",
                         field="scheduled.value")
    out, _ = validate_frame(frame, schema)
    return out
