"""Wash-sale ledger: lots, realized gains and IRC 1091 adjustments from a trade history.

The rules (citations and every choice are in ``docs/tax.md``):

- buys open lots; sells close them first-in-first-out by acquisition, or from the lot a sell names
  (specific identification, Treas. Reg. 1.1012-1(c));
- a loss sale in a taxable account is a wash sale, share for share, when substantially identical
  shares (same ``group``) are acquired anywhere in the household from 30 days before to 30 days
  after the sale date, IRC 1091(a); sold shares and replacement shares are matched in order of
  acquisition, Reg. 1.1091-1(c), (d); a share that once served as replacement is not used again,
  Reg. 1.1091-1(e);
- the disallowed loss is added to the replacement shares' basis, 1091(d), and the sold shares'
  holding period is added to theirs, IRC 1223(3) (the adjusted acquisition date moves back by the
  days the sold shares were held);
- a replacement bought in a tax-deferred or tax-exempt account makes the loss permanently lost:
  no basis is added anywhere (Rev. Rul. 2008-5); the rows are flagged ``permanent``.

Replacement candidates are the shares still held when the loss sale happens (acquired in the 30
days before) and the shares bought in the 30 days after; shares of the very lot (purchase) the loss
shares came from never replace them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from optirebal.errors import InputError
from optirebal.tax.holding import is_long_term, to_day_array

__all__ = ["ACCOUNT_TYPES", "WINDOW_DAYS", "LedgerResult", "wash_sale_ledger"]

WINDOW_DAYS = 30  #: IRC 1091(a): 30 days before and 30 days after the sale date
ACCOUNT_TYPES = ("taxable", "tax_deferred", "tax_exempt")
_EPS = 1e-9  # shares below this are rounding dust, not a position
_REQUIRED = ("date", "account", "security", "shares", "price")


@dataclass(frozen=True, eq=False)
class LedgerResult:
    """What a trade history comes to under the wash-sale rules.

    Attributes
    ----------
    realized
        One row per piece of a lot sold: ``date``, ``account``, ``account_type``, ``security``,
        ``group``, ``lot``, ``shares``, ``proceeds``, ``basis`` (adjusted), ``gain`` (proceeds
        minus basis), ``disallowed_loss`` (>= 0), ``recognized_gain`` (gain plus disallowed loss:
        what enters netting), ``acquired`` (adjusted acquisition date), ``term`` ("short" or
        "long"), ``wash_sale``, ``permanent``. A lot sale partly washed is split into rows.
    lots
        Open lots after the history: ``lot``, ``piece`` (a lot splits when part of it becomes
        replacement stock), ``account``, ``account_type``, ``security``, ``group``, ``shares``,
        ``basis`` (adjusted, currency), ``acquired``, ``adjusted_acquired``, ``wash_basis_added``,
        ``replacement`` (already used as replacement, cannot be used again).
    adjustments
        One row per (loss sale piece, replacement piece) match: ``sale_date``, ``account``,
        ``security``, ``sold_lot``, ``replacement_lot``, ``replacement_piece``,
        ``replacement_account``, ``replacement_security``, ``replacement_acquired``, ``shares``,
        ``disallowed_loss``, ``basis_added``, ``holding_days_added``, ``permanent``.
    pending
        Loss sales with shares not yet matched whose window is still open at the last date of the
        history: ``date``, ``account``, ``security``, ``group``, ``lot``, ``shares``, ``loss``,
        ``window_end`` (last date a buy of the group would still wash the loss).
    """

    realized: pd.DataFrame
    lots: pd.DataFrame
    adjustments: pd.DataFrame
    pending: pd.DataFrame


@dataclass(eq=False)  # pieces are told apart by identity
class _Piece:
    """Shares of one lot with one basis per share and one holding period."""

    lot: str
    piece: int
    seq: int  # position of the buy in the history: the order of acquisition
    account: str
    account_type: str
    security: str
    group: str
    shares: float
    basis: float
    acquired: dt.date
    adjusted_acquired: dt.date  # moved back by tacked holding periods, IRC 1223(3)
    wash_basis_added: float = 0.0
    replacement: bool = False  # already used as replacement stock

    def take(self, shares: float, piece: int) -> _Piece:
        """Split ``shares`` off into a new piece; basis follows the shares pro rata."""
        frac = shares / self.shares
        part = replace(
            self, piece=piece, shares=shares, basis=self.basis * frac,
            wash_basis_added=self.wash_basis_added * frac,
        )  # fmt: skip
        self.shares -= shares
        self.basis -= part.basis
        self.wash_basis_added -= part.wash_basis_added
        return part


@dataclass(eq=False)
class _Sale:
    """One piece of a lot sold, with the replacement shares matched to it."""

    date: dt.date
    sold: _Piece
    proceeds: float
    matched: list[tuple[float, bool]] = field(default_factory=list)  # (shares, permanent)

    @property
    def loss_per_share(self) -> float:
        return (self.sold.basis - self.proceeds) / self.sold.shares

    @property
    def unmatched(self) -> float:
        # Only a loss in a taxable account can be washed; a loss within rounding of zero (from
        # pro-rata basis splits) is no loss.
        loss = self.sold.basis - self.proceeds
        if self.sold.account_type != "taxable" or loss <= 1e-9 * max(1.0, abs(self.sold.basis)):
            return 0.0
        return self.sold.shares - sum(k for k, _ in self.matched)


def _text(value: Any) -> str | None:
    """A label or None when missing (NaN, None, empty)."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return None
    text = str(value).strip()
    return text or None


