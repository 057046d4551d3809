"""The parts of a :class:`~optirebal.policy.Policy`: bands, costs, tax, restrictions, decode and
solver options, the derivative overlay, and the time-axis parts (schedule, momentum, velocity).

Each is a frozen dataclass whose fields are type- and range-checked when built (numbers finite,
booleans real booleans, strings from their sets), naming the field.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from optirebal.errors import InputError
from optirebal.schema import (
    choice,
    integer,
    number,
    optional_number,
    table,
    text,
    texts,
)
from optirebal.tax.netting import TaxRates

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

    def rates(self, *, scale: float = 1.0, carry_value: bool = True) -> TaxRates:
        """The netting rates (:class:`optirebal.tax.netting.TaxRates`), the offset divided by
        ``scale`` (the NAV, for weights); ``carry_value=False`` values carryovers at nothing
        (the tax a year's return shows)."""
        return TaxRates(self.short_term_rate, self.long_term_rate, self.ordinary_rate,
                        self.offset / scale, self.loss_carry_value if carry_value else 0.0)


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
