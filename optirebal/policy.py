"""`Policy`: targets, bands, mode, costs, tax, restrictions and solver choices (frozen dataclasses).

A policy is plain configuration: hashable, printable, its ``repr`` rebuilds it, and variants come
from :func:`dataclasses.replace`. It holds no solver state. It loads from and dumps to TOML; an
unknown or misspelled key is an error naming the key (with the nearest known one).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tomli_w

from optirebal.errors import InputError, PolicyFileError

MODES = ("full", "to_band", "to_target", "buy_only", "sell_only", "cash_only",
         "harvest_only")
BAND_KINDS = ("absolute", "relative", "range")
IMPACT_MODELS = ("power", "quadratic", "none")
TAX_MODELS = ("linear", "exact", "none")
WASH_SALE_LOTS = ("no_benefit", "no_sell")
FILING_STATUSES = ("single", "married_joint", "married_separate", "head_of_household")
SOLVERS = ("CLARABEL", "ECOS", "OSQP")
TARGET_SUM_TOLERANCE = 1e-6


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        near = difflib.get_close_matches(str(value), allowed, n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        raise InputError(f"{name} must be one of {allowed}, got {value!r}{hint}", field=name)


def _non_negative(name: str, value: float) -> None:
    if not value >= 0:
        raise InputError(f"{name} must be >= 0, got {value!r}", field=name)


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
        if self.kind not in BAND_KINDS:
            raise InputError(f"Band kind must be one of {BAND_KINDS}, got {self.kind!r}")
        if not (math.isfinite(self.below) and math.isfinite(self.above)):
            raise InputError(f"Band edges must be finite, got below={self.below}, "
                             f"above={self.above}", field="band")
        if self.kind != "range" and (self.below < 0 or self.above < 0):
            raise InputError(f"Band widths must be >= 0, got below={self.below}, "
                             f"above={self.above}")

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
        _choice("costs.impact", self.impact, IMPACT_MODELS)
        _non_negative("costs.impact_coefficient", self.impact_coefficient)
        if not self.reference_participation > 0:
            raise InputError("costs.reference_participation must be > 0")


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

    def __post_init__(self) -> None:
        _choice("tax.model", self.model, TAX_MODELS)
        _choice("tax.filing_status", self.filing_status, FILING_STATUSES)
        _choice("tax.wash_sale_lots", self.wash_sale_lots, WASH_SALE_LOTS)
        for name in ("short_term_rate", "long_term_rate", "ordinary_rate"):
            rate = getattr(self, name)
            if not 0 <= rate < 1:
                raise InputError(f"tax.{name} must be in [0, 1), got {rate}")
        for name in ("loss_carry_value", "harvest_discount"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise InputError(f"tax.{name} must be in [0, 1], got {value}")
        for name in ("realized_short", "realized_long"):
            if not abs(getattr(self, name)) < float("inf"):
                raise InputError(f"tax.{name} must be a finite amount, got {getattr(self, name)}")
        for name in ("gain_budget", "gain_budget_penalty", "short_term_penalty",
                     "near_long_term_days", "swap_tracking_cost_bps"):
            _non_negative(f"tax.{name}", getattr(self, name))
        subs = {str(k): tuple(str(s) for s in ([v] if isinstance(v, str) else v))
                for k, v in dict(self.substitutes).items()}
        object.__setattr__(self, "substitutes", _FrozenDict(subs))

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
            object.__setattr__(self, name, tuple(str(x) for x in getattr(self, name)))


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
        _non_negative("decode.min_trade_value", self.min_trade_value)
        if self.repair_rounds < 0:
            raise InputError("decode.repair_rounds must be >= 0")


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
        chain = tuple(str(s).upper() for s in self.chain)
        for name in chain:
            _choice("solver.chain", name, SOLVERS)
        if not chain:
            raise InputError("solver.chain must name at least one solver")
        object.__setattr__(self, "chain", chain)


IMPLEMENTATIONS = ("physical", "synthetic", "hybrid")
MARGIN_SHORTFALL = ("raise", "reduce")


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
        _choice("overlay.implementation", self.implementation, IMPLEMENTATIONS)
        _choice("overlay.on_margin_shortfall", self.on_margin_shortfall, MARGIN_SHORTFALL)
        caps = {str(k): float(v) for k, v in dict(self.instrument_caps).items()}
        for name, cap in caps.items():
            _non_negative(f"overlay.instrument_caps[{name!r}]", cap)
        object.__setattr__(self, "instrument_caps", _FrozenDict(caps))
        for name in ("max_instrument_notional", "max_gross_notional"):
            if getattr(self, name) is not None:
                _non_negative(f"overlay.{name}", getattr(self, name))
        _non_negative("overlay.variation_buffer", self.variation_buffer)
        if not 0 <= self.migrate_fraction <= 1:
            raise InputError(f"overlay.migrate_fraction must be in [0, 1], got "
                             f"{self.migrate_fraction!r}")
        if self.margin_account is not None:
            object.__setattr__(self, "margin_account", str(self.margin_account))


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
    cash_class
        Name of the class that holds cash.
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
    cash_class: str = "cash"
    costs: Costs = Costs()
    tax: Tax = Tax()
    restrictions: Restrictions = Restrictions()
    decode: DecodeOptions = DecodeOptions()
    solver: SolverOptions = SolverOptions()
    overlay: Overlay = field(default_factory=lambda: Overlay())
    extra_terms: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "extra_terms", tuple(self.extra_terms))
        for n, term in enumerate(self.extra_terms):
            if not all(callable(getattr(term, m, None)) for m in TERM_METHODS) \
                    or not isinstance(getattr(term, "name", None), str):
                raise InputError(f"extra_terms[{n}] is not a term: it needs a str name and "
                                 f"the methods {', '.join(TERM_METHODS)} (see "
                                 "optirebal.program.terms.base.BaseTerm)", field="extra_terms",
                                 row=str(n))
        for name in ("targets", "class_bands", "class_triggers"):
            object.__setattr__(self, name, _FrozenDict(getattr(self, name)))
        _choice("mode", self.mode, MODES)
        targets = {str(k): float(v) for k, v in self.targets.items()}
        object.__setattr__(self, "targets", _FrozenDict(targets))
        for name, weight in targets.items():
            if not 0 <= weight <= 1:
                raise InputError(f"targets[{name!r}] must be in [0, 1], got {weight}",
                                 field="targets", row=name)
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
            lo, hi = self.band_of(name).edges(target)
            if lo > target + 1e-12 or hi < target - 1e-12:
                raise InputError(f"band of {name!r} [{lo:g}, {hi:g}] excludes its target "
                                 f"{target:g}", field="class_bands" if name in self.class_bands
                                 else "band", row=name)
        for name in ("risk_aversion", "horizon_years", "band_penalty", "target_tolerance",
                     "counterflow_penalty"):
            _non_negative(name, getattr(self, name))
        if self.turnover_cap is not None:
            _non_negative("turnover_cap", self.turnover_cap)

    def band_of(self, name: str) -> Band:
        """Destination band of class ``name``."""
        return self.class_bands.get(name, self.band)

    def trigger_of(self, name: str) -> Band | None:
        """Trigger band of class ``name`` (``None`` when the policy has no trigger)."""
        return self.class_triggers.get(name, self.trigger)

    # --- TOML ---------------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, file: str | None = None) -> Policy:
        """Build from the ``[policy]`` table of a model file (nested dicts).

        Raises
        ------
        PolicyFileError
            Unknown or misspelled keys (with the nearest known key), wrong types or values.
        """
        data = dict(data)
        _known_keys(data, _POLICY_KEYS, "policy", file)
        kwargs: dict[str, Any] = {}
        try:
            for key, value in data.items():
                if key in ("band", "trigger"):
                    kwargs[key] = _band_from(value, f"policy.{key}", file)
                elif key in ("class_bands", "class_triggers"):
                    kwargs[key] = {k: _band_from(v, f"policy.{key}.{k}", file)
                                   for k, v in dict(value).items()}
                elif key in _PARTS:
                    part = _PARTS[key]
                    _known_keys(dict(value), [f.name for f in dataclasses.fields(part)],
                                f"policy.{key}", file)
                    kwargs[key] = part(**dict(value))
                else:
                    kwargs[key] = value
            return cls(**kwargs)
        except PolicyFileError:
            raise
        except (TypeError, ValueError) as exc:
            field_name = getattr(exc, "field", None)
            key = f"policy.{field_name}" if field_name else "policy"
            raise PolicyFileError(str(exc), file=file, key=key) from None

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
                           "overlay": Overlay}
_POLICY_KEYS = [f.name for f in dataclasses.fields(Policy) if f.name != "extra_terms"]
_BAND_KEYS = ("width", "below", "above", "lower", "upper", "kind")


def _band_from(value: Any, key: str, file: str | None) -> Band:
    """A band from ``{width}``, ``{width, kind = "relative"}``, ``{below, above}`` or
    ``{lower, upper}``."""
    if isinstance(value, Band):
        return value
    if not isinstance(value, Mapping):
        raise PolicyFileError("a band is a table such as {width = 0.05}", file=file, key=key)
    spec = dict(value)
    _known_keys(spec, _BAND_KEYS, key, file)
    kind = spec.pop("kind", None)
    try:
        if "lower" in spec or "upper" in spec:
            return Band.range(float(spec["lower"]), float(spec["upper"]))
        if "width" in spec:
            width = float(spec["width"])
            return Band(width, width, kind or "absolute")
        return Band(float(spec["below"]), float(spec["above"]), kind or "absolute")
    except KeyError as exc:
        raise PolicyFileError(f"band needs {exc.args[0]!r}", file=file, key=key) from None
    except (TypeError, ValueError) as exc:
        raise PolicyFileError(str(exc), file=file, key=key) from None


def _known_keys(data: Mapping[str, Any], known: Any, where: str, file: str | None) -> None:
    for key in data:
        if key not in known:
            near = difflib.get_close_matches(key, list(known), n=1)
            hint = f"; did you mean {near[0]!r}?" if near else f"; known keys: {sorted(known)}"
            raise PolicyFileError(f"unknown key{hint}", file=file,
                                 key=f"{where}.{key}" if where else key)


def _read_toml(path: str | Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise PolicyFileError("file not found", file=str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise PolicyFileError(f"not valid TOML: {exc}", file=str(path)) from None