def _plain(label: Any) -> Any:
    return label.item() if isinstance(label, np.generic) else label


def _first_labels(keys: list[str | None], values: list[str | None]) -> dict[str | None, str]:
    """First non-missing value of each key (a security's group, an account's type)."""
    first: dict[str | None, str] = {}
    for key, value in zip(keys, values, strict=True):
        if value is not None:
            first.setdefault(key, value)
    return first


def _read(trades: pd.DataFrame) -> list[dict[str, Any]]:
    """Validate the history and return one plain dict per row, in order."""
    if not isinstance(trades, pd.DataFrame):
        raise InputError("the trade history must be a pandas DataFrame", field="trades")
    for name in _REQUIRED:
        if name not in trades.columns:
            raise InputError(f"missing column; required: {', '.join(_REQUIRED)}", field=name)
    n = len(trades)
    labels = [_plain(x) for x in trades.index]
    dates = [d.item() for d in to_day_array(trades["date"], "date")] if n else []
    col = {c: trades[c].tolist() for c in ("shares", "price")}
    text: dict[str, list[str | None]] = {
        c: [_text(v) for v in trades[c].tolist()] if c in trades.columns else [None] * n
        for c in ("account", "security", "lot_id", "group", "account_type")
    }
    for c in ("account", "security"):
        if None in text[c]:
            raise InputError("missing value", field=c, row=labels[text[c].index(None)])
    group_of = _first_labels(text["security"], text["group"])
    type_of = _first_labels(text["account"], text["account_type"])
    rows: list[dict[str, Any]] = []
    for pos, label in enumerate(labels):
        if pos and dates[pos] < dates[pos - 1]:
            raise InputError(
                f"dates out of order ({dates[pos]} after {dates[pos - 1]}); sort the history "
                "by date, keeping the order of trades within a day",
                field="date", row=label,
            )  # fmt: skip
        account, security = str(text["account"][pos]), str(text["security"][pos])
        row: dict[str, Any] = {
            "pos": pos, "label": label, "date": dates[pos], "account": account,
            "security": security, "lot_id": text["lot_id"][pos],
            "group": group_of.get(security, security),
            "account_type": type_of.get(account, "taxable"),
        }  # fmt: skip
        for c in ("shares", "price"):
            try:
                row[c] = float(col[c][pos])
            except (TypeError, ValueError):
                raise InputError(f"not a number: {col[c][pos]!r}", field=c, row=label) from None
            if not np.isfinite(row[c]):
                raise InputError("missing or infinite value", field=c, row=label)
        if abs(row["shares"]) <= _EPS:
            raise InputError("zero shares; buy (+) or sell (-)", field="shares", row=label)
        if row["price"] < 0:
            raise InputError("negative price", field="price", row=label)
        kind = text["account_type"][pos]
        if kind is not None and kind not in ACCOUNT_TYPES:
            raise InputError(
                f"{kind!r} is not one of {', '.join(ACCOUNT_TYPES)}",
                field="account_type",
                row=label,
            )
        for c, first, what in (
            ("group", row["group"], f"security {security!r}"),
            ("account_type", row["account_type"], f"account {account!r}"),
        ):
            given = text[c][pos]
            if given is not None and given != first:
                raise InputError(f"{what} is {first!r} in another row", field=c, row=label)
        rows.append(row)
    return rows


