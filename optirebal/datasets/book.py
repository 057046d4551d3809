"""A book of households: a seeded generator and :func:`load_book`.

A wealth manager's *book* is every household it rebalances. Each household is one
:class:`~optirebal.portfolio.Portfolio` (its taxable, IRA and Roth accounts together, so wash
sales are household-wide) and follows one *model portfolio* (conservative, balanced or growth),
a :class:`~optirebal.policy.Policy`. Every household holds the same universe of twenty ETFs
(with substitutes for the wash-sale rules) and names its accounts ``taxable``, ``ira`` and
``roth``, so households with the same accounts and model share one problem shape
(:attr:`optirebal.program.data.ProblemData.shape_key`) and a batch re-uses work across them.

The book on disk (one folder) is compact: one Parquet file per table, every household stacked
with a ``household`` column, and one TOML file per model portfolio::

    book.toml            as_of, seed, number of households
    securities.parquet   the shared universe (index column ``security``)
    covariance.parquet   class covariance (annualized, fraction squared per year)
    households.parquet   household, model
    accounts.parquet     household, account, type, cash, flow, cash_reserve
    lots.parquet         household, lot, account, security, quantity, cost_basis, acquired
    history.parquet      household, date, account, security, shares, price, cost_basis
    scheduled.parquet    household, date, account, security, value
    policies/NAME.toml   one model portfolio per file (``[policy]`` table)

Generate one with ``python -m optirebal.datasets.book --households N --out DIR [--seed S]``.
The data are synthetic: prices, spreads and volumes are close to those of late 2026, the
histories of prices behind the cost bases are random walks.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import tomli_w

from optirebal.errors import InputError, PolicyFileError
from optirebal.policy import Band, Costs, DecodeOptions, Policy, Tax
from optirebal.portfolio import Portfolio

AS_OF = dt.date(2026, 11, 20)
SEED = 20261120

# security, name, class, price, half-spread bp, daily volatility, daily traded value, group,
# drift per year of the random walk behind the cost bases
UNIVERSE: tuple[tuple[str, str, str, float, float, float, float, str, float], ...] = (
    ("VOO", "Vanguard S&P 500 ETF", "us_equity", 612.4, 0.8, 0.0105, 3.5e9, "sp500", 0.10),
    ("IVV", "iShares Core S&P 500 ETF", "us_equity", 665.8, 0.8, 0.0105, 3.0e9, "sp500", 0.10),
    ("VTI", "Vanguard Total Stock Market ETF", "us_equity", 328.15, 1.0, 0.0108, 1.1e9,
     "crsp_total", 0.10),
    ("ITOT", "iShares Core S&P Total US Stock Market ETF", "us_equity", 142.3, 1.2, 0.0108,
     4.0e8, "sp_tmi", 0.10),
    ("SCHB", "Schwab US Broad Market ETF", "us_equity", 25.9, 2.0, 0.0108, 2.0e8, "schb", 0.10),
    ("VEA", "Vanguard FTSE Developed Markets ETF", "intl_equity", 61.25, 1.5, 0.0098, 9.0e8,
     "developed", 0.05),
    ("IEFA", "iShares Core MSCI EAFE ETF", "intl_equity", 88.4, 1.5, 0.0098, 7.5e8, "eafe",
     0.05),
    ("SCHF", "Schwab International Equity ETF", "intl_equity", 23.1, 2.5, 0.0098, 1.5e8,
     "schf", 0.05),
    ("VWO", "Vanguard FTSE Emerging Markets ETF", "em_equity", 54.1, 2.0, 0.0118, 7.5e8,
     "em_ftse", 0.03),
    ("IEMG", "iShares Core MSCI Emerging Markets ETF", "em_equity", 65.3, 1.5, 0.0118, 7.0e8,
     "em_msci", 0.03),
    ("SCHE", "Schwab Emerging Markets Equity ETF", "em_equity", 31.2, 3.0, 0.0118, 6.0e7,
     "sche", 0.03),
    ("BND", "Vanguard Total Bond Market ETF", "bonds", 74.1, 1.5, 0.0033, 4.5e8, "us_agg",
     0.005),
    ("AGG", "iShares Core US Aggregate Bond ETF", "bonds", 99.8, 1.0, 0.0033, 6.0e8, "us_agg",
     0.005),
    ("SCHZ", "Schwab US Aggregate Bond ETF", "bonds", 23.4, 2.5, 0.0033, 5.0e7, "schz", 0.005),
    ("VTEB", "Vanguard Tax-Exempt Bond ETF", "bonds", 50.6, 2.0, 0.0025, 2.0e8, "muni_v",
     0.005),
    ("MUB", "iShares National Muni Bond ETF", "bonds", 106.4, 1.5, 0.0025, 3.5e8, "muni_i",
     0.005),
    ("BNDX", "Vanguard Total International Bond ETF", "bonds", 49.3, 2.0, 0.0030, 1.5e8,
     "intl_agg", 0.0),
    ("VNQ", "Vanguard Real Estate ETF", "real_estate", 92.4, 1.5, 0.013, 3.5e8, "reit_v", 0.04),
    ("SCHH", "Schwab U.S. REIT ETF", "real_estate", 21.8, 3.0, 0.013, 5.0e7, "reit_s", 0.04),
    ("USRT", "iShares Core US REIT ETF", "real_estate", 58.7, 3.0, 0.013, 2.0e7, "reit_i",
     0.04),
)
CLASSES = ("us_equity", "intl_equity", "em_equity", "bonds", "real_estate")
COVARIANCE = np.array([  # annualized, fraction squared per year (models/household)
    [0.0256, 0.02176, 0.02304, 0.00044, 0.0224],
    [0.02176, 0.0256, 0.0256, 0.00044, 0.01984],
    [0.02304, 0.0256, 0.04, 0.00055, 0.022],
    [0.00044, 0.00044, 0.00055, 0.003025, 0.00275],
    [0.0224, 0.01984, 0.022, 0.00275, 0.04],
])
MODELS: Mapping[str, Mapping[str, float]] = {
    "conservative": {"us_equity": 0.20, "intl_equity": 0.09, "em_equity": 0.02, "bonds": 0.60,
                     "real_estate": 0.04, "cash": 0.05},
    "balanced": {"us_equity": 0.36, "intl_equity": 0.15, "em_equity": 0.04, "bonds": 0.37,
                 "real_estate": 0.05, "cash": 0.03},
    "growth": {"us_equity": 0.50, "intl_equity": 0.21, "em_equity": 0.07, "bonds": 0.15,
               "real_estate": 0.05, "cash": 0.02},
}
MODEL_SHARES = (0.25, 0.45, 0.30)  # of households, in the order of MODELS
ACCOUNT_TYPES = {"taxable": "taxable", "ira": "tax_deferred", "roth": "tax_exempt"}
ACCOUNT_SETS: tuple[tuple[tuple[str, ...], float], ...] = (  # accounts held, and how often
    (("taxable",), 0.15), (("ira",), 0.10), (("taxable", "ira"), 0.30),
    (("ira", "roth"), 0.10), (("taxable", "ira", "roth"), 0.35),
)
# securities each account type prefers: munis only where they save tax
PREFERRED = {
    "taxable": ("VOO", "IVV", "VTI", "ITOT", "VEA", "IEFA", "VWO", "IEMG", "VTEB", "MUB",
                "VNQ"),
    "ira": ("VTI", "SCHB", "VEA", "SCHF", "IEMG", "SCHE", "BND", "AGG", "SCHZ", "BNDX", "VNQ",
            "SCHH"),
    "roth": ("VTI", "ITOT", "IEFA", "VWO", "SCHE", "VNQ", "USRT", "BND"),
}
TABLES: Mapping[str, tuple[str, ...]] = {  # the stacked tables and their columns
    "households": ("household", "model"),
    "accounts": ("household", "account", "type", "cash", "flow", "cash_reserve"),
    "lots": ("household", "lot", "account", "security", "quantity", "cost_basis", "acquired"),
    "history": ("household", "date", "account", "security", "shares", "price", "cost_basis"),
    "scheduled": ("household", "date", "account", "security", "value"),
}


def model_policy(name: str) -> Policy:
    """The model portfolio ``name`` (``conservative``, ``balanced`` or ``growth``): targets by
    class, 3-point bands (1.5 for the small classes), power-law impact, linear tax with
    substitutes per class, no order below $250."""
    if name not in MODELS:
        raise InputError(f"unknown model portfolio; known: {sorted(MODELS)}", field="model",
                         row=name)
    return Policy(
        targets=dict(MODELS[name]), band=Band.absolute(0.03),
        class_bands={"em_equity": Band.absolute(0.015), "real_estate": Band.absolute(0.015),
                     "cash": Band.absolute(0.015)},
        risk_aversion=10.0, horizon_years=0.25, counterflow_penalty=0.001,
        costs=Costs(impact="power"),
        tax=Tax(model="linear", short_term_rate=0.408, long_term_rate=0.238,
                substitutes={"us_equity": ("VTI", "SCHB"), "intl_equity": ("VEA", "SCHF"),
                             "em_equity": ("IEMG", "SCHE"), "real_estate": ("SCHH", "USRT")}),
        decode=DecodeOptions(min_trade_value=250.0))


def securities_frame() -> pd.DataFrame:
    """The shared universe (index ``security``), with the columns of a portfolio's
    ``securities`` frame."""
    rows = [{"security": s, "name": n, "asset_class": c, "price": p, "half_spread_bps": hs,
             "daily_volatility": vol, "daily_traded_value": adv, "group": g, "lot_size": 1,
             "commission_bps": 0.0, "commission_per_share": 0.0}
            for s, n, c, p, hs, vol, adv, g, _ in UNIVERSE]
    return pd.DataFrame(rows).set_index("security")


def covariance_frame() -> pd.DataFrame:
    """Class covariance, annualized (index and columns: the classes)."""
    return pd.DataFrame(COVARIANCE, index=list(CLASSES), columns=list(CLASSES))


def generate(households: int, *, seed: int = SEED, as_of: dt.date = AS_OF
             ) -> dict[str, pd.DataFrame]:
    """Generate a book's tables (see the module docstring), reproducibly from ``seed``.

    Parameters
    ----------
    households : int
        Number of households (ids ``H00001``, ...).
    seed : int
        Seed of the random generator: the same seed gives the same book.
    as_of : date
        The trade date; lots are bought in the eleven years before it.

    Returns
    -------
    dict of DataFrame
        ``securities``, ``covariance`` and the stacked tables ``households``, ``accounts``,
        ``lots``, ``history``, ``scheduled``.
    """
    if int(households) < 1:
        raise InputError(f"must be at least 1, got {households!r}", field="households")
    rng = np.random.default_rng(seed)
    paths = _price_paths(rng, as_of)
    names = list(MODELS)
    rows: dict[str, list[dict[str, object]]] = {t: [] for t in TABLES}
    for n in range(int(households)):
        hid = f"H{n + 1:05d}"
        model = names[int(rng.choice(len(names), p=MODEL_SHARES))]
        rows["households"].append({"household": hid, "model": model})
        _household(rng, hid, model, paths, as_of, rows)
    tables = {t: pd.DataFrame(r, columns=list(TABLES[t])) for t, r in rows.items()}
    return {"securities": securities_frame(), "covariance": covariance_frame(), **tables}


def _price_paths(rng: np.random.Generator, as_of: dt.date) -> pd.DataFrame:
    """Business-day price histories of the universe for eleven years up to ``as_of``, ending at
    today's prices: a geometric random walk with each security's drift and volatility, one
    common market factor (so a crash shows in every equity ETF)."""
    days = pd.bdate_range(end=as_of, periods=11 * 252)
    n = len(days)
    market = rng.normal(0.0, 1.0, n)
    out = {}
    for s, _, cls, price, _, vol, _, _, drift in UNIVERSE:
        beta = 0.0 if cls == "bonds" else 0.9
        shocks = vol * (beta * market + np.sqrt(1 - beta**2) * rng.normal(0.0, 1.0, n))
        log = np.cumsum(drift / 252 - vol**2 / 2 + shocks)
        out[s] = price * np.exp(log - log[-1])
    return pd.DataFrame(out, index=days)


def _household(rng: np.random.Generator, hid: str, model: str, paths: pd.DataFrame,
               as_of: dt.date, rows: dict[str, list[dict[str, object]]]) -> None:
    sets = [accounts for accounts, _ in ACCOUNT_SETS]
    accounts = sets[int(rng.choice(len(sets), p=[share for _, share in ACCOUNT_SETS]))]
    nav = float(np.exp(rng.normal(np.log(900_000), 0.8)))  # $900k median, lognormal
    split = rng.dirichlet(np.full(len(accounts), 2.0))
    n_lots = int(np.clip(rng.normal(200, 30), 120, 280))
    lots_per = np.maximum(5, np.round(split * n_lots)).astype(int)
    targets = MODELS[model]
    for account, share, count in zip(accounts, split, lots_per, strict=True):
        value = nav * share
        cash = value * rng.uniform(0.005, 0.04)
        flow = 0.0
        if rng.random() < 0.3:  # a contribution, or a withdrawal of up to 5% of the account
            flow = round(float(rng.choice([1, -1], p=[0.6, 0.4]) * value
                               * rng.uniform(0.005, 0.05)), -2)
        rows["accounts"].append({"household": hid, "account": account,
                                 "type": ACCOUNT_TYPES[account], "cash": round(cash, 2),
                                 "flow": flow,
                                 "cash_reserve": round(min(cash, 0.005 * value), -1)})
        held = [s for s in PREFERRED[account] if rng.random() < 0.7] or [PREFERRED[account][0]]
        klass = {s: c for s, _, c, *_ in UNIVERSE}
        # value per security: the model's class weight (tilted at random), split over the
        # account's securities of that class
        weight = np.array([targets[klass[s]] * rng.uniform(0.5, 1.6)
                           / sum(klass[t] == klass[s] for t in held) for s in held])
        weight /= weight.sum()
        per = rng.multinomial(max(0, count - len(held)), weight) + 1  # a lot per security held
        for s, w, k in zip(held, weight, per, strict=True):
            _lots(rng, hid, account, s, value * (1 - cash / value) * w, int(k), paths, rows)
    if "taxable" in accounts and rng.random() < 0.12:  # a loss sale in the last 30 days
        s = str(rng.choice(["IEFA", "VWO", "VEA", "IEMG"]))
        when = as_of - dt.timedelta(days=int(rng.integers(3, 29)))
        price = float(paths[s].asof(pd.Timestamp(when)))
        qty = float(rng.integers(50, 600))
        rows["history"].append({"household": hid, "date": when, "account": "taxable",
                                "security": s, "shares": -qty, "price": round(price, 2),
                                "cost_basis": round(qty * price * rng.uniform(1.05, 1.3), 2)})
    if rng.random() < 0.1:  # a dividend reinvestment scheduled within the month
        account = str(rng.choice(list(accounts)))
        s = str(rng.choice(PREFERRED[account]))
        rows["scheduled"].append({"household": hid,
                                  "date": as_of + dt.timedelta(days=int(rng.integers(1, 28))),
                                  "account": account, "security": s,
                                  "value": round(float(rng.uniform(100, 1500)), 2)})


def _lots(rng: np.random.Generator, hid: str, account: str, security: str, value: float,
          count: int, paths: pd.DataFrame, rows: dict[str, list[dict[str, object]]]) -> None:
    """``count`` lots worth ``value`` today, bought on business days of the last eleven years
    (more of them recent, as a saver's monthly buys are), each at that day's price."""
    days = paths.index
    picks = np.sort(rng.choice(len(days), size=count, replace=count > len(days),
                               p=_recency(len(days))))
    price_now = float(paths[security].iloc[-1])
    quantity = np.maximum(1, np.round(value / price_now * rng.dirichlet(np.ones(count))))
    for k, (day, qty) in enumerate(zip(picks, quantity, strict=True)):
        bought = float(paths[security].iloc[day]) * rng.uniform(0.995, 1.005)
        rows["lots"].append({"household": hid, "lot": f"{hid}-{account[0].upper()}-"
                             f"{security}-{k:03d}", "account": account, "security": security,
                             "quantity": float(qty), "cost_basis": round(qty * bought, 2),
                             "acquired": days[day].date()})


_RECENCY: dict[int, np.ndarray] = {}


def _recency(n: int) -> np.ndarray:
    if n not in _RECENCY:
        weight = np.exp(np.linspace(-1.2, 0.0, n))
        _RECENCY[n] = weight / weight.sum()
    return _RECENCY[n]


def write_book(tables: Mapping[str, pd.DataFrame], out: str | Path, *, seed: int,
               as_of: dt.date = AS_OF) -> Path:
    """Write a generated book to the folder ``out`` (created): Parquet per table, a TOML file
    per model portfolio and ``book.toml``."""
    out = Path(out)
    (out / "policies").mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        keep = name in ("securities", "covariance")  # their index is their first column
        frame.to_parquet(out / f"{name}.parquet", index=keep, compression="zstd")
    for name in MODELS:
        (out / "policies" / f"{name}.toml").write_text(model_policy(name).to_toml())
    meta = {"book": {"as_of": as_of, "seed": int(seed),
                     "households": len(tables["households"])}}
    (out / "book.toml").write_text(tomli_w.dumps(meta))
    return out


@dataclass(frozen=True)
class HouseholdFrames:
    """One household's raw frames, turned into a :class:`Portfolio` (and validated) by
    :meth:`portfolio`; what a batch sends to a worker, so that validation runs there."""

    household: str
    securities: pd.DataFrame
    covariance: pd.DataFrame
    accounts: pd.DataFrame
    lots: pd.DataFrame
    history: pd.DataFrame | None
    scheduled: pd.DataFrame | None
    as_of: dt.date

    def portfolio(self) -> Portfolio:
        """The household as a validated portfolio.

        Raises
        ------
        InputError
            Naming the field and row (the household's lot or account) at fault.
        """
        key = _universe_key(self.securities, self.covariance, self.as_of)
        template = _UNIVERSES.get(key)
        if template is None:  # the first household of this universe validates it
            portfolio = Portfolio.from_frames(self.securities, self.accounts, self.lots,
                                              as_of=self.as_of, risk=self.covariance,
                                              history=self.history, scheduled=self.scheduled)
            if len(_UNIVERSES) >= _MAX_UNIVERSES:
                _UNIVERSES.clear()
            _UNIVERSES[key] = portfolio
            return portfolio
        return template.with_holdings(self.accounts, self.lots, history=self.history,
                                      scheduled=self.scheduled)


def build_together(frames: Sequence[HouseholdFrames]) -> list[Portfolio | None]:
    """The portfolios of many households, as :meth:`HouseholdFrames.portfolio` builds them, with
    the schema checks of each universe's households run once on their stacked frames
    (:meth:`Portfolio.with_holdings_together`). ``None`` for a household that must be built on
    its own: its universe's joint checks failed, so one of them has bad input, which
    :meth:`HouseholdFrames.portfolio` then names."""
    out: list[Portfolio | None] = [None] * len(frames)
    by_universe: dict[tuple[object, ...], list[int]] = {}
    # a book's households share its securities and covariance frames: hash each pair of
    # objects once per call (they cannot change during it), not once per household
    keys: dict[tuple[int, int, dt.date], tuple[object, ...]] = {}
    for n, f in enumerate(frames):
        same = (id(f.securities), id(f.covariance), f.as_of)
        if same not in keys:
            keys[same] = _universe_key(f.securities, f.covariance, f.as_of)
        by_universe.setdefault(keys[same], []).append(n)
    for key, members in by_universe.items():
        template = _UNIVERSES.get(key)
        if template is None:
            try:
                template = out[members[0]] = frames[members[0]].portfolio()
            except InputError:
                continue  # the first household, or the universe, is bad: one by one
            members = members[1:]
        built = template.with_holdings_together(
            [(frames[n].accounts, frames[n].lots, frames[n].history, frames[n].scheduled)
             for n in members])
        if built is not None:
            for n, portfolio in zip(members, built, strict=True):
                out[n] = portfolio
    return out


@dataclass(frozen=True, eq=False)
class _Rows:
    """Households' frames of one kind stacked: household ``n``'s rows are
    ``ends[n]:ends[n + 1]``, and it has no frame (``None``) where ``given[n]`` is false."""

    stacked: pd.DataFrame | None
    ends: np.ndarray
    given: np.ndarray

    def frame(self, n: int) -> pd.DataFrame | None:
        if not self.given[n] or self.stacked is None:
            return None
        return self.stacked.iloc[self.ends[n]:self.ends[n + 1]].reset_index(drop=True)


def _rows(frames: Sequence[object]) -> _Rows | None:
    """``frames`` (DataFrames or ``None``) stacked, or ``None`` when a DataFrame would not slice
    back equal: another type, or columns, dtypes or an index (anything but the default
    ``0, 1, ...``) other than the first's."""
    given = np.array([f is not None for f in frames], dtype=bool)
    present = [f for f in frames if f is not None]
    ends = np.cumsum([0, *(len(f) if isinstance(f, pd.DataFrame) else 0 for f in frames)])
    if not present:
        return _Rows(None, ends, given)
    like = present[0]
    if not isinstance(like, pd.DataFrame):
        return None
    dtypes = _dtypes(like)
    for f in present:
        if not (isinstance(f, pd.DataFrame) and type(f.index) is pd.RangeIndex
                and f.index.start == 0 and f.index.step == 1 and f.index.name is None
                and f.columns.equals(like.columns) and _dtypes(f) == dtypes):
            return None
    return _Rows(pd.concat(present, ignore_index=True), ends, given)


@dataclass(frozen=True, eq=False)
class StackedHouseholds:
    """Households of one universe with each kind of frame (accounts, lots, history, scheduled
    buys) stacked into one: how a chunk of a book travels to a Dask worker
    (:func:`stack_households`). Pickling costs about a third of a millisecond per frame
    whatever its length, two to four frames a household; the stacked frames pickle a few
    times per chunk, and slicing them back costs about 0.15 ms a household
    (:meth:`households`)."""

    names: tuple[str, ...]
    securities: pd.DataFrame
    covariance: pd.DataFrame
    as_of: dt.date
    frames: dict[str, _Rows]  # by field of HouseholdFrames

    def households(self) -> list[HouseholdFrames]:
        """The households' frames, equal to those stacked (values, dtypes, columns and their
        default index)."""
        return [HouseholdFrames(name, self.securities, self.covariance,
                                **{kind: rows.frame(n) for kind, rows in self.frames.items()},
                                as_of=self.as_of)
                for n, name in enumerate(self.names)]


def stack_households(frames: Sequence[HouseholdFrames]) -> StackedHouseholds | None:
    """``frames`` stacked (:class:`StackedHouseholds`), or ``None`` when they cannot be stacked
    and sliced back equal: households of other universes (other securities or covariance
    objects, another date), or frames that :func:`_rows` cannot stack."""
    if not frames:
        return None
    first = frames[0]
    if any(f.securities is not first.securities or f.covariance is not first.covariance
           or f.as_of != first.as_of for f in frames):
        return None
    stacked: dict[str, _Rows] = {}
    for kind in ("accounts", "lots", "history", "scheduled"):
        rows = _rows([getattr(f, kind) for f in frames])
        if rows is None:
            return None
        stacked[kind] = rows
    return StackedHouseholds(tuple(f.household for f in frames), first.securities,
                             first.covariance, first.as_of, stacked)


def _dtypes(frame: pd.DataFrame) -> list[object]:
    """The dtypes of ``frame``'s columns, in order. ``DataFrame.dtypes`` builds a Series (60 to
    100 microseconds, as much as pickling a small frame saves); pandas' block manager holds
    them as an array (1 microsecond), read here when it is there."""
    manager = getattr(frame, "_mgr", None)
    if manager is not None and hasattr(manager, "get_dtypes"):
        return list(manager.get_dtypes())
    return list(frame.dtypes)


_UNIVERSES: dict[tuple[object, ...], Portfolio] = {}
"""Per process, a validated portfolio per universe (securities, covariance, date), whose
:meth:`Portfolio.with_holdings` builds the other households without validating the securities
again: the securities' checks were a third of a household's time."""
_MAX_UNIVERSES = 8


def _universe_key(securities: pd.DataFrame, covariance: pd.DataFrame, as_of: dt.date
                  ) -> tuple[object, ...]:
    """The content of a universe (hashed, so that an edited copy is a new universe)."""
    parts = []
    for frame in (securities, covariance):
        hashed = pd.util.hash_pandas_object(frame, index=True).to_numpy()
        parts.append((tuple(map(str, frame.columns)), hashed.tobytes()))
    return (*parts, as_of)


class Book(Mapping[str, Portfolio]):
    """A loaded book: a mapping of household id to :class:`Portfolio` (built on access, so
    loading stays fast and a bad household fails alone), with each household's model policy.

    Attributes
    ----------
    as_of : date
        The trade date of every household.
    models : Series
        Model portfolio name per household (index ``household``).
    policies : dict of Policy
        Model portfolios by name.
    """

    def __init__(self, frames: Mapping[str, HouseholdFrames], models: pd.Series,
                 policies: Mapping[str, Policy], as_of: dt.date) -> None:
        self._frames = dict(frames)
        self.models = models
        self.policies = dict(policies)
        self.as_of = as_of

    def __getitem__(self, household: str) -> Portfolio:
        return self._frames[household].portfolio()

    def __iter__(self) -> Iterator[str]:
        return iter(self._frames)

    def __len__(self) -> int:
        return len(self._frames)

    def frames(self, household: str) -> HouseholdFrames:
        """The raw frames of ``household`` (not yet validated)."""
        return self._frames[household]

    def policy_of(self, household: str) -> Policy:
        """The model policy ``household`` follows."""
        return self.policies[self.models[household]]

    def subset(self, households: Sequence[str]) -> Book:
        """A book of some of the households, in the order given."""
        return Book({h: self._frames[h] for h in households}, self.models.loc[list(households)],
                    self.policies, self.as_of)

    def __repr__(self) -> str:
        counts = self.models.value_counts().to_dict()
        return f"Book({len(self)} households on {self.as_of}, models {counts})"


def load_book(path: str | Path) -> Book:
    """Read a book folder written by :func:`write_book` (for example ``models/book``).

    Raises
    ------
    PolicyFileError
        A missing file or folder, or a household whose model has no policy file.
    """
    path = Path(path)
    meta_file = path / "book.toml"
    if not meta_file.is_file():
        raise PolicyFileError("not a book folder (no book.toml)", file=str(path))
    meta = tomllib.loads(meta_file.read_text())
    as_of = meta.get("book", {}).get("as_of")
    if not isinstance(as_of, dt.date):
        raise PolicyFileError("missing date", file=str(meta_file), key="book.as_of")
    policies = {p.stem: Policy.from_toml(p) for p in sorted((path / "policies").glob("*.toml"))}

    def read(name: str) -> pd.DataFrame:
        file = path / f"{name}.parquet"
        if not file.is_file():
            raise PolicyFileError("missing table", file=str(file))
        return pd.read_parquet(file)

    securities, covariance = read("securities"), read("covariance")
    households = read("households")
    unknown = sorted(set(households["model"]) - set(policies))
    if unknown:
        raise PolicyFileError(f"no policy file policies/{unknown[0]}.toml", file=str(path),
                              key="model")
    split = {name: dict(tuple(read(name).groupby("household", sort=False)))
             for name in ("accounts", "lots", "history", "scheduled")}

    def part(name: str, hid: str) -> pd.DataFrame | None:
        frame = split[name].get(hid)
        return None if frame is None else frame.drop(columns="household").reset_index(drop=True)

    frames = {}
    for hid in households["household"]:
        accounts, lots = part("accounts", hid), part("lots", hid)
        frames[hid] = HouseholdFrames(
            hid, securities, covariance,
            accounts if accounts is not None else pd.DataFrame(columns=["account", "type",
                                                                        "cash"]),
            lots if lots is not None else pd.DataFrame(columns=["lot", "account", "security",
                                                                "quantity", "cost_basis",
                                                                "acquired"]),
            part("history", hid), part("scheduled", hid), as_of)
    models = households.set_index("household")["model"]
    return Book(frames, models, policies, as_of)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m optirebal.datasets.book --households N --out DIR [--seed S]``."""
    parser = argparse.ArgumentParser(prog="python -m optirebal.datasets.book",
                                     description="Generate a book of households.")
    parser.add_argument("--households", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True, help="folder to write (created)")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    tables = generate(args.households, seed=args.seed)
    write_book(tables, args.out, seed=args.seed)
    print(f"wrote {args.households} households, {len(tables['lots'])} lots to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
