"""`Policy`: targets, bands, mode, costs, tax, restrictions and solver choices (frozen dataclasses).

A policy is plain configuration: hashable, printable, its ``repr`` rebuilds it, and variants come
from :func:`dataclasses.replace`. It holds no solver state. It loads from and dumps to TOML; an
unknown or misspelled key is an error naming the key (with the nearest known one).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import tomli_w

from optirebal.errors import InputError, PolicyFileError
from optirebal.schema import (
    boolean,
    choice,
    instance,
    integer,
    number,
    optional_number,
    table,
    text,
    texts,
)

MODES = ("full", "to_band", "to_target", "buy_only", "sell_only", "cash_only",
         "harvest_only")
BAND_KINDS = ("absolute", "relative", "range")
IMPACT_MODELS = ("power", "quadratic", "none")
TAX_MODELS = ("linear", "exact", "none")
WASH_SALE_LOTS = ("no_benefit", "no_sell")
LOT_RELIEF = ("optimal", "hifo", "fifo", "lifo")
HOLDING_PERIODS = ("tacking", "replacement_date")
FILING_STATUSES = ("single", "married_joint", "married_separate", "head_of_household")
SOLVERS = ("CLARABEL", "ECOS", "OSQP")
LOOKS = ("every", "daily", "weekly", "monthly", "quarterly", "semiannual", "annual", "never")
INCOME = ("cash", "reinvest")
TARGET_SUM_TOLERANCE = 1e-6


def _set(obj: object, **values: object) -> None:
    """Store checked (normalized) values on a frozen dataclass."""
    for name, value in values.items():
        object.__setattr__(obj, name, value)


TERM_METHODS = ("applies", "build", "costs", "residual", "objective")
"""What an extra term must have (the protocol of :class:`optirebal.program.terms.base.Term`)."""

@dataclass(frozen=True)
class Band:
    """A band around a class target, in weights (fractions of NAV).

    Parameters
    ----------
    below, above
        ``absolute``: widths below and above the target (0.05 = 5 percentage points).
        ``relative``: widths as fractions of the target (0.2 = 20% of the target).
        ``range``: the lower and upper edges themselves.
    kind
        ``"absolute"``, ``"relative"`` or ``"range"``.

    Examples
    --------
    >>> Band.absolute(0.05).edges(0.6)
    (0.55, 0.65)
    >>> Band.relative(0.1).edges(0.6)
    (0.54, 0.66)
    """

    below: float
    above: float
    kind: str = "absolute"

    def __post_init__(self) -> None:
        kind = choice("band.kind", self.kind, BAND_KINDS)
        if kind == "range":
            below, above = number("band.lower", self.below), number("band.upper", self.above)
            if below > above:
                raise InputError(f"the range is inverted: lower {below:g} > upper {above:g}",
                                 field="band")
        else:
            below = number("band.below", self.below, ge=0)
            above = number("band.above", self.above, ge=0)
        _set(self, kind=kind, below=below, above=above)

    @classmethod
    def absolute(cls, width: float) -> Band:
        """Symmetric band of ``width`` weight on each side of the target."""
        return cls(width, width, "absolute")

    @classmethod
    def relative(cls, fraction: float) -> Band:
        """Symmetric band of ``fraction`` of the target on each side."""
        return cls(fraction, fraction, "relative")

    @classmethod
    def range(cls, lower: float, upper: float) -> Band:
        """Explicit edges ``[lower, upper]``."""
        return cls(lower, upper, "range")

    def edges(self, target: float) -> tuple[float, float]:
        """Lower and upper edge (weights) for a class with this ``target``."""
        if self.kind == "absolute":
            lo, hi = target - self.below, target + self.above
        elif self.kind == "relative":
            lo, hi = target * (1 - self.below), target * (1 + self.above)
        else:
            lo, hi = self.below, self.above
        return round(lo, 15), round(hi, 15)

    def edges_of(self, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`edges` for an array of targets (weights), element by element."""
        pairs = np.array([self.edges(float(t)) for t in targets]).reshape(-1, 2)
        return pairs[:, 0].copy(), pairs[:, 1].copy()


@dataclass(frozen=True)
class Costs:
    """Transaction-cost model choices (the per-security coefficients live in the portfolio).

    Parameters
    ----------
    impact
        ``"power"``: 3/2-power impact ``k sigma (V / ADV)^(1/2) |x|^(3/2)`` (Boyd et al. 2017);
        ``"quadratic"``: ``k sigma (V / ADV)^(1/2) x^2 / sqrt(x_ref)``, equal to the power law
        at the reference size ``x_ref = reference_participation * ADV / V`` (a cheaper cone);
        ``"none"``.
    impact_coefficient
        Default ``k`` (dimensionless) for securities without an ``impact_coefficient`` column.
    reference_participation
        Trade size, as a fraction of daily traded value, where the quadratic variant matches.
    """

    impact: str = "power"
    impact_coefficient: float = 1.0
    reference_participation: float = 0.1

    def __post_init__(self) -> None:
        _set(self, impact=choice("costs.impact", self.impact, IMPACT_MODELS),
             impact_coefficient=number("costs.impact_coefficient", self.impact_coefficient,
                                       ge=0),
             reference_participation=number("costs.reference_participation",
                                            self.reference_participation, gt=0))