class _Ledger:
    def __init__(self) -> None:
        self.held: dict[tuple[str, str], list[_Piece]] = {}  # (account, security) -> open pieces
        self.by_group: dict[str, list[_Piece]] = {}
        self.lot_pieces: dict[str, list[_Piece]] = {}  # open pieces of each lot id ever opened
        self.lot_home: dict[str, tuple[str, str]] = {}
        self.n_pieces: dict[str, int] = {}
        self.sales: list[_Sale] = []
        self.pending: list[_Sale] = []
        self.adjustments: list[dict[str, Any]] = []

    def _add(self, piece: _Piece) -> None:
        self.held.setdefault((piece.account, piece.security), []).append(piece)
        self.by_group.setdefault(piece.group, []).append(piece)
        self.lot_pieces.setdefault(piece.lot, []).append(piece)

    def _drop(self, piece: _Piece) -> None:
        self.held[(piece.account, piece.security)].remove(piece)
        self.by_group[piece.group].remove(piece)
        self.lot_pieces[piece.lot].remove(piece)

    def _split(self, piece: _Piece, shares: float) -> _Piece:
        """Return a piece of exactly ``shares`` shares, splitting ``piece`` when it holds more."""
        if shares >= piece.shares - _EPS:
            return piece
        self.n_pieces[piece.lot] += 1
        part = piece.take(shares, self.n_pieces[piece.lot] - 1)
        self._add(part)
        return part

    def buy(self, row: dict[str, Any], lot: str) -> None:
        piece = _Piece(
            lot, 0, row["pos"], row["account"], row["account_type"], row["security"],
            row["group"], row["shares"], row["shares"] * row["price"], row["date"], row["date"],
        )  # fmt: skip
        self.lot_home[lot] = (row["account"], row["security"])
        self.n_pieces[lot] = 1
        self._add(piece)
        # A buy replaces the earliest loss sales of its group in the 30 days before it.
        start = row["date"] - dt.timedelta(days=WINDOW_DAYS)
        self.pending = [s for s in self.pending if s.date >= start and s.unmatched > _EPS]
        for sale in self.pending:
            if sale.sold.group != piece.group or sale.unmatched <= _EPS:
                continue
            whole = sale.unmatched >= piece.shares - _EPS
            self._match(sale, self._split(piece, min(sale.unmatched, piece.shares)))
            if whole:  # else ``piece`` keeps the shares not used yet
                break

    def sell(self, row: dict[str, Any]) -> None:
        key, label, want = (row["account"], row["security"]), row["label"], -row["shares"]
        if row["lot_id"] is not None:
            lot, piece_no = row["lot_id"], None
            base, _, number = lot.rpartition("#")
            if lot not in self.lot_home and base in self.lot_home and number.isdigit():
                lot, piece_no = base, int(number)  # "<lot>#<k>": piece k of a split lot
            if lot not in self.lot_home:
                raise InputError(
                    f"unknown lot id {lot!r}: no earlier buy opened it", field="lot_id", row=label
                )
            if self.lot_home[lot] != key:
                raise InputError(
                    f"lot {lot!r} holds {self.lot_home[lot][1]!r} in {self.lot_home[lot][0]!r}",
                    field="lot_id", row=label,
                )  # fmt: skip
            source = sorted(self.lot_pieces[lot], key=lambda p: (p.adjusted_acquired, p.piece))
            if piece_no is not None:
                source = [p for p in source if p.piece == piece_no]
            where = f"lot {row['lot_id']!r}"
        else:
            source = sorted(
                self.held.get(key, []), key=lambda p: (p.seq, p.adjusted_acquired, p.piece)
            )
            where = f"{row['security']!r} in account {row['account']!r}"
        have = sum(p.shares for p in source)
        if want > have + _EPS:
            raise InputError(
                f"sells {want:g} shares but {where} holds {have:g}; short sales are not supported",
                field="shares", row=label,
            )  # fmt: skip
        sold: list[_Sale] = []
        for piece in source:
            if want <= _EPS:
                break
            part = self._split(piece, min(want, piece.shares))
            want -= part.shares
            self._drop(part)
            sold.append(_Sale(row["date"], part, part.shares * row["price"]))
        self.sales.extend(sold)
        # Shares still held that were bought in the 30 days before replace the sold loss shares,
        # both taken in order of acquisition (Reg. 1.1091-1(c), (d)).
        start = row["date"] - dt.timedelta(days=WINDOW_DAYS)
        for sale in sorted(sold, key=lambda s: (s.sold.seq, s.sold.adjusted_acquired)):
            if sale.unmatched <= _EPS:
                continue
            candidates = sorted(
                (
                    p for p in self.by_group.get(sale.sold.group, [])
                    if not p.replacement and p.lot != sale.sold.lot and p.acquired >= start
                ),
                key=lambda p: (p.seq, p.piece),
            )  # fmt: skip
            for piece in candidates:
                if sale.unmatched <= _EPS:
                    break
                self._match(sale, self._split(piece, min(sale.unmatched, piece.shares)))
            if sale.unmatched > _EPS:
                self.pending.append(sale)

    def _match(self, sale: _Sale, piece: _Piece) -> None:
        """Wash ``piece.shares`` of ``sale`` against the replacement ``piece`` (whole)."""
        disallowed = piece.shares * sale.loss_per_share
        permanent = piece.account_type != "taxable"
        held_days = (sale.date - sale.sold.adjusted_acquired).days
        if not permanent:  # 1091(d) basis, 1223(3) holding period
            piece.basis += disallowed
            piece.wash_basis_added += disallowed
            piece.adjusted_acquired -= dt.timedelta(days=held_days)
        piece.replacement = True
        sale.matched.append((piece.shares, permanent))
        self.adjustments.append(
            {
                "sale_date": sale.date, "account": sale.sold.account,
                "security": sale.sold.security, "sold_lot": sale.sold.lot,
                "replacement_lot": piece.lot, "replacement_piece": piece.piece,
                "replacement_account": piece.account, "replacement_security": piece.security,
                "replacement_acquired": piece.acquired,
                "shares": piece.shares, "disallowed_loss": disallowed,
                "basis_added": 0.0 if permanent else disallowed,
                "holding_days_added": 0 if permanent else held_days, "permanent": permanent,
            }
        )  # fmt: skip


