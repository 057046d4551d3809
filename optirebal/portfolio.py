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

Every frame is checked against its schema (:mod:`optirebal.portfolio_frames`; derivatives:
:data:`optirebal.overlay.DERIVATIVES`): an unknown column is
an error naming it and the nearest known one, ``name`` and ``description`` columns are kept as
given, dates are ISO 8601 (``YYYY-MM-DD``) or date objects. A cost column that is missing, or an
empty cell of one, takes its default, and the portfolio records which (:attr:`Portfolio.defaults`);
:func:`check_cost_inputs` refuses the impact columns a policy with impact needs.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from optirebal.errors import InputError
from optirebal.frame_checks import check_finite, indexed, positions
from optirebal.portfolio_frames import (
    ACCOUNTS,
    HISTORY,
    IMPACT_COLUMNS,
    LOTS,
    SCHEDULED,
    STACK_FAILED,
    Columns,
    check_account_types,
    check_lots,
    exposure_frame,
    stacked_ids,
    stacked_schema,
    stacked_trades,
    trades_frame,
    validate_accounts,
    validate_lots,
    validate_securities,
    validate_signals,
)
from optirebal.risk import RiskModel
from optirebal.schema import date, number, numeric_matrix

if TYPE_CHECKING:
    from optirebal.policy import Policy


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
        sec, defaults = validate_securities(indexed(securities, "security", "securities"))
        acc = validate_accounts(indexed(accounts, "account", "accounts"))
        lot = validate_lots(indexed(lots, "lot", "lots"), sec, acc, as_of)
        exp = exposure_frame(sec, exposures)
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
        acc = validate_accounts(indexed(accounts, "account", "accounts"))
        lot = validate_lots(indexed(lots, "lot", "lots"), self.securities, acc, self.as_of)
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
        accs = stacked_ids([a for a, _, _, _ in holdings], "account", "accounts")
        lots = stacked_ids([lot for _, lot, _, _ in holdings], "lot", "lots")
        if accs is None or lots is None or (np.diff(accs[1]) == 0).any():
            return None  # a frame of another kind, other columns, bad ids or no account
        try:
            acc = check_account_types(stacked_schema(accs[0], ACCOUNTS))
            lot = stacked_schema(lots[0], LOTS)
            # each lot's account must be one of its own holder's accounts
            holder_acc = np.repeat(np.arange(len(holdings)), np.diff(accs[1]))
            holder_lot = np.repeat(np.arange(len(holdings)), np.diff(lots[1]))
            own = pd.MultiIndex.from_arrays([holder_acc, acc.index])
            lot = check_lots(lot, self.securities, acc, self.as_of,
                              own=pd.MultiIndex.from_arrays([holder_lot, lot["account"]]
                                                            ).isin(own))
        except InputError:
            return None
        trades = [stacked_trades([h[k] for h in holdings], schema)
                  for k, schema in ((2, HISTORY), (3, SCHEDULED))]
        if trades[0] is STACK_FAILED or trades[1] is STACK_FAILED:
            return None
        out = []
        acc_columns, lot_columns = Columns(acc), Columns(lot)
        for n in range(len(holdings)):
            acc_rows, lot_rows = (accs[1][n], accs[1][n + 1]), (lots[1][n], lots[1][n + 1])
            one_acc = acc.iloc[acc_rows[0]:acc_rows[1]].copy()
            one_lot = lot.iloc[lot_rows[0]:lot_rows[1]].copy()
            try:
                portfolio = self._holding(one_acc, one_lot, trades[0][n], trades[1][n], None,
                                          trades_checked=True)
            except InputError:
                return None
            # each column read once for the chunk, each holder's a slice of it
            portfolio.__dict__["account_columns"] = acc_columns.rows(*acc_rows, one_acc)
            portfolio.__dict__["lot_columns"] = lot_columns.rows(*lot_rows, one_lot)
            out.append(portfolio)
        return out

    def _holding(self, acc: pd.DataFrame, lot: pd.DataFrame, history: pd.DataFrame | None,
                 scheduled: pd.DataFrame | None, derivatives: pd.DataFrame | None, *,
                 trades_checked: bool = False) -> Portfolio:
        """This portfolio's securities with validated accounts and lots, and the derivatives
        and wash-sale inputs validated against them (``trades_checked``: the history and
        scheduled buys have passed their schema already,
        :func:`~optirebal.portfolio_frames.stacked_trades`)."""
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
                history = None if history is None else trades_frame(history, HISTORY)
                scheduled = None if scheduled is None else trades_frame(scheduled, SCHEDULED)
            portfolio = dataclasses.replace(
                portfolio,
                history=None if history is None else validate_history(
                    history, sec, acc, lot, as_of),
                scheduled=None if scheduled is None else validate_scheduled(
                    scheduled, sec, acc, as_of))
        # the same securities frame: its columns, read once for the universe, are shared
        portfolio.__dict__["security_columns"] = self.security_columns
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
        return dataclasses.replace(self, accounts=validate_accounts(acc))

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
        lot = validate_lots(indexed(lots, "lot", "lots"), self.securities, self.accounts,
                             self.as_of)
        return dataclasses.replace(self, lots=lot)

    # --- derived quantities -------------------------------------------------------------------

    @cached_property
    def lot_columns(self) -> Columns:
        """The lots' columns as read-only arrays, each read once (:class:`Columns`)."""
        return Columns(self.lots)

    @cached_property
    def account_columns(self) -> Columns:
        """The accounts' columns as read-only arrays, each read once."""
        return Columns(self.accounts)

    @cached_property
    def security_columns(self) -> Columns:
        """The securities' columns as read-only arrays, each read once (shared by the
        portfolios :meth:`with_holdings` builds over this universe)."""
        return Columns(self.securities)

    @cached_property
    def lot_values(self) -> pd.Series:
        """Market value of each lot (currency)."""
        # by position (a dict), not a reindex by label: this runs for every household of a
        # batch; a security not in the universe (position -1, the NaN appended) is NaN, as the
        # reindex gives
        lots = self.lot_columns
        where = positions(self.securities.index, lots["security"])
        price = np.append(self.security_columns.floats("price"), np.nan)[where]
        return pd.Series(lots["quantity"] * price, index=self.lots.index, name="value")

    @cached_property
    def holdings(self) -> pd.DataFrame:
        """Shares and value per account and security (only positions held)."""
        frame = self.lots.assign(value=self.lot_values)
        out = frame.groupby(["account", "security"], sort=True)[["quantity", "value"]].sum()
        return out.rename(columns={"quantity": "shares"})

    @property
    def cash_value(self) -> float:
        """Total cash across accounts before flows (currency)."""
        return float(self.account_columns.floats("cash").sum())

    @property
    def flow_value(self) -> float:
        """Total external flow across accounts (currency)."""
        return float(self.account_columns.floats("flow").sum())

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
