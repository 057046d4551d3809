r"""Market-impact models for execution scheduling, as frozen dataclasses.

Every model charges a child order of :math:`n` shares traded in an interval whose expected market
volume is :math:`V_k` shares a *temporary* impact, a price concession on that order only,

.. math::

    h = \eta\,\sigma P \left(\frac{|n|}{V_k}\right)^{\beta}
    \quad\text{(currency per share)},\qquad
    \text{cost}_k = \eta\,\sigma P\,\frac{|n|^{1+\beta}}{V_k^{\beta}},

with :math:`\sigma` the daily volatility (fraction of price), :math:`P` the price and
:math:`|n| / V_k` the participation rate. With the flat volume profile :math:`V_k = V \tau`
(:math:`V` the daily volume, :math:`\tau` the interval in days) this is the rate form
:math:`h(v) = \eta \sigma P |v / V|^\beta` of Almgren, Thum, Hauptmann and Li (2005) with
:math:`v = n / \tau` in shares per day. The three models differ in :math:`\beta` and in the
*permanent* impact, a price shift of :math:`g` currency per share traded that stays:

============================  ======  ======================================================
model                         beta    permanent impact
============================  ======  ======================================================
:class:`LinearImpact`         1       :math:`g = \gamma \sigma P / V`, charged as in the
                                      discrete Almgren-Chriss model (see below)
:class:`PowerImpact`          1/2     :math:`g = \gamma \sigma P / V` (default
                                      :math:`\gamma = 0`), charged :math:`g X^2 / 2`
:class:`AlmgrenThumImpact`    3/5     :math:`g = \gamma \sigma P (\Theta / V)^{1/4} / V`,
                                      charged :math:`g X^2 / 2`
============================  ======  ======================================================

Permanent impact is the same for every schedule of the same order except in the discrete linear
model, where a child order does not pay its own permanent impact: the cost of trading
:math:`n_1, \dots, n_N` (:math:`\sum n_k = X`) is then

.. math::

    E = \tfrac12 g X^2 - \tfrac12 g \sum_k n_k^2 + \sum_k \text{cost}_k ,

exactly the expected shortfall of Almgren and Chriss (2000, eq. 3 without the spread term),
whose quadratic part has the coefficient :math:`\tilde\eta / \tau` with
:math:`\tilde\eta = \eta_{AC} - \gamma_{AC} \tau / 2`, :math:`\eta_{AC} = \eta \sigma P / V` and
:math:`\gamma_{AC} = g`. The power models charge permanent impact as its continuous-time value
:math:`g X^2 / 2` (the :math:`I/2` of Almgren et al. 2005), which keeps them convex.

References
----------
R. Almgren and N. Chriss, "Optimal execution of portfolio transactions", Journal of Risk 3 (2000).
R. Almgren, C. Thum, E. Hauptmann and H. Li, "Direct estimation of equity market impact",
Risk 18 (July 2005): :math:`I = \gamma \sigma (X/V) (\Theta/V)^{1/4}`,
:math:`J - I/2 = \eta \sigma |X / (V T)|^{3/5}`, with :math:`\eta = 0.142`, :math:`\gamma = 0.314`,
:math:`\beta = 3/5` and the permanent exponent :math:`\alpha = 1`.
S. Boyd et al., "Multi-Period Trading via Convex Optimization" (2017): the 3/2-power cost that
DESIGN section 4 uses, :math:`k \sigma |T|^{3/2} / \mathrm{ADV}^{1/2}` for a trade of value
:math:`T`, which :class:`PowerImpact` reproduces for an order traded evenly over one day.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from optirebal.errors import InputError
from optirebal.program.terms.impact import impact_cost


def power_cost(coefficient: np.ndarray, traded: np.ndarray, power: float) -> np.ndarray:
    """``coefficient * |traded| ** power``, element by element: the impact family that the
    rebalancing program shares (:func:`optirebal.program.terms.impact.impact_cost`)."""
    return impact_cost(coefficient, traded, float(power))


@dataclass(frozen=True, eq=False)
class ImpactTerms:
    """Per-security impact coefficients of one model on one set of market data (internal).

    Attributes
    ----------
    exponent : float
        :math:`\\beta`; the temporary cost of a child order grows as ``|n| ** (1 + exponent)``.
    temporary : ndarray, shape (securities, intervals)
        :math:`\\eta \\sigma P / V_k^\\beta`, currency per share to the power ``1 + exponent``.
    permanent : ndarray, shape (securities,)
        :math:`g`, currency per share per share traded.
    discrete_permanent : bool
        True when a child order does not pay its own permanent impact (discrete
        Almgren-Chriss accounting); False when permanent impact is the constant ``g X^2 / 2``.
    """

    exponent: float
    temporary: np.ndarray
    permanent: np.ndarray
    discrete_permanent: bool

    def cost(self, shares: np.ndarray, orders: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Expected temporary and permanent cost (currency) of child orders, per security.

        Parameters
        ----------
        shares : ndarray, shape (securities, intervals)
            Child orders, signed shares.
        orders : ndarray, shape (securities,)
            Parent orders, signed shares (the row sums of ``shares``).
        """
        size = np.abs(shares)
        temporary = np.sum(power_cost(self.temporary, size, 1.0 + self.exponent), axis=1)
        permanent = 0.5 * self.permanent * orders**2
        if self.discrete_permanent:
            permanent = permanent - 0.5 * self.permanent * np.sum(size**2, axis=1)
        return temporary, permanent


