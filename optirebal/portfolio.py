"""`Portfolio`: securities, accounts, tax lots, market data and a risk model, validated once.

A portfolio is what is held and what the market says about it on one date. It knows nothing of
targets, costs preferences or tax rates: those are the :class:`~optirebal.policy.Policy`.

Frames and their columns (money in the base currency, fractions as plain floats):

``securities`` (index ``security``)
    ``price`` (currency per share, > 0), either ``asset_class`` (class name) or an ``exposures``
    frame given separately (securities x classes, loading per unit of value), ``half_spread_bps``,
    ``commission_bps``, ``commission_per_share`` (currency), ``daily_volatility`` (fraction of price
    per day), ``daily_traded_value`` (currency per day), ``lot_size`` (0 fractional, 1 whole
    shares, 100 round lots), ``group`` (substantially-identical group; default the security),
    ``impact_coefficient`` (dimensionless; default the policy's).
``accounts`` (index ``account``)
    ``type`` (``taxable``, ``tax_deferred``, ``tax_exempt``), ``cash``, ``flow`` (external cash flow
    at the trade date: contribution > 0, withdrawal < 0), ``cash_reserve`` (cash to keep).
``lots`` (index ``lot``)
    ``account``, ``security``, ``quantity`` (shares, > 0), ``cost_basis`` (currency, whole lot),
    ``acquired`` (date, not after ``as_of``).

Every frame is checked against its schema (:data:`SECURITIES`, :data:`ACCOUNTS`, :data:`LOTS`,
:data:`HISTORY`, :data:`SCHEDULED`; :data:`optirebal.overlay.DERIVATIVES`): an unknown column is
an error naming it and the nearest known one, ``name`` and ``description`` columns are kept as
given, dates are ISO 8601 (``YYYY-MM-DD``) or date objects. A cost column that is missing, or an
empty cell of one, takes its default, and the portfolio records which (:attr:`Portfolio.defaults`);
:func:`check_cost_inputs` refuses the impact columns a policy with impact needs.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from optirebal.errors import InputError
from optirebal.frame_checks import check_finite, indexed, positions
from optirebal.risk import RiskModel
from optirebal.schema import Col, FrameSchema, date, number, numeric_matrix, validate_frame

if TYPE_CHECKING:
    from optirebal.policy import Policy

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


@dataclass(frozen=True, eq=False)
class Portfolio:
    """Holdings by lot across accounts, with market data and a risk model, on one date.

    Build with :meth:`from_frames`; the constructor expects already-validated frames.

    Attributes
    ----------
    securities : DataFrame
        One row per security, every column of the module docstring filled in.
    exposures : DataFrame
        Classes x securities: exposure of one unit of value of a security to each asset class.
    accounts : DataFrame
        One row per account.
    lots : DataFrame
        One row per tax lot.
    as_of : datetime.date
        The trade date.
    risk : RiskModel
        Covariance of the asset classes, annualized (fraction squared per year).
    history : DataFrame or None
        Past trades of every household account, for the wash-sale rules
        (:func:`optirebal.tax.exclusions.validate_history`).
    scheduled : DataFrame or None
        Scheduled buys (dividend reinvestment, planned contributions), for the wash-sale rules
        (:func:`optirebal.tax.exclusions.validate_scheduled`).
    derivatives : DataFrame or None
        Derivative instruments and current contracts (index ``instrument``), validated by
        :func:`optirebal.overlay.validate_derivatives`; ``None`` without derivatives.
    """

    securities: pd.DataFrame
    exposures: pd.DataFrame
    accounts: pd.DataFrame
    lots: pd.DataFrame
    as_of: dt.date
    risk: RiskModel
    history: pd.DataFrame | None = None
    scheduled: pd.DataFrame | None = None
    derivatives: pd.DataFrame | None = None
    defaults: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    signals: pd.DataFrame | None = None
    """Per security cost column that took its default, the securities that took it (all of them
    when the column was missing); see :func:`check_cost_inputs`."""

    @classmethod
    def from_frames(
        cls,
        securities: pd.DataFrame,
        accounts: pd.DataFrame,
        lots: pd.DataFrame,
        *,
        as_of: dt.date | str,
        risk: RiskModel | pd.DataFrame,
        exposures: pd.DataFrame | None = None,
        history: pd.DataFrame | None = None,
        scheduled: pd.DataFrame | None = None,
        derivatives: pd.DataFrame | None = None,
        signals: pd.DataFrame | None = None,
    ) -> Portfolio:
        """Validate the frames and build a portfolio. Inputs are copied, never changed.

        Parameters
        ----------
        securities, accounts, lots : DataFrame
            See the module docstring for the columns; an index column may also be a plain column
            (``security``, ``account``, ``lot``).
        as_of : date or ISO string
            The trade date.
        risk : RiskModel or DataFrame
            A risk model, or a class covariance matrix (annualized) to build one from.
        exposures : DataFrame, optional
            Securities x classes loadings; replaces the ``asset_class`` column.
        history : DataFrame, optional
            The household's past trades (``date``, ``account``, ``security``, ``shares`` + buy
            / - sell, ``price``, ``cost_basis`` of the shares sold), in date order, none after
            ``as_of``; used by the wash-sale rules (DESIGN section 6).
        scheduled : DataFrame, optional
            Buys that will happen (``date`` on or after ``as_of``, ``account``, ``security``,
            ``shares`` or ``value``): dividend reinvestment, planned contributions.
        derivatives : DataFrame, optional
            Futures, swaps and options (index ``instrument``): ``price``, ``multiplier``,
            ``exposure_<class>`` columns or ``asset_class``, ``kind``, ``delta`` (options),
            ``premium`` (options), ``half_spread_bps``, ``margin_rate``, ``carry_per_year``,
            ``basis_volatility``, ``contracts``; see :mod:`optirebal.overlay`.
        signals : DataFrame, optional
            Per asset class (index ``asset_class``): ``momentum`` (a number; positive lets a
            winner run under :class:`optirebal.policy.Momentum`).

        Raises
        ------
        InputError
            Naming the field and row of the first problem found.
        """
        as_of = date(as_of, "as_of")
        sec, defaults = _validate_securities(indexed(securities, "security", "securities"))
        acc = _validate_accounts(indexed(accounts, "account", "accounts"))
        lot = _validate_lots(indexed(lots, "lot", "lots"), sec, acc, as_of)
        exp = _exposures(sec, exposures)
        if isinstance(risk, pd.DataFrame):
            risk = RiskModel.from_covariance(numeric_matrix(risk, "covariance"))
        if not isinstance(risk, RiskModel):
            raise InputError("must be a RiskModel or a covariance DataFrame", field="risk")
        missing = [k for k in exp.index if k not in risk.classes]
        if missing:
            raise InputError(
                f"the risk model has no class {missing[0]!r}; it covers {list(risk.classes)}",
                field="risk",
            )
        universe = cls(sec, exp, acc, lot, as_of, risk, defaults=defaults)
        portfolio = universe._holding(acc, lot, history, scheduled, derivatives)
        if signals is None:
            return portfolio
        return dataclasses.replace(portfolio,
                                   signals=validate_signals(signals, list(exp.index)))

    def with_holdings(
        self,
        accounts: pd.DataFrame,
        lots: pd.DataFrame,
        *,
        history: pd.DataFrame | None = None,
        scheduled: pd.DataFrame | None = None,
        derivatives: pd.DataFrame | None = None,
    ) -> Portfolio:
        """Another holder's portfolio over the same securities, exposures, risk model and date:
        its accounts, lots, wash-sale inputs and derivatives, validated as :meth:`from_frames`
        validates them (the same portfolio, the same errors). The securities and risk model are
        not validated again, so a book of households over one universe checks it once.

        Raises
        ------
        InputError
            Naming the field and row of the first problem found.
        """
        acc = _validate_accounts(indexed(accounts, "account", "accounts"))
        lot = _validate_lots(indexed(lots, "lot", "lots"), self.securities, acc, self.as_of)
        return self._holding(acc, lot, history, scheduled, derivatives)

    def with_holdings_together(
        self, holdings: Sequence[tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame | None,
                                       pd.DataFrame | None]],
    ) -> list[Portfolio] | None:
        """Many holders' portfolios over this universe, as :meth:`with_holdings` builds them
        from ``(accounts, lots, history, scheduled)``, with every check run once on the holders'
        frames stacked: the ids, the schema checks of the accounts, the lots, the histories and
        the scheduled buys, the account types, and the lots against the securities, each
        holder's own accounts and the date. The schema checks cost about 8 ms per frame
        whatever its length, and the other checks a millisecond per frame: most of a small
        household's validation.

        Returns ``None`` when the holders' frames do not have the same columns or any of them
        fails a check: then build each with :meth:`with_holdings`, whose errors name the
        holder's field and row.
        """
        if not holdings:
            return []
        accs = _stacked_ids([a for a, _, _, _ in holdings], "account", "accounts")
        lots = _stacked_ids([lot for _, lot, _, _ in holdings], "lot", "lots")
        if accs is None or lots is None or (np.diff(accs[1]) == 0).any():
            return None  # a frame of another kind, other columns, bad ids or no account
        try:
            acc = _check_account_types(_stacked_schema(accs[0], ACCOUNTS))
            lot = _stacked_schema(lots[0], LOTS)
            # each lot's account must be one of its own holder's accounts
            holder_acc = np.repeat(np.arange(len(holdings)), np.diff(accs[1]))
            holder_lot = np.repeat(np.arange(len(holdings)), np.diff(lots[1]))
            own = pd.MultiIndex.from_arrays([holder_acc, acc.index])
            lot = _check_lots(lot, self.securities, acc, self.as_of,
                              own=pd.MultiIndex.from_arrays([holder_lot, lot["account"]]
                                                            ).isin(own))
        except InputError:
            return None
        trades = [_stacked_trades([h[k] for h in holdings], schema)
                  for k, schema in ((2, HISTORY), (3, SCHEDULED))]
        if trades[0] is _FAILED or trades[1] is _FAILED:
            return None
        out = []
        for n in range(len(holdings)):
            one_acc = acc.iloc[accs[1][n]:accs[1][n + 1]].copy()
            one_lot = lot.iloc[lots[1][n]:lots[1][n + 1]].copy()
            try:
                out.append(self._holding(one_acc, one_lot, trades[0][n], trades[1][n], None,
                                         trades_checked=True))
            except InputError:
                return None
        return out

    def _holding(self, acc: pd.DataFrame, lot: pd.DataFrame, history: pd.DataFrame | None,
                 scheduled: pd.DataFrame | None, derivatives: pd.DataFrame | None, *,
                 trades_checked: bool = False) -> Portfolio:
        """This portfolio's securities with validated accounts and lots, and the derivatives
        and wash-sale inputs validated against them (``trades_checked``: the history and
        scheduled buys have passed their schema already, :func:`_stacked_trades`)."""
        sec, exp, as_of = self.securities, self.exposures, self.as_of
        der = None
        if derivatives is not None:
            from optirebal.overlay import validate_derivatives

            der = validate_derivatives(derivatives, list(exp.index))
        portfolio = type(self)(sec, exp, acc, lot, as_of, self.risk, derivatives=der,
                               defaults=self.defaults)
        if not portfolio.nav_value > 0:
            raise InputError(f"net asset value must be positive, got {portfolio.nav_value!r}")
        if history is not None or scheduled is not None:
            from optirebal.tax.exclusions import validate_history, validate_scheduled

            if not trades_checked:
                history = None if history is None else _trades(history, HISTORY)
                scheduled = None if scheduled is None else _trades(scheduled, SCHEDULED)
            portfolio = dataclasses.replace(
                portfolio,
                history=None if history is None else validate_history(
                    history, sec, acc, lot, as_of),
                scheduled=None if scheduled is None else validate_scheduled(
                    scheduled, sec, acc, as_of))
        return portfolio

    def with_prices(self, prices: Mapping[str, float] | pd.Series) -> Portfolio:
        """A copy with new prices (currency per share) for some or all securities."""
        prices = _numbers(prices, "price")
        unknown = [s for s in prices.index if s not in self.securities.index]
        if unknown:
            raise InputError("unknown security", field="price", row=unknown[0])
        sec = self.securities.copy()
        sec.loc[prices.index, "price"] = prices
        check_finite(sec, "price", minimum=0.0, strict=True)
        return dataclasses.replace(self, securities=sec)

    def with_accounts(self, **columns: Mapping[str, float]) -> Portfolio:
        """A copy with account columns replaced, e.g. ``with_accounts(flow={"ira": 5000.0})``."""
        acc = self.accounts.copy()
        for column, values in columns.items():
            if column not in acc.columns:
                raise InputError("unknown account column", field=column)
            series = (_numbers(values, column) if pd.api.types.is_numeric_dtype(acc[column])
                      else pd.Series(values, dtype=object))
            unknown = [a for a in series.index if a not in acc.index]
            if unknown:
                raise InputError("unknown account", field=column, row=unknown[0])
            if not pd.api.types.is_numeric_dtype(acc[column]):
                acc[column] = acc[column].astype(object)
            acc.loc[series.index, column] = series
        return dataclasses.replace(self, accounts=_validate_accounts(acc))

    def with_contracts(self, contracts: Mapping[str, float] | pd.Series) -> Portfolio:
        """A copy with new current contracts (signed, whole) for some derivative instruments.

        Raises
        ------
        InputError
            Contracts on an instrument not in the portfolio, or not whole.
        """
        from optirebal.overlay import validate_derivatives

        der = self.derivatives
        series = _numbers(contracts, "contracts")
        known = der.index if der is not None else pd.Index([])
        unknown = [str(d) for d in series.index if str(d) not in known]
        if unknown:
            raise InputError("contracts on an instrument not in the portfolio",
                             field="contracts", row=unknown[0])
        if der is None:
            return self
        der = der.copy()
        der.loc[series.index.map(str), "contracts"] = series.to_numpy()
        return dataclasses.replace(self, derivatives=validate_derivatives(der, self.classes))

    def with_lots(self, lots: pd.DataFrame) -> Portfolio:
        """A copy with a new lots frame (validated like :meth:`from_frames` does)."""
        lot = _validate_lots(indexed(lots, "lot", "lots"), self.securities, self.accounts,
                             self.as_of)
        return dataclasses.replace(self, lots=lot)

    # --- derived quantities -------------------------------------------------------------------

    @cached_property
    def lot_values(self) -> pd.Series:
        """Market value of each lot (currency)."""
        # by position (a dict), not a reindex by label: this runs for every household of a
        # batch; a security not in the universe (position -1, the NaN appended) is NaN, as the
        # reindex gives
        where = positions(self.securities.index, self.lots["security"])
        price = np.append(self.securities["price"].to_numpy(dtype=float), np.nan)[where]
        return pd.Series(self.lots["quantity"].to_numpy() * price, index=self.lots.index,
                         name="value")

    @cached_property
    def holdings(self) -> pd.DataFrame:
        """Shares and value per account and security (only positions held)."""
        frame = self.lots.assign(value=self.lot_values)
        out = frame.groupby(["account", "security"], sort=True)[["quantity", "value"]].sum()
        return out.rename(columns={"quantity": "shares"})

    @property
    def cash_value(self) -> float:
        """Total cash across accounts before flows (currency)."""
        return float(self.accounts["cash"].sum())

    @property
    def flow_value(self) -> float:
        """Total external flow across accounts (currency)."""
        return float(self.accounts["flow"].sum())

    @property
    def nav_value(self) -> float:
        """Pre-trade net asset value V (currency): holdings, cash and option premiums, before
        flows."""
        from optirebal.overlay import derivative_value

        return float(self.lot_values.sum()) + self.cash_value + derivative_value(self.derivatives)

    @property
    def classes(self) -> list[str]:
        """Asset classes the securities load on, in a stable order."""
        return self.exposures.index.tolist()

    def security_values(self) -> pd.Series:
        """Value held per security across accounts (currency), every security present."""
        held = self.lot_values.groupby(self.lots["security"]).sum()
        return held.reindex(self.securities.index, fill_value=0.0)


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


def check_cost_inputs(portfolio: Portfolio, policy: Policy) -> None:
    """Refuse a policy with market impact on a portfolio without the impact inputs.

    Impact is ``k sigma sqrt(V / ADV)``: a security whose ``daily_volatility`` (or
    ``daily_traded_value``) took its default (0, or infinite) would trade without impact, so
    with ``costs.impact`` other than ``"none"`` that is an error, not a silent zero.

    Raises
    ------
    InputError
        Naming the column and the first security that lacks it.
    """
    if policy.costs.impact == "none":
        return
    for column in IMPACT_COLUMNS:
        rows = portfolio.defaults.get(column, ())
        if rows:
            missing = len(rows) == len(portfolio.securities)
            what = "the column is missing" if missing else "the cell is empty"
            raise InputError(f"{what}, and costs.impact = {policy.costs.impact!r} needs it for "
                             "every security (give it, or set costs.impact = 'none')",
                             field=column, row=rows[0])


def _validate_securities(sec: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, tuple[str, ...]]]:
    if len(sec) == 0:
        raise InputError("no securities given", field="securities")
    sec, defaults = validate_frame(sec, SECURITIES)
    empty = sec["group"].isna() if "group" in sec.columns else pd.Series(True, index=sec.index)
    sec["group"] = sec["group"].where(~empty, sec.index.to_series()) if "group" in sec.columns \
        else sec.index.to_series()
    sec["group"] = sec["group"].astype(object)
    return sec, {k: v for k, v in defaults.items() if v}


def _exposures(sec: pd.DataFrame, exposures: pd.DataFrame | None) -> pd.DataFrame:
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


def _validate_accounts(acc: pd.DataFrame) -> pd.DataFrame:
    if len(acc) == 0:
        raise InputError("no accounts given", field="accounts")
    acc, _ = validate_frame(acc, ACCOUNTS)
    return _check_account_types(acc)


def _check_account_types(acc: pd.DataFrame) -> pd.DataFrame:
    for row, kind in acc["type"].items():
        if kind not in ACCOUNT_TYPES:
            near = difflib.get_close_matches(str(kind), ACCOUNT_TYPES, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise InputError(f"account type must be one of {ACCOUNT_TYPES}, got {kind!r}{hint}",
                             field="type", row=row)
    return acc


def _validate_lots(lot: pd.DataFrame, sec: pd.DataFrame, acc: pd.DataFrame,
                   as_of: dt.date) -> pd.DataFrame:
    lot, _ = validate_frame(lot, LOTS)
    return _check_lots(lot, sec, acc, as_of)


def _check_lots(lot: pd.DataFrame, sec: pd.DataFrame, acc: pd.DataFrame,
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


def _numbers(values: Mapping[str, float] | pd.Series, name: str) -> pd.Series:
    """New values by id as floats; text, a bool or a missing value is an error naming the id."""
    if not isinstance(values, Mapping | pd.Series):
        raise InputError(f"must be a mapping or Series by id, got {values!r}", field=name)
    series = values if isinstance(values, pd.Series) else pd.Series(dict(values), dtype=object)
    kind = series.dtype.kind
    if kind not in "fiu" or not len(series):  # not plain numbers: one by one
        for key, value in series.items():
            number(name, value, row=key)
    return series.astype(float)


def _stacked_ids(frames: Sequence[pd.DataFrame], name: str, what: str
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


def _stacked_schema(stacked: pd.DataFrame, schema: FrameSchema) -> pd.DataFrame:
    """One schema pass over many holders' rows (raises its InputError); labels made unique
    across holders for the check, restored after."""
    labels = stacked.index
    stacked = stacked.set_axis(pd.RangeIndex(len(stacked)).map(str), axis=0)
    valid, _ = validate_frame(stacked, schema)
    valid.index = labels
    return valid


_FAILED: list[pd.DataFrame | None] = []
"""What :func:`_stacked_trades` returns when a frame fails its schema."""


def _stacked_trades(frames: Sequence[pd.DataFrame | None], schema: FrameSchema
                    ) -> list[pd.DataFrame | None]:
    """Many holders' history (or scheduled) frames through :func:`_trades` in one schema pass,
    each with its own rows and index again; ``None`` stays ``None``; :data:`_FAILED` when a
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
                out[n] = _trades(f, schema)
            return out
        stacked = pd.concat(parts)
        stacked.index = pd.RangeIndex(len(stacked)).map(str)  # unique labels for the check
        valid = _trades(stacked, schema)
    except InputError:
        return _FAILED
    ends = np.cumsum([0, *(len(f) for f in parts)])
    for k, n in enumerate(given):
        one = valid.iloc[ends[k]:ends[k + 1]].copy()
        one.index = parts[k].index  # each frame's own labels
        out[n] = one
    return out


def _trades(frame: pd.DataFrame, schema: FrameSchema) -> pd.DataFrame:
    """A history or scheduled-buys frame checked against its schema (rows and index kept)."""
    if not isinstance(frame, pd.DataFrame):
        raise InputError(f"{schema.what} must be a pandas DataFrame, got "
                         f"{type(frame).__name__}", field=schema.what)
    if schema is SCHEDULED and {"shares", "value"} <= set(map(str, frame.columns)):
        raise InputError("give shares or value of each scheduled buy, not both",
                         field="scheduled.value")
    out, _ = validate_frame(frame, schema)
    return out