class _FrozenDict(dict):
    """A dict that refuses changes and hashes by content, so a Policy stays hashable."""

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(sorted(self.items(), key=lambda kv: kv[0])))

    def _refuse(self, *args: object, **kwargs: object) -> None:
        raise TypeError("policy mappings are frozen; use dataclasses.replace")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _refuse  # type: ignore[assignment]

    def __reduce__(self) -> tuple[type, tuple[dict]]:
        # pickle (process pools, Dask) rebuilds from a plain dict instead of __setitem__
        return (type(self), (dict(self),))

    def __repr__(self) -> str:
        return repr(dict(self))


@dataclass(frozen=True)
class Tax:
    """Tax model of taxable accounts (tax-deferred and tax-exempt accounts pay none).

    Amounts are in the portfolio's base currency, rates are fractions; see ``docs/tax.md``.

    Parameters
    ----------
    model
        ``"linear"``: per-lot ``rate(term) * gain``, exact while both net gains stay
        non-negative; ``"exact"``: US netting of the year's net short- and long-term gains, solved
        region by region (DESIGN section 5); ``"none"``: tax ignored by the program (still
        reported).
    short_term_rate, long_term_rate
        Marginal rates (fractions) on short-term gain and on net capital gain.
    ordinary_rate
        Rate on ordinary income, which a net capital loss offsets up to the offset (fraction).
    filing_status
        ``single``, ``married_joint``, ``head_of_household`` (offset 3,000) or
        ``married_separate`` (offset 1,500), IRC 1211(b)(1).
    loss_carry_value
        ``kappa``: value today of one unit of capital loss carried to later years (fraction).
    realized_short, realized_long
        Year-to-date realized net short- and long-term gain (currency, negative for a loss),
        carryovers from earlier years included as losses of their character.
    gain_budget
        Cap on the net gain realized by this rebalance in taxable accounts, short and long
        together, washed losses not counted (currency); ``inf`` for none.
    gain_budget_penalty
        ``inf``: ``gain_budget`` is a hard cap; finite: cost per unit of net gain above the budget
        (fraction of the excess), the penalty form.
    short_term_penalty
        Extra cost per unit of short-term gain realized on lots at most ``near_long_term_days``
        from turning long-term (fraction of the gain).
    near_long_term_days
        Calendar days to long-term under which ``short_term_penalty`` applies.
    harvest_discount
        Fraction of a harvested loss given up because the lower basis of the replacement means
        a later gain: the program counts a loss at ``1 - harvest_discount`` of its amount in the
        netting (0 at full value, 1 at none). Reported taxes use the true amounts.
    wash_sale_lots
        Loss lots of a group bought in the last 30 days or scheduled to be bought in the next 30:
        ``"no_benefit"`` (may be sold, no loss value, flagged as wash sales) or ``"no_sell"``.
    substitutes
        Per class, securities of other groups that carry the class's exposure while one of its
        groups is blocked by the wash-sale rules or harvested.
    swap_tracking_cost_bps
        Tracking-error cost of holding a substitute instead of the original, charged on buys of
        substitutes (bp of the value bought).
    lot_relief
        Which lots a sale relieves: ``"optimal"`` (the program chooses lot by lot, specific
        identification, Treas. Reg. 1.1012-1(c)), or a fixed order the decode follows exactly:
        ``"hifo"`` (highest basis per share first), ``"fifo"`` (earliest acquired first, the
        default of Treas. Reg. 1.1012-1(c)(1)), ``"lifo"`` (latest acquired first). Lots that
        may not be sold are skipped. The program prices a fixed order by the convex envelope of
        its tax, exact where that tax is convex; an event ``lot_relief`` gives the difference
        elsewhere (``docs/tax.md`` section 7).
    holding_period
        Holding period of replacement shares of a wash sale: ``"tacking"`` (the sold shares'
        holding period is added, IRC 1223(3); the default) or ``"replacement_date"`` (counted
        from the purchase, as some brokers report). Honoured where lots are carried forward
        (:mod:`optirebal.backtest`).
    """

    model: str = "linear"
    short_term_rate: float = 0.37
    long_term_rate: float = 0.20
    ordinary_rate: float = 0.37
    filing_status: str = "married_joint"
    loss_carry_value: float = 0.0
    realized_short: float = 0.0
    realized_long: float = 0.0
    gain_budget: float = float("inf")
    gain_budget_penalty: float = float("inf")
    short_term_penalty: float = 0.0
    near_long_term_days: int = 30
    harvest_discount: float = 0.0
    wash_sale_lots: str = "no_benefit"
    substitutes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    swap_tracking_cost_bps: float = 0.0
    lot_relief: str = "optimal"
    holding_period: str = "tacking"

    def __post_init__(self) -> None:
        _set(self, model=choice("tax.model", self.model, TAX_MODELS),
             lot_relief=choice("tax.lot_relief", self.lot_relief, LOT_RELIEF),
             holding_period=choice("tax.holding_period", self.holding_period, HOLDING_PERIODS),
             filing_status=choice("tax.filing_status", self.filing_status, FILING_STATUSES),
             wash_sale_lots=choice("tax.wash_sale_lots", self.wash_sale_lots, WASH_SALE_LOTS),
             near_long_term_days=integer("tax.near_long_term_days", self.near_long_term_days))
        for name in ("short_term_rate", "long_term_rate", "ordinary_rate"):
            _set(self, **{name: number(f"tax.{name}", getattr(self, name), ge=0, lt=1)})
        for name in ("loss_carry_value", "harvest_discount"):
            _set(self, **{name: number(f"tax.{name}", getattr(self, name), ge=0, le=1)})
        for name in ("realized_short", "realized_long"):
            _set(self, **{name: number(f"tax.{name}", getattr(self, name))})
        for name in ("gain_budget", "gain_budget_penalty"):  # inf: no budget, a hard cap
            _set(self, **{name: number(f"tax.{name}", getattr(self, name), ge=0,
                                       allow_inf=True)})
        for name in ("short_term_penalty", "swap_tracking_cost_bps"):
            _set(self, **{name: number(f"tax.{name}", getattr(self, name), ge=0)})
        subs: dict[str, tuple[str, ...]] = {}
        for cls, names in table("tax.substitutes", self.substitutes).items():
            subs[cls] = ((text("tax.substitutes", names, row=cls),) if isinstance(names, str)
                         else texts(f"tax.substitutes.{cls}", names))
        _set(self, substitutes=_FrozenDict(subs))

    @property
    def offset(self) -> float:
        """Ordinary-income offset of a net capital loss (currency), IRC 1211(b)(1)."""
        return 1500.0 if self.filing_status == "married_separate" else 3000.0