def _positive(value: float, field: str, *, allow_zero: bool = False) -> float:
    """Validate a model coefficient as a finite number, > 0 (or >= 0 when ``allow_zero``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise InputError(f"must be a number, got {value!r}", field=field)
    number = float(value)
    if not math.isfinite(number) or number < 0 or (number == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise InputError(f"must be finite and {bound}, got {value!r}", field=field)
    return number


@dataclass(frozen=True)
class LinearImpact:
    """Linear temporary and permanent impact of Almgren and Chriss (2000).

    Temporary impact :math:`h = \\eta \\sigma P\\, |n| / V_k` per share, permanent
    :math:`g = \\gamma \\sigma P / V` per share traded, both scale-free: ``eta`` is the price
    concession, in daily volatilities, of trading at 100% of the interval's volume.

    To use the absolute coefficients of the paper (currency per share per share-per-day), divide by
    :math:`\\sigma P / V` of the security: ``eta = eta_AC * V / (sigma * P)``.

    Parameters
    ----------
    eta : float
        Temporary impact coefficient, daily volatilities per unit participation rate; > 0.
    gamma_permanent : float
        Permanent impact coefficient, daily volatilities per daily volume traded; >= 0. The
        discrete model is convex only when ``eta > gamma_permanent * profile_k / 2`` for every
        interval (``profile_k`` the interval's share of daily volume; ``tau`` with a flat profile):
        :func:`~optirebal.execution.schedule` checks it.

    Examples
    --------
    >>> LinearImpact(eta=0.5, gamma_permanent=0.1)
    LinearImpact(eta=0.5, gamma_permanent=0.1)
    """

    eta: float
    gamma_permanent: float = 0.0

    def __post_init__(self) -> None:
        _positive(self.eta, "impact.eta")
        _positive(self.gamma_permanent, "impact.gamma_permanent", allow_zero=True)

    @property
    def exponent(self) -> float:
        """:math:`\\beta = 1`: the temporary cost of a child order is quadratic in its size."""
        return 1.0

    def terms(
        self,
        price: np.ndarray,
        volatility: np.ndarray,
        daily_volume: np.ndarray,
        interval_volume: np.ndarray,
        shares_outstanding: np.ndarray | None = None,
    ) -> ImpactTerms:
        """Per-security coefficients (see :class:`ImpactTerms`); arrays as in :func:`_terms`.

        Raises
        ------
        InputError
            If the discrete cost is not convex: an interval holding a share ``profile_k`` of daily
            volume needs ``eta > gamma_permanent * profile_k / 2`` (Almgren and Chriss's
            :math:`\\tilde\\eta > 0`).
        """
        share = float(np.max(interval_volume / daily_volume[:, None], initial=0.0))
        if not self.eta > 0.5 * self.gamma_permanent * share:
            raise InputError(
                f"eta={self.eta:g} must exceed gamma_permanent * interval share of daily volume / 2"
                f" = {0.5 * self.gamma_permanent * share:.4g}, or the discrete Almgren-Chriss cost"
                " is not convex (eta_tilde <= 0); use shorter intervals or a smaller"
                " gamma_permanent",
                field="impact.eta",
            )
        return _terms(
            self.eta,
            1.0,
            self.gamma_permanent,
            price,
            volatility,
            daily_volume,
            interval_volume,
            turnover=None,
            discrete=True,
        )


@dataclass(frozen=True)
class PowerImpact:
    """Power-law temporary impact; the default exponent 1/2 is the 3/2-power cost of DESIGN 4.

    Temporary impact :math:`h = \\eta \\sigma P (|n| / V_k)^\\beta` per share, so the cost of a
    child order grows as :math:`|n|^{1+\\beta}`. With ``eta = 1`` and ``exponent = 0.5``, an order
    of value :math:`T` traded evenly over one day costs :math:`\\sigma T^{3/2} / ADV^{1/2}`
    (``ADV`` the daily traded value), the impact term of DESIGN section 4 (Boyd et al. 2017).
    Permanent impact :math:`g = \\gamma \\sigma P / V`, charged :math:`g X^2 / 2` whatever the
    schedule.

    Parameters
    ----------
    eta : float
        Temporary impact coefficient, daily volatilities at 100% participation; > 0.
    exponent : float
        :math:`\\beta > 0`; 0.5 gives the square-root law (3/2-power cost).
    gamma_permanent : float
        Permanent impact coefficient, daily volatilities per daily volume traded; >= 0.

    Examples
    --------
    >>> PowerImpact()
    PowerImpact(eta=1.0, exponent=0.5, gamma_permanent=0.0)
    """

    eta: float = 1.0
    exponent: float = 0.5
    gamma_permanent: float = 0.0

    def __post_init__(self) -> None:
        _positive(self.eta, "impact.eta")
        _positive(self.exponent, "impact.exponent")
        _positive(self.gamma_permanent, "impact.gamma_permanent", allow_zero=True)

    def terms(
        self,
        price: np.ndarray,
        volatility: np.ndarray,
        daily_volume: np.ndarray,
        interval_volume: np.ndarray,
        shares_outstanding: np.ndarray | None = None,
    ) -> ImpactTerms:
        """Per-security coefficients (see :class:`ImpactTerms`); arrays as in :func:`_terms`."""
        return _terms(
            self.eta,
            self.exponent,
            self.gamma_permanent,
            price,
            volatility,
            daily_volume,
            interval_volume,
            turnover=None,
            discrete=False,
        )


@dataclass(frozen=True)
class AlmgrenThumImpact:
    """The 3/5-power temporary impact of Almgren, Thum, Hauptmann and Li (2005), as published.

    Temporary :math:`h = \\eta \\sigma P (|n| / V_k)^{3/5}` per share; permanent
    :math:`I = \\gamma \\sigma (X / V) (\\Theta / V)^{1/4}` (fraction of price) after trading
    :math:`X` shares, with :math:`\\Theta` the shares outstanding (market column
    ``shares_outstanding``, needed when ``gamma_permanent > 0``), charged :math:`I P X / 2`.
    The defaults are the paper's fit on Citigroup US equity orders (2001-2003).

    Parameters
    ----------
    eta : float
        Temporary impact coefficient (paper: 0.142).
    exponent : float
        :math:`\\beta` (paper: 3/5).
    gamma_permanent : float
        Permanent impact coefficient (paper: 0.314); 0 leaves permanent impact out of the
        expected cost (it never changes the schedule) and ``shares_outstanding`` unneeded.
    turnover_exponent : float
        :math:`\\delta`, the exponent of the inverse turnover :math:`\\Theta / V` (paper: 1/4).

    Examples
    --------
    >>> AlmgrenThumImpact()
    AlmgrenThumImpact(eta=0.142, exponent=0.6, gamma_permanent=0.314, turnover_exponent=0.25)
    """

    eta: float = 0.142
    exponent: float = 0.6
    gamma_permanent: float = 0.314
    turnover_exponent: float = 0.25

    def __post_init__(self) -> None:
        _positive(self.eta, "impact.eta")
        _positive(self.exponent, "impact.exponent")
        _positive(self.gamma_permanent, "impact.gamma_permanent", allow_zero=True)
        _positive(self.turnover_exponent, "impact.turnover_exponent", allow_zero=True)

    @property
    def needs_shares_outstanding(self) -> bool:
        """True when the permanent term needs the market column ``shares_outstanding``."""
        return self.gamma_permanent > 0

    def terms(
        self,
        price: np.ndarray,
        volatility: np.ndarray,
        daily_volume: np.ndarray,
        interval_volume: np.ndarray,
        shares_outstanding: np.ndarray | None = None,
    ) -> ImpactTerms:
        """Per-security coefficients (see :class:`ImpactTerms`); arrays as in :func:`_terms`."""
        turnover = None
        if self.needs_shares_outstanding:
            if shares_outstanding is None:
                raise InputError(
                    "AlmgrenThumImpact needs the market column 'shares_outstanding' for its "
                    "permanent term; add it, or pass AlmgrenThumImpact(gamma_permanent=0.0) to "
                    "leave permanent impact (which never changes the schedule) out of the cost",
                    field="shares_outstanding",
                )
            turnover = (shares_outstanding / daily_volume) ** self.turnover_exponent
        return _terms(
            self.eta,
            self.exponent,
            self.gamma_permanent,
            price,
            volatility,
            daily_volume,
            interval_volume,
            turnover=turnover,
            discrete=False,
        )


ImpactModel = LinearImpact | PowerImpact | AlmgrenThumImpact
"""Any of the impact models :func:`~optirebal.execution.schedule` accepts."""


def _terms(
    eta: float,
    exponent: float,
    gamma: float,
    price: np.ndarray,
    volatility: np.ndarray,
    daily_volume: np.ndarray,
    interval_volume: np.ndarray,
    *,
    turnover: np.ndarray | None,
    discrete: bool,
) -> ImpactTerms:
    """Coefficients from market data.

    Parameters
    ----------
    price, volatility, daily_volume : ndarray, shape (securities,)
        Currency per share, fraction of price per day, shares per day.
    interval_volume : ndarray, shape (securities, intervals)
        Expected market volume in each interval, shares.
    turnover : ndarray, shape (securities,), optional
        Factor multiplying the permanent coefficient (Almgren et al.'s ``(Theta / V) ** delta``).
    """
    sigma = volatility * price  # currency per share per day
    temporary = eta * sigma[:, None] / interval_volume**exponent
    permanent = gamma * sigma / daily_volume
    if turnover is not None:
        permanent = permanent * turnover
    return ImpactTerms(exponent, temporary, permanent, discrete)