def ledger_of(trades: pd.DataFrame) -> _Ledger:
    """The ledger after ``trades`` (read as :func:`wash_sale_ledger` reads them), before any
    frame is built: what a caller reading only the realized pieces
    (:func:`realized_rows`) needs, without the cost of the four result frames."""
    return _run(_read(trades))


def _run(rows: list[dict[str, Any]]) -> _Ledger:
    named = {r["lot_id"] for r in rows if r["shares"] > 0 and r["lot_id"] is not None}
    ledger = _Ledger()
    for row in rows:
        if row["shares"] < 0:
            ledger.sell(row)
            continue
        lot = row["lot_id"]
        if lot is None:
            lot = f"L{row['pos']}"
            while lot in named or lot in ledger.lot_home:
                lot += "_"  # never collide with an id the user gave
        elif lot in ledger.lot_home:
            raise InputError(
                f"lot id {lot!r} already opened by an earlier buy", field="lot_id", row=row["label"]
            )
        ledger.buy(row, lot)
    return ledger


def realized_rows(ledger: _Ledger) -> list[dict[str, Any]]:
    """The realized pieces of every sale of ``ledger``, as the rows of
    :attr:`LedgerResult.realized`."""
    return [r for sale in ledger.sales for r in _realized_rows(sale)]


def _realized_rows(sale: _Sale) -> list[dict[str, Any]]:
    """Split a sold piece into its washed, permanently lost and deductible parts."""
    p = sale.sold
    washed = sum(k for k, perm in sale.matched if not perm)
    lost = sum(k for k, perm in sale.matched if perm)
    parts = [(washed, True, False), (lost, True, True), (p.shares - washed - lost, False, False)]
    term = "long" if is_long_term(p.adjusted_acquired, sale.date) else "short"
    rows = []
    for shares, wash, permanent in parts:
        if shares <= _EPS:
            continue
        frac = shares / p.shares
        proceeds, basis = sale.proceeds * frac, p.basis * frac
        disallowed = basis - proceeds if wash else 0.0
        rows.append(
            {
                "date": sale.date, "account": p.account, "account_type": p.account_type,
                "security": p.security, "group": p.group, "lot": p.lot, "shares": shares,
                "proceeds": proceeds, "basis": basis, "gain": proceeds - basis,
                "disallowed_loss": disallowed, "recognized_gain": proceeds - basis + disallowed,
                "acquired": p.adjusted_acquired, "term": term, "wash_sale": wash,
                "permanent": permanent,
            }
        )  # fmt: skip
    return rows


