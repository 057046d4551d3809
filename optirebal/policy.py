"""`Policy`: targets, bands, mode, costs, tax, restrictions and solver choices (frozen dataclasses).

A policy is plain configuration: hashable, printable, its ``repr`` rebuilds it, and variants come
from :func:`dataclasses.replace`. It holds no solver state. It loads from and dumps to TOML; an
unknown or misspelled key is an error naming the key (with the nearest known one).
"""

from __future__ import annotations

__all__ = [
    "BAND_KINDS",
    "FILING_STATUSES",
    "HOLDING_PERIODS",
    "IMPACT_MODELS",
    "IMPLEMENTATIONS",
    "INCOME",
    "LOOKS",
    "LOT_RELIEF",
    "MARGIN_SHORTFALL",
    "MODES",
    "SOLVERS",
    "TARGET_SUM_TOLERANCE",
    "TAX_MODELS",
    "TERM_METHODS",
    "WASH_SALE_LOTS",
    "Band",
    "Costs",
    "DecodeOptions",
    "Momentum",
    "Overlay",
    "Policy",
    "Restrictions",
    "Schedule",
    "SolverOptions",
    "Tax",
    "Velocity",
    "read_text",
]

import dataclasses
import difflib
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from optirebal.errors import InputError, PolicyFileError
from optirebal.policy_parts import (
    BAND_KINDS,
    FILING_STATUSES,
    HOLDING_PERIODS,
    IMPACT_MODELS,
    IMPLEMENTATIONS,
    INCOME,
    LOOKS,
    LOT_RELIEF,
    MARGIN_SHORTFALL,
    MODES,
    SOLVERS,
    TARGET_SUM_TOLERANCE,
    TAX_MODELS,
    WASH_SALE_LOTS,
    Band,
    Costs,
    DecodeOptions,
    Momentum,
    Overlay,
    Restrictions,
    Schedule,
    SolverOptions,
    Tax,
    Velocity,
    _FrozenDict,
    _set,
)
from optirebal.schema import (
    boolean,
    choice,
    instance,
    number,
    optional_number,
    table,
    text,
)

TERM_METHODS = ("applies", "build", "costs", "residual", "objective")
"""What an extra term must have (the protocol of :class:`optirebal.program.terms.base.Term`)."""


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
        ``cash_only`` (only deploy or raise each account's cash: an account short of its reserve
        sells exactly what it needs, one above it only buys). The last three make bands soft.
    risk_aversion
        ``gamma`` of the tracking-error cost ``(1 + F) (gamma / 2) H (w - t)' S (w - t)``: the
        post-trade portfolio's value (pre-trade NAV plus flows ``F``) times the variance of its
        weights after costs (docs/formulation.md).
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
    costs: Costs = Costs()  # noqa: RUF009 (frozen, immutable)
    tax: Tax = Tax()  # noqa: RUF009 (frozen, immutable)
    restrictions: Restrictions = Restrictions()  # noqa: RUF009 (frozen, immutable)
    decode: DecodeOptions = DecodeOptions()  # noqa: RUF009 (frozen, immutable)
    solver: SolverOptions = SolverOptions()  # noqa: RUF009 (frozen, immutable)
    overlay: Overlay = field(default_factory=lambda: Overlay())
    schedule: Schedule = Schedule()  # noqa: RUF009 (frozen, immutable)
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