@dataclass(frozen=True)
class Restrictions:
    """Trading restrictions. Entries are ``"SECURITY"`` (every account) or ``"ACCOUNT/SECURITY"``.

    ``locked_lots`` are lot ids that may not be sold.
    """

    no_buy: tuple[str, ...] = ()
    no_sell: tuple[str, ...] = ()
    no_trade: tuple[str, ...] = ()
    locked_lots: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("no_buy", "no_sell", "no_trade", "locked_lots"):
            _set(self, **{name: texts(f"restrictions.{name}", getattr(self, name))})


@dataclass(frozen=True)
class DecodeOptions:
    """How the solution becomes orders.

    Parameters
    ----------
    min_trade_value
        Orders (per account and security) below this value (currency) are dropped and the program
        is solved again with them fixed at zero, unless the bands need them.
    repair_rounds
        Bound on drop-and-solve-again rounds.
    """

    min_trade_value: float = 0.0
    repair_rounds: int = 3

    def __post_init__(self) -> None:
        _set(self, min_trade_value=number("decode.min_trade_value", self.min_trade_value, ge=0),
             repair_rounds=integer("decode.repair_rounds", self.repair_rounds))


@dataclass(frozen=True)
class SolverOptions:
    """Solver chain and bounded loops.

    ``chain`` is tried in order; OSQP is used only when the program is a QP (impact ``none``:
    any impact is paid from cash, a nonlinear constraint). ``conflict_rounds`` bounds the
    re-solves that settle a security group bought and sold at a loss in the same solve.
    """

    chain: tuple[str, ...] = SOLVERS
    conflict_rounds: int = 5

    def __post_init__(self) -> None:
        chain = tuple(choice("solver.chain", name.upper(), SOLVERS)
                      for name in texts("solver.chain", self.chain, "('CLARABEL', 'ECOS')"))
        if not chain:
            raise InputError("solver.chain must name at least one solver", field="solver.chain")
        _set(self, chain=chain,
             conflict_rounds=integer("solver.conflict_rounds", self.conflict_rounds))


IMPLEMENTATIONS = ("physical", "synthetic", "hybrid")
MARGIN_SHORTFALL = ("raise", "reduce")


