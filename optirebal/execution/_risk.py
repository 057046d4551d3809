"""The covariance of an execution schedule as a daily factor and specific volatility (private).

The covariance enters the program as the squares of the factor exposures ``F' y``, never as a
dense quadratic form (DESIGN section 12); a full covariance is factored by
:meth:`optirebal.risk.RiskModel.from_covariance`, only over the ordered securities.
"""

from __future__ import annotations

import math
from collections.abc import Hashable

import numpy as np
import pandas as pd

from optirebal.errors import InputError
from optirebal.risk import RiskModel

VOLATILITY_MISMATCH = 4.0
"""Largest ratio between the covariance's volatility and the market's ``daily_volatility`` before
the covariance is taken to be in the wrong units (a daily one is 15.9 times too small)."""


def read_risk(
    covariance: pd.DataFrame | RiskModel | None,
    securities: list[Hashable],
    volatility: np.ndarray,
    days_per_year: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Daily return factor and specific volatility of the active securities.

    Without a covariance the securities are independent with the market's daily volatility. A
    covariance (DataFrame) or :class:`~optirebal.risk.RiskModel` is annualized, like every risk
    model in optirebal, and divided by ``days_per_year``.
    """
    if covariance is None:
        return np.zeros((len(securities), 0)), volatility.copy()
    labels = [str(s) for s in securities]
    if isinstance(covariance, pd.DataFrame):
        frame = covariance.copy()
        frame.index = frame.index.map(str)
        frame.columns = frame.columns.map(str)
        for label, security in zip(labels, securities, strict=True):
            if label not in frame.index or label not in frame.columns:
                raise InputError(
                    "security has no row or column in the covariance",
                    field="covariance",
                    row=security,
                )
        # Factor only the block of the ordered securities: the rest never enters the program.
        model = RiskModel.from_covariance(frame.loc[labels, labels])
    elif hasattr(covariance, "factor") and hasattr(covariance, "specific_variance"):
        model = covariance
    else:
        raise InputError(
            f"must be a covariance DataFrame or a RiskModel, got {type(covariance).__name__}",
            field="covariance",
        )
    factor_frame = model.factor.copy()
    factor_frame.index = factor_frame.index.map(str)
    specific_series = model.specific_variance.copy()
    specific_series.index = specific_series.index.map(str)
    for label, security in zip(labels, securities, strict=True):
        if label not in factor_frame.index or label not in specific_series.index:
            raise InputError("security is not in the risk model", field="covariance", row=security)
    factor = factor_frame.loc[labels].to_numpy(dtype=float) / math.sqrt(days_per_year)
    specific = specific_series.loc[labels].to_numpy(dtype=float) / days_per_year
    bad = ~np.isfinite(factor).all(axis=1) | ~np.isfinite(specific) | (specific < 0)
    if bad.any():
        raise InputError(
            "risk model factor and specific variance must be finite, variance >= 0",
            field="covariance",
            row=securities[int(np.argmax(bad))],
        )
    implied = np.sqrt(np.sum(factor**2, axis=1) + specific)
    ratio = implied / volatility
    off = np.flatnonzero((ratio > VOLATILITY_MISMATCH) | (ratio < 1.0 / VOLATILITY_MISMATCH))
    if off.size:
        i = int(off[0])
        raise InputError(
            f"the covariance gives a daily volatility of {implied[i]:.4g} against the market's "
            f"daily_volatility {volatility[i]:.4g}; pass the covariance annualized (a daily one "
            f"times trading_days_per_year={days_per_year:g})",
            field="covariance",
            row=securities[i],
        )
    return factor, np.sqrt(specific)