# Columns of the result frames, in order; the dtype of a column follows from its name.
# fmt: off
_REALIZED = (
    "date", "account", "account_type", "security", "group", "lot", "shares", "proceeds", "basis",
    "gain", "disallowed_loss", "recognized_gain", "acquired", "term", "wash_sale", "permanent",
)
_LOTS = (
    "lot", "piece", "account", "account_type", "security", "group", "shares", "basis", "acquired",
    "adjusted_acquired", "wash_basis_added", "replacement",
)
_ADJUSTMENTS = (
    "sale_date", "account", "security", "sold_lot", "replacement_lot", "replacement_piece",
    "replacement_account", "replacement_security", "replacement_acquired", "shares",
    "disallowed_loss", "basis_added", "holding_days_added", "permanent",
)
_PENDING = ("date", "account", "security", "group", "lot", "shares", "loss", "window_end")
_DATES = {
    "date", "acquired", "adjusted_acquired", "sale_date", "replacement_acquired", "window_end",
}
_FLOATS = {
    "shares", "proceeds", "basis", "gain", "disallowed_loss", "recognized_gain", "loss",
    "wash_basis_added", "basis_added",
}
# fmt: on
_INTS = {"piece", "replacement_piece", "holding_days_added"}
_BOOLS = {"wash_sale", "permanent", "replacement"}


def _frame(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> pd.DataFrame:
    """A frame with fixed columns and dtypes, empty or not (dates as datetime64[ns]).

    Built column by column from numpy arrays: the ledger's frames are often a few rows, where
    pandas' per-column conversions would cost more than the ledger itself.
    """
    data: dict[str, Any] = {}
    for col in columns:
        values = [row.get(col) for row in rows]
        if col in _DATES:
            data[col] = np.array(values, dtype="datetime64[ns]")
        elif col in _FLOATS:
            data[col] = np.array(values, dtype=np.float64)
        elif col in _INTS:
            data[col] = np.array(values, dtype=np.int64)
        elif col in _BOOLS:
            data[col] = np.array(values, dtype=bool)
        else:
            data[col] = pd.Series(values, dtype=object).astype("str")
    return pd.DataFrame(data, columns=list(columns))


def wash_sale_ledger(trades: pd.DataFrame) -> LedgerResult:
    """Apply lot accounting and the wash-sale rules (IRC 1091) to a household's trade history.

    Parameters
    ----------
    trades
        One row per trade, in date order (trades of one day in the order they happened):
        ``date``; ``account``; ``security``; ``shares`` (+ buy, - sell); ``price`` (currency per
        share); optional ``lot_id`` (on a buy: the new lot's id, default ``"L<position>"``; on a
        sell: the lot to sell, default first-in-first-out; ``"<lot>#<k>"`` names piece ``k`` of a
        lot split by a wash sale, as in ``LedgerResult.lots``); optional ``group`` (substantially
        identical group, default the security); optional ``account_type`` (``taxable``,
        ``tax_deferred`` or ``tax_exempt``; default ``taxable``). Not modified.

    Returns
    -------
    LedgerResult
        Realized pieces, open lots, basis and holding-period adjustments, open loss windows.

    Raises
    ------
    InputError
        Naming the field and the row: missing columns or values, dates out of order, a sell of
        more than is held, an unknown or misplaced lot id, a duplicated lot id on a buy.

    Examples
    --------
    IRS Publication 550, wash sales, example 1:

    >>> trades = pd.DataFrame({
    ...     "date": pd.to_datetime(["2014-05-01", "2014-07-01", "2014-07-05"]),
    ...     "account": "joint", "security": "XYZ",
    ...     "shares": [100, -100, 100], "price": [10.0, 7.5, 8.0]})
    >>> result = wash_sale_ledger(trades)
    >>> result.realized[["shares", "gain", "disallowed_loss", "recognized_gain"]]
       shares   gain  disallowed_loss  recognized_gain
    0   100.0 -250.0            250.0              0.0
    >>> result.lots[["shares", "basis", "adjusted_acquired"]]
       shares   basis adjusted_acquired
    0   100.0  1050.0        2014-05-05
    """
    rows = _read(trades)
    ledger = _run(rows)
    realized = realized_rows(ledger)
    lots = sorted((p for ps in ledger.held.values() for p in ps), key=lambda p: (p.seq, p.piece))
    window = dt.timedelta(days=WINDOW_DAYS)
    # a loss sale whose window reaches the last date may still be washed by a later buy
    pending = [
        s for s in ledger.sales if s.unmatched > _EPS and s.date + window >= rows[-1]["date"]
    ]
    pending_rows = [
        {"date": s.date, "shares": s.unmatched, "loss": s.unmatched * s.loss_per_share,
         "window_end": s.date + window, **{c: getattr(s.sold, c) for c in _PENDING[1:5]}}
        for s in pending
    ]  # fmt: skip
    return LedgerResult(
        realized=_frame(realized, _REALIZED),
        lots=_frame([{c: getattr(p, c) for c in _LOTS} for p in lots], _LOTS),
        adjustments=_frame(ledger.adjustments, _ADJUSTMENTS),
        pending=_frame(pending_rows, _PENDING),
    )