@dataclass(frozen=True)
class Schedule:
    """When a policy looks at the portfolio over time, and what it does with income meanwhile.

    Used by :func:`optirebal.backtest`; a single :func:`optirebal.solve` is one look.

    Parameters
    ----------
    looks
        ``"every"`` (every date of the market data), ``"daily"``, ``"weekly"`` (the last market
        date of each week), ``"monthly"``, ``"quarterly"``, ``"semiannual"`` (June and December),
        ``"annual"`` (December), ``"never"`` (only when cash must move), or a pandas offset alias
        (``"2W-FRI"``, ``"BME"``, ``"10B"``): the last market date on or before each date of
        ``pandas.date_range(start, end, freq=looks)``.
    dates
        Explicit look dates (ISO 8601, ``YYYY-MM-DD``), each a date of the market data; they
        replace ``looks`` when given.
    income
        Cash distributions (``Market.income``): ``"cash"`` (credited to the account's cash) or
        ``"reinvest"`` (bought back in the same security on the pay date, a new lot).
    """

    looks: str = "every"
    dates: tuple[str, ...] = ()
    income: str = "cash"

    def __post_init__(self) -> None:
        looks = text("schedule.looks", self.looks)
        if looks not in LOOKS:
            try:
                pd.tseries.frequencies.to_offset(looks)
            except ValueError:
                close = difflib.get_close_matches(looks, LOOKS, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise InputError(f"must be one of {', '.join(LOOKS)} or a pandas offset alias "
                                 f"such as '2W-FRI', got {looks!r}{hint}",
                                 field="schedule.looks") from None
        dates = texts("schedule.dates", self.dates, "('2026-03-31',)")
        for n, day in enumerate(dates):
            try:
                dt.date.fromisoformat(day)
            except ValueError:
                raise InputError(f"not an ISO 8601 date (YYYY-MM-DD): {day!r}",
                                 field="schedule.dates", row=str(n)) from None
        _set(self, looks=looks, dates=tuple(sorted(dates)),
             income=choice("schedule.income", self.income, INCOME))


@dataclass(frozen=True)
class Momentum:
    """Momentum filter: a class above its upper band whose momentum is positive is not trimmed.

    While deferred, the class's upper edge is lifted to its weight and sales of its securities
    are held at zero (the reason ``"momentum: trim deferred"``); underweights are still bought
    and flows still routed. A class above its ``hard_cap`` is trimmed as usual. Triggers test
    the other classes as a portfolio of their own (weights and targets rescaled to what the
    winners leave), so the drift a running winner causes fires no trigger: a look trades only
    when another class is outside its trigger band or cash must move.

    Parameters
    ----------
    signal
        ``"12-1"`` (the trailing 12-month return skipping the last month), ``"ma<N>"`` (price
        above its N-date moving average, e.g. ``"ma200"``), both computed by a backtest from the
        market's prices, value-weighted over a class's securities; or ``"given"`` (the
        portfolio's ``signals`` frame, or the market's ``signals`` column named after the
        class). In a single :func:`optirebal.solve` the portfolio's ``signals`` are used.
    hard_cap
        Per class, the weight (fraction of NAV) above which a winner is trimmed anyway.
    """

    signal: str = "12-1"
    hard_cap: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        signal = text("momentum.signal", self.signal)
        if signal not in ("12-1", "given") and not (signal.startswith("ma")
                                                    and signal[2:].isdigit()
                                                    and int(signal[2:]) > 1):
            raise InputError(f"must be '12-1', 'given' or 'ma<N>' such as 'ma200', got "
                             f"{signal!r}", field="momentum.signal")
        caps = {name: number("momentum.hard_cap", cap, row=name, ge=0, le=1)
                for name, cap in table("momentum.hard_cap", self.hard_cap).items()}
        _set(self, signal=signal, hard_cap=_FrozenDict(caps))


@dataclass(frozen=True)
class Velocity:
    """Rebalancing speed set by volatility: the fraction of the gap a look closes
    (:attr:`Policy.fraction`), recomputed at each look of a backtest.

    Two forms (:mod:`optirebal.signals`): a ramp on an indicator, ``v = clip(v_min + (v_max -
    v_min) (x - low) / (high - low), v_min, v_max)`` where ``x`` is the market's ``signals``
    column ``indicator`` on the look date (such as the implied-volatility index, so buying
    depressed classes speeds up when panic peaks); or, with ``vol_target``, target-volatility
    scaling ``min(max_scale, vol_target / vol_estimate)`` from the portfolio's realized
    volatility over the last ``window`` dates (annualized).

    Parameters
    ----------
    indicator
        Name of the market's signal column for the ramp.
    v_min, v_max
        Fractions at and beyond ``low`` and ``high`` (0 < v_min <= v_max <= 1).
    low, high
        Indicator levels of the ramp's ends (index points for the VIX).
    vol_target
        Annualized volatility target (fraction); ``None`` for the ramp.
    max_scale
        Cap of the target-volatility fraction (at most 1).
    window
        Dates of realized volatility.
    """

    indicator: str = "vix"
    v_min: float = 0.25
    v_max: float = 1.0
    low: float = 15.0
    high: float = 35.0
    vol_target: float | None = None
    max_scale: float = 1.0
    window: int = 63

    def __post_init__(self) -> None:
        v_min = number("velocity.v_min", self.v_min, gt=0, le=1)
        v_max = number("velocity.v_max", self.v_max, gt=0, le=1)
        if v_min > v_max:
            raise InputError(f"v_min {v_min:g} > v_max {v_max:g}", field="velocity.v_min")
        low, high = number("velocity.low", self.low), number("velocity.high", self.high)
        if not low < high:
            raise InputError(f"low {low:g} must be below high {high:g}", field="velocity.low")
        vol_target = self.vol_target
        if vol_target is not None:
            vol_target = number("velocity.vol_target", vol_target, gt=0)
        _set(self, indicator=text("velocity.indicator", self.indicator), v_min=v_min,
             v_max=v_max, low=low, high=high, vol_target=vol_target,
             max_scale=number("velocity.max_scale", self.max_scale, gt=0, le=1),
             window=integer("velocity.window", self.window, ge=2))


@dataclass(frozen=True)
class Overlay:
    """How derivatives may implement the allocation (see ``docs/overlay.md``).

    Notional amounts are weights (fractions of pre-trade NAV), absolute and per instrument.

    Parameters
    ----------
    implementation
        ``"physical"``: derivative positions are held (or migrated, below), never added to;
        ``"synthetic"``: only derivatives trade, no physical order; ``"hybrid"``: both.
    instrument_caps
        Cap on the absolute notional of each named instrument (weight).
    max_instrument_notional
        Cap on the absolute notional of every instrument without its own cap; ``None``: none.
    max_gross_notional
        Cap on the sum of absolute notionals (weight); ``None``: none.
    margin_account
        Account whose cash posts margin and pays derivative trades; ``None``: the first account.
    variation_buffer
        Cash kept for variation margin per unit of absolute notional (fraction), on top of each
        instrument's margin rate.
    migrate_fraction
        Fraction of each existing position that must be closed at this review,
        ``|o| <= (1 - f) |o0|`` on the same side, so an overlay migrates into physical holdings
        over successive reviews. With ``physical`` the position is set to ``(1 - f) o0``.
    on_margin_shortfall
        When the margin of the current contracts is above the margin account's available cash:
        ``"raise"`` an :class:`InputError` naming the instrument, or ``"reduce"`` every position
        to at most the fraction the cash carries.
    """

    implementation: str = "hybrid"
    instrument_caps: Mapping[str, float] = field(default_factory=dict)
    max_instrument_notional: float | None = None
    max_gross_notional: float | None = None
    margin_account: str | None = None
    variation_buffer: float = 0.0
    migrate_fraction: float = 0.0
    on_margin_shortfall: str = "raise"

    def __post_init__(self) -> None:
        caps = {name: number("overlay.instrument_caps", cap, row=name, ge=0)
                for name, cap in table("overlay.instrument_caps", self.instrument_caps).items()}
        _set(self, implementation=choice("overlay.implementation", self.implementation,
                                         IMPLEMENTATIONS),
             on_margin_shortfall=choice("overlay.on_margin_shortfall", self.on_margin_shortfall,
                                        MARGIN_SHORTFALL),
             instrument_caps=_FrozenDict(caps),
             max_instrument_notional=optional_number("overlay.max_instrument_notional",
                                                     self.max_instrument_notional, ge=0),
             max_gross_notional=optional_number("overlay.max_gross_notional",
                                                self.max_gross_notional, ge=0),
             margin_account=None if self.margin_account is None
             else text("overlay.margin_account", self.margin_account),
             variation_buffer=number("overlay.variation_buffer", self.variation_buffer, ge=0),
             migrate_fraction=number("overlay.migrate_fraction", self.migrate_fraction, ge=0,
                                     le=1))


@dataclass(frozen=True)
class Policy:
    """What the rebalance must achieve and at what price.

    Parameters
    ----------
    targets
        Target weight per asset class; must sum to one. Include the cash class (``cash_class``)
        to target a cash weight; otherwise cash has target zero and no band.
    band
        Destination band of every class without its own entry in ``class_bands``.
    class_bands
        Destination band per class.
    trigger, class_triggers
        Optional trigger bands: when every class is inside its trigger band and no account has a
        flow or a cash shortfall, nothing is traded. ``None`` trades at every call.
    mode
        ``full``, ``to_band`` (risk aversion 0: cheapest trades into the band), ``to_target``
        (band collapsed to the target within ``target_tolerance``), ``buy_only``, ``sell_only``,
        ``cash_only`` (only deploy or raise each account's cash). The last three make bands soft.
    risk_aversion
        ``gamma`` of the tracking-error cost ``(gamma / 2) H (w - t)' S (w - t)``.
    horizon_years
        ``H``, years to the next review.
    soft_bands, band_penalty
        Soft bands cost ``band_penalty`` per unit weight outside (fraction of NAV per unit).
    target_tolerance
        Half-width (weight) of the collapsed band of ``to_target``.
    counterflow_penalty
        Cost per unit weight of trading against an account's flow (selling where cash comes in,
        buying where cash must be raised); bands still force such trades when needed.
    turnover_cap
        Cap on gross traded value (buys plus sells) as a fraction of NAV; ``None`` for none.
    fraction
        Fraction of the gap to the destination that a trade closes, in (0, 1]: the destination
        band of a class outside it moves toward the class's weight ``w`` by ``1 - fraction`` of
        the gap (width kept), so a class above its upper edge ``hi`` ends at most at
        ``w - fraction (w - hi)`` and no lower than the moved lower edge. With
        ``mode = "to_target"`` the destination is the target, so 0.5 moves exactly halfway.
    tracking_error_trigger
        Ex-ante tracking error (annualized, fraction) above which a look trades, from the
        portfolio's risk model: ``sqrt((w - t)' S (w - t))``. With trigger bands too, either
        fires; ``None`` for none.
    cash_class
        Name of the class that holds cash.
    schedule
        When the policy looks over time (:class:`Schedule`), for :func:`optirebal.backtest`.
    momentum
        A momentum filter (:class:`Momentum`) that lets winners run; ``None`` for none.
    velocity
        Rebalancing speed from volatility (:class:`Velocity`), for backtests: it sets
        ``fraction`` at each look; ``None`` for none.
    overlay
        Derivative overlay rules (:class:`Overlay`); they matter only when the portfolio holds
        derivatives, except ``implementation = "synthetic"``, which forbids physical trades.
    extra_terms
        Terms added to the program's own (:data:`optirebal.program.terms.TERMS`): objects with
        the protocol of :class:`optirebal.program.terms.base.Term`, built after the trades,
        impact and overlay terms, so that a cost they add to ``pair_cost`` is paid from cash
        and counts in the bands (``docs/architecture.md`` adds a borrow fee). Python objects:
        not read from or written to TOML.
    """

    targets: Mapping[str, float]
    band: Band = Band.absolute(0.05)  # noqa: RUF009 (a frozen, immutable default)
    class_bands: Mapping[str, Band] = field(default_factory=dict)
    trigger: Band | None = None
    class_triggers: Mapping[str, Band] = field(default_factory=dict)
    mode: str = "full"
    risk_aversion: float = 1.0
    horizon_years: float = 0.25
    soft_bands: bool = False
    band_penalty: float = 1.0
    target_tolerance: float = 0.0
    counterflow_penalty: float = 1.0
    turnover_cap: float | None = None
    fraction: float = 1.0
    tracking_error_trigger: float | None = None
    cash_class: str = "cash"
    costs: Costs = Costs()
    tax: Tax = Tax()
    restrictions: Restrictions = Restrictions()
    decode: DecodeOptions = DecodeOptions()
    solver: SolverOptions = SolverOptions()
    overlay: Overlay = field(default_factory=lambda: Overlay())
    schedule: Schedule = Schedule()
    momentum: Momentum | None = None
    velocity: Velocity | None = None
    extra_terms: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        self._check_types()
        for n, term in enumerate(self.extra_terms):
            if not all(callable(getattr(term, m, None)) for m in TERM_METHODS) \
                    or not isinstance(getattr(term, "name", None), str):
                raise InputError(f"extra_terms[{n}] is not a term: it needs a str name and "
                                 f"the methods {', '.join(TERM_METHODS)} (see "
                                 "optirebal.program.terms.base.BaseTerm)", field="extra_terms",
                                 row=str(n))
        targets = self.targets
        if not targets:
            raise InputError("targets must give the weight of at least one class",
                             field="targets")
        total = sum(targets.values())
        if abs(total - 1) > TARGET_SUM_TOLERANCE:
            raise InputError(f"targets must sum to 1, got {total:.9g} ({dict(targets)})",
                             field="targets")
        for mapping in ("class_bands", "class_triggers"):
            unknown = [k for k in getattr(self, mapping) if k not in targets]
            if unknown:
                raise InputError(f"{mapping}[{unknown[0]!r}]: no target for that class",
                                 field=mapping, row=unknown[0])
        for name, target in targets.items():
            for what, band, mapping in (("band", self.band_of(name), "class_bands"),
                                        ("trigger", self.trigger_of(name), "class_triggers")):
                if band is None:
                    continue
                lo, hi = band.edges(target)
                if lo > target + 1e-12 or hi < target - 1e-12:
                    raise InputError(f"{what} of {name!r} [{lo:g}, {hi:g}] excludes its target "
                                     f"{target:g}", row=name,
                                     field=mapping if name in getattr(self, mapping) else what)

    def _check_types(self) -> None:
        """Every field's type and range (``docs/formulation.md``, "Input validation")."""
        terms = self.extra_terms
        if isinstance(terms, str | bytes | Mapping) or not isinstance(terms, Iterable):
            raise InputError(f"extra_terms must be a tuple of terms, got {terms!r}",
                             field="extra_terms")
        targets = {name: number("targets", weight, row=name, ge=0, le=1)
                   for name, weight in table("targets", self.targets).items()}
        bands = {}
        for mapping in ("class_bands", "class_triggers"):
            bands[mapping] = table(mapping, getattr(self, mapping))
            for name, band in bands[mapping].items():
                if not isinstance(band, Band):
                    raise InputError(f"must be a Band such as Band.absolute(0.05), got {band!r}",
                                     field=mapping, row=name)
        _set(self, extra_terms=tuple(terms), targets=_FrozenDict(targets),
             class_bands=_FrozenDict(bands["class_bands"]),
             class_triggers=_FrozenDict(bands["class_triggers"]),
             band=instance("band", self.band, Band, "Band.absolute(0.05)"),
             trigger=None if self.trigger is None
             else instance("trigger", self.trigger, Band, "Band.absolute(0.1)"),
             mode=choice("mode", self.mode, MODES),
             soft_bands=boolean("soft_bands", self.soft_bands),
             target_tolerance=number("target_tolerance", self.target_tolerance, ge=0, le=1),
             turnover_cap=optional_number("turnover_cap", self.turnover_cap, ge=0),
             fraction=number("fraction", self.fraction, gt=0, le=1),
             tracking_error_trigger=optional_number("tracking_error_trigger",
                                                    self.tracking_error_trigger, ge=0),
             cash_class=text("cash_class", self.cash_class))
        for name in ("risk_aversion", "horizon_years", "band_penalty", "counterflow_penalty"):
            _set(self, **{name: number(name, getattr(self, name), ge=0)})
        for name, kind in _PARTS.items():
            if name in _OPTIONAL_PARTS and getattr(self, name) is None:
                continue
            instance(name, getattr(self, name), kind, f"{kind.__name__}()")

    def band_of(self, name: str) -> Band:
        """Destination band of class ``name``."""
        return self.class_bands.get(name, self.band)

    def trigger_of(self, name: str) -> Band | None:
        """Trigger band of class ``name`` (``None`` when the policy has no trigger)."""
        return self.class_triggers.get(name, self.trigger)

    @property
    def has_trigger(self) -> bool:
        """Whether some look may end without a trade (trigger bands or a tracking-error level)."""
        return (self.trigger is not None or bool(self.class_triggers)
                or self.tracking_error_trigger is not None)

    # --- TOML ---------------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, file: str | None = None) -> Policy:
        """Build from the ``[policy]`` table of a model file (nested dicts).

        Raises
        ------
        PolicyFileError
            Unknown or misspelled keys (with the nearest known key), wrong types or values.
        """
        if not isinstance(data, Mapping):
            raise PolicyFileError(f"the policy must be a table ([policy]), got {data!r}",
                                  file=file, key="policy")
        data = dict(data)
        _known_keys(data, _POLICY_KEYS, "policy", file)
        if "targets" not in data:
            raise PolicyFileError("missing key: the target weight of every class",
                                  file=file, key="policy.targets")
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            where = f"policy.{key}"
            if key in ("band", "trigger"):
                kwargs[key] = _band_from(value, where, file)
            elif key in ("class_bands", "class_triggers"):
                if not isinstance(value, Mapping):
                    raise PolicyFileError(f"must be a table of bands such as "
                                          f"{{equity = {{width = 0.03}}}}, got {value!r}",
                                          file=file, key=where)
                kwargs[key] = {k: _band_from(v, f"{where}.{k}", file) for k, v in value.items()}
            elif key in _PARTS:
                part = _PARTS[key]
                if not isinstance(value, Mapping):
                    raise PolicyFileError(f"must be a table ([{where}]), got {value!r}",
                                          file=file, key=where)
                _known_keys(value, [f.name for f in dataclasses.fields(part)], where, file)
                kwargs[key] = _build(part, dict(value), file)
            else:
                kwargs[key] = value
        return _build(cls, kwargs, file)

    @classmethod
    def from_toml(cls, path: str | Path) -> Policy:
        """Read a policy from a TOML file with a ``[policy]`` table (or a bare one)."""
        data = _read_toml(path)
        return cls.from_dict(data.get("policy", data), file=str(path))

    def to_dict(self) -> dict[str, Any]:
        """Nested plain dicts, the inverse of :meth:`from_dict` (``None`` fields omitted)."""
        out: dict[str, Any] = {}
        if self.extra_terms:
            raise InputError("extra_terms are Python objects and cannot be written to TOML",
                             field="extra_terms")
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None or f.name == "extra_terms":
                continue
            if isinstance(value, Band):
                out[f.name] = dataclasses.asdict(value)
            elif isinstance(value, Mapping):
                out[f.name] = {k: dataclasses.asdict(v) if isinstance(v, Band) else v
                               for k, v in value.items()}
            elif dataclasses.is_dataclass(value):
                out[f.name] = {k: list(v) if isinstance(v, tuple)
                               else dict(v) if isinstance(v, Mapping) else v
                               for k, v in dataclasses.asdict(value).items()  # type: ignore[arg-type]
                               if v is not None}
            else:
                out[f.name] = value
        return out

    def to_toml(self) -> str:
        """The policy as a TOML document with a ``[policy]`` table."""
        return tomli_w.dumps({"policy": self.to_dict()})


_PARTS: dict[str, type] = {"costs": Costs, "tax": Tax, "restrictions": Restrictions,
                           "decode": DecodeOptions, "solver": SolverOptions,
                           "overlay": Overlay, "schedule": Schedule, "momentum": Momentum,
                           "velocity": Velocity}
_OPTIONAL_PARTS = ("momentum", "velocity")
_POLICY_KEYS = [f.name for f in dataclasses.fields(Policy) if f.name != "extra_terms"]
_BAND_KEYS = ("width", "below", "above", "lower", "upper", "kind")
_MAPPINGS = ("targets", "class_bands", "class_triggers", "tax.substitutes",
             "overlay.instrument_caps", "momentum.hard_cap")
"""Fields whose rows are keys of a TOML table: an error in a row names ``policy.<field>.<row>``."""


def _build(factory: Any, kwargs: dict[str, Any], file: str | None) -> Any:
    """``factory(**kwargs)``, its :class:`InputError` as a :class:`PolicyFileError` naming the
    key (``policy.<field>``, and the row of a table)."""
    try:
        return factory(**kwargs)
    except InputError as exc:
        name = exc.field or ""
        if factory in _PARTS.values() and "." not in name:
            name = f"{_PART_NAMES[factory]}.{name}"
        key = f"policy.{name}" if name else "policy"
        if exc.row is not None and name in _MAPPINGS:
            key = f"{key}.{exc.row}"
        raise PolicyFileError(exc.detail, file=file, key=key) from None


_PART_NAMES = {part: name for name, part in _PARTS.items()}


def _band_from(value: Any, key: str, file: str | None) -> Band:
    """A band from ``{width}``, ``{width, kind = "relative"}``, ``{below, above}`` or
    ``{lower, upper}`` (``kind = "range"``); values are checked as :class:`Band` checks them."""
    if isinstance(value, Band):
        return value
    if not isinstance(value, Mapping):
        raise PolicyFileError(f"a band is a table such as {{width = 0.05}}, got {value!r}",
                              file=file, key=key)
    spec = dict(value)
    _known_keys(spec, _BAND_KEYS, key, file)
    kind = spec.pop("kind", None)
    given = set(spec)
    if given & {"lower", "upper"}:
        form, need = "range", {"lower", "upper"}
    elif "width" in given:
        form, need = "width", {"width"}
    else:
        form, need = "edges", {"below", "above"}
    extra = sorted(given - need)
    if extra:
        raise PolicyFileError(f"give width, below and above, or lower and upper, not "
                              f"{sorted(given)}", file=file, key=f"{key}.{extra[0]}")
    missing = sorted(need - given)
    if missing:
        raise PolicyFileError(f"band needs {missing[0]!r}", file=file, key=key)
    if form == "range" and kind not in (None, "range"):
        raise PolicyFileError(f"a band with lower and upper is kind 'range', got {kind!r}",
                              file=file, key=f"{key}.kind")
    if form == "width" and kind == "range":
        raise PolicyFileError("kind 'range' takes lower and upper (or below and above)",
                              file=file, key=f"{key}.kind")
    try:
        if form == "range":
            return Band.range(spec["lower"], spec["upper"])
        if form == "width":
            return Band(spec["width"], spec["width"], "absolute" if kind is None else kind)
        return Band(spec["below"], spec["above"], "absolute" if kind is None else kind)
    except InputError as exc:
        name = (exc.field or "").removeprefix("band.")
        sub = "width" if form == "width" and name in ("below", "above") else name
        raise PolicyFileError(exc.detail, file=file,
                              key=f"{key}.{sub}" if sub and sub in _BAND_KEYS else key) from None


def _known_keys(data: Mapping[str, Any], known: Any, where: str, file: str | None) -> None:
    for key in data:
        if key not in known:
            near = difflib.get_close_matches(key, list(known), n=1)
            hint = f"; did you mean {near[0]!r}?" if near else f"; known keys: {sorted(known)}"
            raise PolicyFileError(f"unknown key{hint}", file=file,
                                 key=f"{where}.{key}" if where else key)


def read_text(path: str | Path, what: str = "file") -> str:
    """The text of a UTF-8 file, or a :class:`PolicyFileError` naming it: missing, a directory,
    unreadable, not UTF-8, or empty."""
    file = str(path)
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise PolicyFileError(f"{what} not found", file=file) from None
    except IsADirectoryError:
        raise PolicyFileError(f"is a directory, not a {what}", file=file) from None
    except OSError as exc:
        raise PolicyFileError(f"cannot read the {what}: {exc.strerror or exc}",
                              file=file) from None
    try:
        content = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PolicyFileError(f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset "
                              f"{exc.start}); save the {what} as UTF-8", file=file) from None
    if not content.strip():
        raise PolicyFileError(f"empty {what}", file=file)
    return content


def _read_toml(path: str | Path) -> dict[str, Any]:
    content = read_text(path, "file")
    try:
        return tomllib.loads(content)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyFileError(f"not valid TOML: {exc}", file=str(path)) from None
