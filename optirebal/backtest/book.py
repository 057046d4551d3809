"""`Book`: the household carried through a backtest (lots, cash, trades and realized gains).

Applying a result is where time enters the tax rules, so the book keeps the household's whole
trade history (the opening lots as buys on their acquisition dates, then every trade of the
backtest) and, when an account is taxable, re-reads it with the statute's ledger
(:func:`optirebal.tax.ledger.wash_sale_ledger`) after every trade date: that ledger is what
washes a loss sold today and bought back ten days later in any account, adds the disallowed loss
to the replacement shares' basis and tacks the holding period (IRC 1091(a), (d); 1223(3)), and
its realized gains are what the year's netting sees. Lots of a piece split by a wash sale are
``"<lot>#<piece>"``. Without a taxable account no tax rule reads a lot's basis or date, so the
lots of an account and security are kept as one.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pandas as pd

from optirebal.decode.frames import Decision
from optirebal.errors import OptirebalError
from optirebal.policy import Policy
from optirebal.portfolio import Portfolio
from optirebal.program.data import ProblemData
from optirebal.tax.exclusions import validate_history
from optirebal.tax.ledger import WINDOW_DAYS, LedgerResult, wash_sale_ledger
from optirebal.tax.netting import exact_tax

_EPS = 1e-9
HISTORY_DAYS = 2 * WINDOW_DAYS + 1  # what the program's wash-sale exclusions look back on
_TRADE_COLUMNS = ("date", "account", "security", "shares", "price", "cost_basis", "lot_id")


class Book:
    """Lots, cash and trades of one household, stepped through dates.

    Parameters
    ----------
    portfolio : Portfolio
        The starting household (its securities, accounts, exposures and risk model are kept;
        prices and costs come from the market at each date). Not modified.
    policy : Policy
        Read for its tax rates (taxes by year) and holding-period convention.
    """

    def __init__(self, portfolio: Portfolio, policy: Policy) -> None:
        self.template = portfolio
        self.policy = policy
        acc, sec = portfolio.accounts, portfolio.securities
        self.accounts: list[str] = acc.index.tolist()
        self.securities: list[str] = sec.index.tolist()
        self.taxable = bool((acc["type"] == "taxable").any())
        self.cash = acc["cash"].to_numpy(dtype=float).copy()
        lots = portfolio.lots.copy()
        self.start_year = portfolio.as_of.year
        self._prior = (portfolio.history if portfolio.history is not None
                       else pd.DataFrame(columns=list(_TRADE_COLUMNS)))
        # the opening lots are the ledger's first buys, on their acquisition dates
        opening = lots.sort_values("acquired", kind="stable")
        self.trades: list[dict[str, object]] = [
            {"date": pd.Timestamp(row.acquired), "account": row.account,
             "security": row.security, "shares": float(row.quantity),
             "price": float(row.cost_basis) / float(row.quantity), "cost_basis": np.nan,
             "lot_id": str(lot)}
            for lot, row in opening.iterrows()]
        self.n_opening = len(self.trades)
        self.ledger: LedgerResult | None = None
        self.lots = lots
        self.shares = self._share_matrix()
        self._pool: tuple[np.ndarray, np.ndarray] | None = None  # basis, acquired per pair
        if not self.taxable:
            self.lots = self._pooled(np.zeros(self.shares.size), np.zeros(self.shares.size),
                                     pd.Timestamp(portfolio.as_of))

    # --- valuation ------------------------------------------------------------------------------

    def _share_matrix(self) -> np.ndarray:
        """Shares per account (rows) and security (columns)."""
        lots = self.lots
        a = pd.Index(self.accounts).get_indexer(lots["account"])
        i = pd.Index(self.securities).get_indexer(lots["security"])
        out = np.zeros((len(self.accounts), len(self.securities)))
        np.add.at(out, (a, i), lots["quantity"].to_numpy(dtype=float))
        return out

    def value(self, prices: np.ndarray) -> np.ndarray:
        """Value per account (currency): holdings at ``prices`` (per security) plus cash."""
        return self.shares @ prices + self.cash

    # --- the portfolio of a look ----------------------------------------------------------------

    def portfolio(self, day: pd.Timestamp, securities: pd.DataFrame,
                  flow: np.ndarray) -> Portfolio:
        """The household on ``day`` with ``securities`` (the template's frame at the day's
        prices and costs) and account ``flow`` (currency), as a :class:`Portfolio`.

        The frames are the book's own, built from validated inputs by exact arithmetic, so they
        are not validated again (a look must not cost a schema check per lot); the trade history
        of the last 61 days is, against the lots.
        """
        accounts = self.template.accounts.copy()
        accounts["cash"] = self.cash
        accounts["flow"] = flow
        as_of = day.date()
        history = None
        if self.taxable:
            recent = self._recent_trades(day)
            history = validate_history(recent, securities, accounts, self.lots, as_of) \
                if len(recent) else None
        return dataclasses.replace(self.template, securities=securities, accounts=accounts,
                                   lots=self.lots, as_of=as_of, history=history, scheduled=None)

    def _recent_trades(self, day: pd.Timestamp) -> pd.DataFrame:
        start = day - pd.Timedelta(days=HISTORY_DAYS)
        rows = [r for r in self.trades[self.n_opening:] if r["date"] >= start]
        prior = self._prior[pd.to_datetime(self._prior["date"]) >= start] \
            if len(self._prior) else self._prior
        frames = [f for f in (prior, pd.DataFrame(rows, columns=list(_TRADE_COLUMNS)))
                  if len(f)]
        return (pd.concat(frames, ignore_index=True).reindex(columns=list(_TRADE_COLUMNS))
                if frames else pd.DataFrame(columns=list(_TRADE_COLUMNS)))

    # --- carrying a day forward -----------------------------------------------------------------

    def apply(self, decision: Decision, day: pd.Timestamp) -> int:
        """Book ``decision``'s trades on ``day``: lots sold and bought, cash after flows and
        costs, and (taxable households) the ledger re-read. Returns the number of wash-sale
        matches the day added (0 without a taxable account)."""
        data, trades = decision.data, decision.trades
        net = decision.net_shares
        price = data.portfolio.securities["price"].to_numpy(dtype=float)[data.pair_security]
        self.cash = decision.cash_after().clip(0.0)
        if not self.taxable:
            self.lots = self._pooled(net, price, day)
            return 0
        lots = self.lots
        quantity = lots["quantity"].to_numpy(dtype=float)
        basis = lots["cost_basis"].to_numpy(dtype=float)
        lot_price = price[data.lot_pair]
        for n in np.flatnonzero(trades.sell_shares > 0):
            shares = float(trades.sell_shares[n])
            self.trades.append({"date": day, "account": lots["account"].iat[n],
                                "security": lots["security"].iat[n], "shares": -shares,
                                "price": float(lot_price[n]),
                                "cost_basis": basis[n] * shares / quantity[n],
                                "lot_id": data.lot_ids[n]})
        for p in np.flatnonzero(trades.buy_shares > 0):
            account = self.accounts[data.pair_account[p]]
            security = self.securities[data.pair_security[p]]
            self.trades.append({"date": day, "account": account, "security": security,
                                "shares": float(trades.buy_shares[p]), "price": float(price[p]),
                                "cost_basis": np.nan,
                                "lot_id": self._new_lot_id(account, security, day)})
        washes = self._matches()
        self._reread()
        self._check(net, data)
        return self._matches() - washes

    def reinvest(self, day: pd.Timestamp, security: str, account: str, shares: float,
                 price: float) -> None:
        """Buy ``shares`` of ``security`` at ``price`` in ``account`` on ``day`` (income
        reinvested at no cost); the cash was credited by :meth:`credit`."""
        k = self.accounts.index(account)
        self.cash[k] = max(self.cash[k] - shares * price, 0.0)
        if self.taxable:
            self.trades.append({"date": day, "account": account, "security": security,
                                "shares": shares, "price": price, "cost_basis": np.nan,
                                "lot_id": self._new_lot_id(account, security, day)})
            self._reread()
        else:
            net = np.zeros(self.shares.size)
            net[k * len(self.securities) + self.securities.index(security)] = shares
            self.lots = self._pooled(net, np.full(net.size, price), day)
        self.shares = self._share_matrix()

    def credit(self, cash: np.ndarray) -> None:
        """Add ``cash`` (currency per account) to the accounts' cash: income, or a flow booked
        outside a look."""
        self.cash = self.cash + cash

    def _pooled(self, net: np.ndarray, price: np.ndarray, day: pd.Timestamp) -> pd.DataFrame:
        """One lot per account and security after trading ``net`` shares per pair (account x
        security) at ``price`` per pair: sales take basis pro rata, buys add their cost."""
        n_i = len(self.securities)
        if self._pool is None:  # the opening lots, pooled once
            self._pool = (np.zeros(self.shares.size), np.full(self.shares.size, None, object))
            lots = self.lots
            where = (pd.Index(self.accounts).get_indexer(lots["account"]) * n_i
                     + pd.Index(self.securities).get_indexer(lots["security"]))
            np.add.at(self._pool[0], where, lots["cost_basis"].to_numpy(dtype=float))
            for k, day_acquired in zip(where, lots["acquired"], strict=True):
                known = self._pool[1][k]
                self._pool[1][k] = day_acquired if known is None else min(known, day_acquired)
        basis, acquired = self._pool
        shares = self.shares.ravel().copy()
        for k in np.flatnonzero(net):
            traded, value = float(net[k]), float(net[k] * price[k])
            if traded < 0:
                basis[k] *= max(shares[k] + traded, 0.0) / shares[k]
            else:
                basis[k] += value
                acquired[k] = acquired[k] or day.date()
            shares[k] = max(shares[k] + traded, 0.0)
            if shares[k] <= _EPS:
                basis[k], acquired[k] = 0.0, None
        self.shares = shares.reshape(self.shares.shape)
        held = np.flatnonzero(shares > _EPS)
        return pd.DataFrame({
            "account": [self.accounts[k // n_i] for k in held],
            "security": [self.securities[k % n_i] for k in held],
            "quantity": shares[held], "cost_basis": basis[held],
            "acquired": [acquired[k] or day.date() for k in held],
        }, index=pd.Index([f"{self.accounts[k // n_i]}/{self.securities[k % n_i]}"
                           for k in held], name="lot"))

    def _new_lot_id(self, account: str, security: str, day: pd.Timestamp) -> str:
        base = f"{account}/{security}/{day.date()}"
        taken = {r["lot_id"] for r in self.trades[self.n_opening:] if r["date"] == day}
        lot, n = base, 1
        while lot in taken or lot in self.lots.index:
            n += 1
            lot = f"{base}/{n}"
        return lot

    def _reread(self) -> None:
        """Lots and realized gains from the whole history, by the statute's ledger."""
        history = pd.DataFrame(self.trades, columns=list(_TRADE_COLUMNS))
        acc, sec = self.template.accounts, self.template.securities
        history["group"] = history["security"].map(sec["group"]).fillna(history["security"])
        history["account_type"] = history["account"].map(acc["type"])
        self.ledger = ledger = wash_sale_ledger(history)
        open_ = ledger.lots[ledger.lots["shares"] > _EPS]
        ids = [lot if piece == 0 else f"{lot}#{piece}"
               for lot, piece in zip(open_["lot"], open_["piece"], strict=True)]
        tacked = self.policy.tax.holding_period == "tacking"
        acquired = open_["adjusted_acquired" if tacked else "acquired"]
        self.lots = pd.DataFrame({
            "account": open_["account"].to_numpy(), "security": open_["security"].to_numpy(),
            "quantity": open_["shares"].to_numpy(dtype=float),
            "cost_basis": open_["basis"].to_numpy(dtype=float),
            "acquired": [pd.Timestamp(d).date() for d in acquired],
        }, index=pd.Index(ids, name="lot"))

    def _matches(self) -> int:
        """Wash-sale matches the ledger has found so far."""
        return 0 if self.ledger is None else len(self.ledger.adjustments)

    def _check(self, net: np.ndarray, data: ProblemData) -> None:
        """The book's shares after the trades equal the shares before plus the decision's
        ``net`` shares per pair (verification of the carried lots)."""
        expected = self.shares.copy()
        np.add.at(expected, (data.pair_account, data.pair_security), net)
        self.shares = self._share_matrix()
        gap = np.abs(self.shares - expected)
        if (gap > 1e-6 * np.maximum(1.0, np.abs(expected))).any():
            a, i = np.unravel_index(int(np.argmax(gap)), gap.shape)
            raise OptirebalError(f"the book holds {self.shares[a, i]:g} shares of "
                                 f"{self.securities[i]!r} in {self.accounts[a]!r} after the "
                                 f"trades, the decision {expected[a, i]:g}")

    # --- taxes ----------------------------------------------------------------------------------

    def realized(self) -> pd.DataFrame:
        """Realized pieces of the backtest's sales in taxable accounts (the ledger's rows)."""
        if self.ledger is None or not len(self.ledger.realized):
            return pd.DataFrame(columns=["date", "term", "recognized_gain", "disallowed_loss",
                                         "wash_sale", "permanent", "account_type"])
        realized = self.ledger.realized
        return realized[realized["account_type"] == "taxable"]

    def taxes_by_year(self, last_year: int) -> pd.DataFrame:
        """Net gains, exact US tax and carryovers of each year from the start to ``last_year``.

        The start year adds the policy's year-to-date ``realized_short`` and ``realized_long``
        (carryovers included); each later year starts from the carryovers of the one before,
        with their character (IRC 1212(b)). The tax is what the year's return would show
        (carryovers valued at nothing): short- and long-term rates on what is taxed, less the
        ordinary rate on the offset used.
        """
        tax = self.policy.tax
        rates = tax.rates(carry_value=False)
        realized = self.realized()
        years = pd.to_datetime(realized["date"]).dt.year.to_numpy()
        long_ = (realized["term"] == "long").to_numpy()
        gain = realized["recognized_gain"].to_numpy(dtype=float)
        lost = realized["disallowed_loss"].to_numpy(dtype=float)
        short_in, long_in = tax.realized_short, tax.realized_long
        rows = []
        for year in range(self.start_year, last_year + 1):
            mine = years == year
            short = float(gain[mine & ~long_].sum())
            long_gain = float(gain[mine & long_].sum())
            out = exact_tax(short_in + short, long_in + long_gain, rates)
            rows.append({"year": year, "realized_short": short, "realized_long": long_gain,
                         "net_short": out.net_short, "net_long": out.net_long,
                         "tax": float(out.tax), "carryover_short": float(out.carryover_short),
                         "carryover_long": float(out.carryover_long),
                         "disallowed_loss": float(lost[mine].sum())})
            short_in, long_in = -float(out.carryover_short), -float(out.carryover_long)
        return pd.DataFrame(rows).set_index("year")

    def year_to_date(self, year: int) -> tuple[float, float]:
        """Net short- and long-term gain of ``year`` so far, carryovers included (currency):
        what the program's ``Tax.realized_short`` and ``realized_long`` are on a look."""
        if year == self.start_year and (self.ledger is None or not len(self.realized())):
            return self.policy.tax.realized_short, self.policy.tax.realized_long
        row = self.taxes_by_year(year).loc[year]
        return float(row["net_short"]), float(row["net_long"])

    def unrealized_tax(self, prices: np.ndarray, day: dt.date) -> float:
        """Tax if every taxable lot were sold at ``prices`` on ``day``, netted with the year's
        gains so far (currency; the liquidation value of a taxable household is NAV less the
        taxes paid and this)."""
        from optirebal.tax.holding import is_long_term_array

        acc = self.template.accounts
        lots = self.lots[self.lots["account"].map(acc["type"]) == "taxable"]
        if not len(lots):
            return 0.0
        price = pd.Series(prices, index=self.securities).reindex(lots["security"]).to_numpy()
        gain = lots["quantity"].to_numpy(dtype=float) * price - lots["cost_basis"].to_numpy()
        long_ = is_long_term_array(pd.to_datetime(lots["acquired"]), day)
        short_ytd, long_ytd = self.year_to_date(day.year)
        tax = self.policy.tax
        rates = tax.rates(carry_value=False)
        after = exact_tax(short_ytd + gain[~long_].sum(), long_ytd + gain[long_].sum(), rates)
        before = exact_tax(short_ytd, long_ytd, rates)
        return float(after.tax) - float(before.tax)
