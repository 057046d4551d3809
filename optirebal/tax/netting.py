"""US netting of realized capital gains and losses (IRC 1(h), 1211(b), 1212(b), 1222).

Two numbers describe a year's realized capital result: the net short-term gain ``S`` and the net
long-term gain ``L`` (currency; negative for a net loss), year-to-date realizations and the
capital-loss carryovers from earlier years included (a short-term carryover counts as a short-term
loss, a long-term carryover as a long-term loss, IRC 1212(b)(1)).

In the simplified two-rate form used by optirebal (``rho_s`` on short-term gain, ``rho_l`` on net
capital gain, ``rho_o`` on ordinary income, ``D`` the ordinary-income offset, ``kappa`` the value
of one unit of loss carried forward) the tax is affine on five regions:

.. math::

    T(S, L) = \\begin{cases}
      \\rho_s S + \\rho_l L & S \\ge 0,\\ L \\ge 0 \\quad (R1)\\\\
      \\rho_l (S + L) & S \\le 0,\\ S + L \\ge 0 \\quad (R2)\\\\
      \\rho_s (S + L) & L \\le 0,\\ S + L \\ge 0 \\quad (R3)\\\\
      \\rho_o (S + L) & -D \\le S + L \\le 0 \\quad (R4)\\\\
      -\\rho_o D + \\kappa (S + L + D) & S + L \\le -D \\quad (R5)
    \\end{cases}

Derivation. IRC 1222(5)-(11): a net short-term loss reduces the net long-term gain and what
remains is net capital gain, taxed at the long-term rate by 1(h) (R2); a net long-term loss reduces
the net short-term gain, and what remains is ordinary income (R3). When ``S + L < 0`` there is a
net capital loss; 1211(b) lets the lesser of ``D`` and that loss offset ordinary income (R4), and
1212(b) carries the rest forward (R5), worth ``kappa`` per unit. The function is continuous: every
formula is 0 at ``S + L = 0`` and R4, R5 both give ``-rho_o D`` at ``S + L = -D``.

Carryover character, 1212(b)(1)-(2): the excess of the net short-term loss over the net long-term
gain carries over as short-term, the excess of the net long-term loss over the net short-term gain
as long-term, where the offset allowed under 1211(b) is first treated as a short-term gain. So the
short-term loss absorbs the offset first (Schedule D instructions, Capital Loss Carryover
Worksheet). The 1212(b)(2)(B) limit of the offset to taxable income is not modelled: optirebal
assumes taxable income of at least ``D`` before capital losses.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from optirebal.errors import InputError

__all__ = [
    "REGIONS",
    "FilingStatus",
    "TaxOutcome",
    "TaxRates",
    "exact_tax",
    "linear_tax",
    "region_affine",
    "region_of",
]

FilingStatus = Literal["single", "married_joint", "married_separate", "head_of_household"]

#: IRC 1211(b)(1): 3,000 currency units, 1,500 for a married individual filing separately.
_OFFSET_BY_STATUS: dict[str, float] = {
    "single": 3000.0,
    "married_joint": 3000.0,
    "head_of_household": 3000.0,
    "married_separate": 1500.0,
}

#: Each region as linear inequalities ``a_s * S + a_l * L + a_d * D >= 0`` (rows of
#: ``(a_s, a_l, a_d)``), for adding a region's constraints to the program.
REGIONS: dict[int, tuple[tuple[float, float, float], ...]] = {
    1: ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0)),
    2: ((-1.0, 0.0, 0.0), (1.0, 1.0, 0.0)),
    3: ((0.0, -1.0, 0.0), (1.0, 1.0, 0.0)),
    4: ((1.0, 1.0, 1.0), (-1.0, -1.0, 0.0)),
    5: ((-1.0, -1.0, -1.0),),
}


@dataclass(frozen=True)
class TaxRates:
    """Rates of the two-rate US model.

    Parameters
    ----------
    short
        Rate on net short-term gain (fraction, e.g. 0.37).
    long
        Rate on net capital gain, IRC 1(h) (fraction).
    ordinary
        Rate on ordinary income, which the capital-loss offset reduces (fraction).
    offset
        Ordinary-income offset ``D`` for a net capital loss, IRC 1211(b) (currency).
    loss_carry_value
        ``kappa``: tax value today of one unit of loss carried forward (fraction, often the
        discounted expected rate it will offset; 0 values carryovers at nothing).
    """

    short: float
    long: float
    ordinary: float
    offset: float = 3000.0
    loss_carry_value: float = 0.0

    def __post_init__(self) -> None:
        for name in ("short", "long", "ordinary", "loss_carry_value"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0.0 <= float(value) <= 1.0):
                raise InputError(
                    f"a rate is a fraction in [0, 1] (0.37 for 37%), got {value!r}", field=name
                )
        if not (isinstance(self.offset, (int, float)) and 0.0 <= float(self.offset) < np.inf):
            raise InputError(
                f"the offset is a non-negative amount of currency, got {self.offset!r}",
                field="offset",
            )

    @classmethod
    def for_filing_status(
        cls,
        status: FilingStatus,
        *,
        short: float,
        long: float,
        ordinary: float,
        loss_carry_value: float = 0.0,
    ) -> TaxRates:
        """Rates with the offset of a filing status (3,000; 1,500 married filing separately).

        Examples
        --------
        >>> TaxRates.for_filing_status("married_separate", short=0.37, long=0.2, ordinary=0.37)
        TaxRates(short=0.37, long=0.2, ordinary=0.37, offset=1500.0, loss_carry_value=0.0)
        """
        if status not in _OFFSET_BY_STATUS:
            raise InputError(
                f"unknown filing status {status!r}; use one of {sorted(_OFFSET_BY_STATUS)}",
                field="status",
            )
        return cls(short, long, ordinary, _OFFSET_BY_STATUS[status], loss_carry_value)

    def replace(self, **changes: Any) -> TaxRates:
        """A copy with some fields changed (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class TaxOutcome:
    """Result of netting: floats for scalar input, arrays of the broadcast shape otherwise.

    Attributes
    ----------
    tax
        Tax due (currency; negative is a saving against other income or a valued carryover).
    region
        Region 1 to 5 (int), see the module docstring; on a boundary the lowest number.
    taxed_short
        Amount taxed at the short-term rate after cross-netting (currency, >= 0).
    taxed_long
        Net capital gain taxed at the long-term rate (currency, >= 0).
    ordinary_offset_used
        Net capital loss deducted from ordinary income, at most ``D`` (currency, >= 0).
    carryover_short, carryover_long
        Loss carried to next year with its character, IRC 1212(b) (currency, >= 0).
    net_short, net_long
        The inputs ``S`` and ``L`` (currency).
    """

    tax: Any
    region: Any
    taxed_short: Any
    taxed_long: Any
    ordinary_offset_used: Any
    carryover_short: Any
    carryover_long: Any
    net_short: Any
    net_long: Any


def _as_nets(S: Any, L: Any) -> tuple[np.ndarray, np.ndarray]:
    s, l_ = np.broadcast_arrays(np.asarray(S, dtype=float), np.asarray(L, dtype=float))
    for name, arr in (("S", s), ("L", l_)):
        if not np.isfinite(arr).all():
            raise InputError("net gains must be finite amounts of currency", field=name)
    return s, l_


def region_of(S: Any, L: Any, D: float) -> Any:
    """Region (1 to 5) of the netting function holding ``(S, L)``.

    Parameters
    ----------
    S, L
        Net short-term and long-term gain (currency), scalars or arrays.
    D
        Ordinary-income offset (currency).

    Returns
    -------
    int or numpy.ndarray
        On a shared boundary the lowest region number (the formulas agree there).
    """
    s, l_ = _as_nets(S, L)
    total = s + l_
    region = np.select(
        [(s >= 0) & (l_ >= 0), (s < 0) & (total >= 0), total >= 0, total >= -D],
        [1, 2, 3, 4],
        default=5,
    )
    return region.item() if region.ndim == 0 else region


def region_affine(region: int, rates: TaxRates) -> tuple[float, float, float]:
    """Coefficients ``(c_s, c_l, c_0)`` with ``T = c_s S + c_l L + c_0`` on ``region``.

    Examples
    --------
    >>> region_affine(5, TaxRates(0.5, 0.3, 0.5, 3000.0, 0.25))
    (0.25, 0.25, -750.0)
    """
    D, kappa = rates.offset, rates.loss_carry_value
    table = {
        1: (rates.short, rates.long, 0.0),
        2: (rates.long, rates.long, 0.0),
        3: (rates.short, rates.short, 0.0),
        4: (rates.ordinary, rates.ordinary, 0.0),
        5: (kappa, kappa, (kappa - rates.ordinary) * D),
    }
    if region not in table:
        raise InputError(f"regions are numbered 1 to 5, got {region!r}", field="region")
    return table[region]


def exact_tax(S: Any, L: Any, rates: TaxRates) -> TaxOutcome:
    """Tax of a year's net short-term ``S`` and long-term ``L`` under exact US netting.

    Parameters
    ----------
    S
        Net short-term capital gain (currency; negative for a loss), carryover included.
    L
        Net long-term capital gain (currency; negative for a loss), carryover included.
    rates
        The rates, offset and carryover value.

    Returns
    -------
    TaxOutcome
        Tax, region, amounts taxed at each rate, offset used and carryovers by character.

    Examples
    --------
    >>> rates = TaxRates(short=0.5, long=0.3, ordinary=0.5)
    >>> round(exact_tax(1159.0, 11476.0, rates).tax, 2)
    4022.3
    >>> round(exact_tax(-1227.0, 1690.0, rates).tax, 2)
    138.9
    """
    s, l_ = _as_nets(S, L)
    D = float(rates.offset)
    total = s + l_
    gain = np.maximum(total, 0.0)
    # 1222: a net loss of one term reduces the net gain of the other; what is left keeps its term.
    taxed_short = np.minimum(np.maximum(s, 0.0), gain)
    taxed_long = gain - taxed_short
    offset_used = np.minimum(np.maximum(-total, 0.0), D)  # 1211(b)
    # 1212(b)(2)(A): the offset counts as a short-term gain when splitting the carryover.
    s_adj = s + offset_used
    carry_short = np.maximum(-s_adj - np.maximum(l_, 0.0), 0.0)
    carry_long = np.maximum(-l_ - np.maximum(s_adj, 0.0), 0.0)
    tax = (
        rates.short * taxed_short
        + rates.long * taxed_long
        - rates.ordinary * offset_used
        - rates.loss_carry_value * (carry_short + carry_long)
    )
    region = np.asarray(region_of(s, l_, D))

    def out(x: np.ndarray) -> Any:
        return x.item() if x.ndim == 0 else x

    return TaxOutcome(
        tax=out(tax),
        region=out(region),
        taxed_short=out(taxed_short),
        taxed_long=out(taxed_long),
        ordinary_offset_used=out(offset_used),
        carryover_short=out(carry_short),
        carryover_long=out(carry_long),
        net_short=out(s),
        net_long=out(l_),
    )


def linear_tax(gains: Any, long_term: Any, rates: TaxRates) -> np.ndarray:
    """Per-lot linear tax: ``rate(term) * gain``, each lot on its own (no netting).

    This is the ``linear`` tax model: exact only while both nets stay non-negative (region R1).
    With losses it overstates their value; for example, with ``S = -1227`` and ``L = +1690`` at
    50% / 30% it gives -106.50 where the netted tax is 138.90.

    Parameters
    ----------
    gains
        Realized gain of each lot sale (currency, negative for a loss), shape (n,).
    long_term
        Whether each sale is long-term (bool), broadcastable to ``gains``.
    rates
        Uses ``rates.short`` and ``rates.long``.

    Returns
    -------
    numpy.ndarray
        Tax of each lot sale (currency), shape of the broadcast inputs.

    Examples
    --------
    >>> linear_tax([-1227.0, 1690.0], [False, True], TaxRates(0.5, 0.3, 0.5)).sum().round(2)
    np.float64(-106.5)
    """
    g = np.asarray(gains, dtype=float)
    if not np.isfinite(g).all():
        raise InputError("gains must be finite amounts of currency", field="gains")
    lt = np.asarray(long_term)
    if lt.dtype != np.bool_:
        raise InputError("long_term must be booleans (True for long-term)", field="long_term")
    return np.where(lt, rates.long, rates.short) * g
