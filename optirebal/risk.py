"""Risk models: a class covariance, a factor model, or one estimated from a returns history.

Inside the program the covariance always enters through a factor, as
``sum_squares(F' d) + sum_squares(sqrt(delta) * d)``, never as ``quad_form`` with a parameter
matrix (DESIGN section 12). A full covariance is factored once here by its eigendecomposition.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from optirebal.errors import InputError

PSD_TOLERANCE = 1e-10
"""Relative tolerance on negative eigenvalues (times the largest) before a matrix is rejected."""


@dataclass(frozen=True, eq=False)
class RiskModel:
    """Annualized covariance of asset classes as ``F F' + diag(delta)``.

    Attributes
    ----------
    factor : DataFrame
        Classes x factors, the factor loadings already multiplied by the Cholesky factor of the
        factor covariance, so that ``factor @ factor.T`` is the systematic covariance
        (fraction squared per year).
    specific_variance : Series
        Per class, the idiosyncratic variance (fraction squared per year).
    """

    factor: pd.DataFrame
    specific_variance: pd.Series

    @property
    def classes(self) -> list[str]:
        """Class names the model covers."""
        return list(self.factor.index)

    @classmethod
    def from_covariance(cls, covariance: pd.DataFrame) -> RiskModel:
        """Factor a class covariance (annualized, symmetric, positive semidefinite).

        Raises
        ------
        InputError
            If the matrix is not square with matching labels, not finite, not symmetric or not
            positive semidefinite (naming the most negative eigenvalue).
        """
        cov = _square(covariance, "covariance")
        values = cov.to_numpy()
        if not np.allclose(values, values.T, rtol=1e-8, atol=1e-12):
            i, j = np.unravel_index(np.argmax(np.abs(values - values.T)), values.shape)
            raise InputError(f"not symmetric at ({cov.index[i]!r}, {cov.columns[j]!r})",
                             field="covariance", row=cov.index[i])
        values = (values + values.T) / 2
        eigval, eigvec = np.linalg.eigh(values)
        scale = max(float(np.max(np.abs(eigval))), 1e-300)
        if eigval[0] < -PSD_TOLERANCE * scale:
            raise InputError(
                f"not positive semidefinite: smallest eigenvalue {eigval[0]:.3g} "
                f"(largest {eigval[-1]:.3g})", field="covariance")
        factor = eigvec * np.sqrt(np.clip(eigval, 0.0, None))
        columns = pd.Index([f"pc{n}" for n in range(factor.shape[1])], name="factor")
        return cls(pd.DataFrame(factor, index=cov.index, columns=columns),
                   pd.Series(0.0, index=cov.index, name="specific_variance"))

    @classmethod
    def from_factors(cls, loadings: pd.DataFrame, factor_covariance: pd.DataFrame,
                     specific_variance: pd.Series) -> RiskModel:
        """A factor model ``B Omega B' + diag(delta)`` (all annualized).

        Parameters
        ----------
        loadings : DataFrame
            Classes (or securities, for a security-level model) x factors.
        factor_covariance : DataFrame
            Factors x factors, positive semidefinite.
        specific_variance : Series
            Per class, non-negative.
        """
        omega = cls.from_covariance(factor_covariance)
        if list(loadings.columns.map(str)) != list(omega.classes):
            raise InputError("loadings columns must match the factor covariance labels",
                             field="loadings")
        load = _numbers(loadings, "loadings")
        if not np.isfinite(load).all():
            row = loadings.index[int(np.argmax(~np.isfinite(load).all(axis=1)))]
            raise InputError("not finite", field="loadings", row=row)
        given = pd.Series(specific_variance)
        delta = pd.Series(_numbers(given.to_frame("specific_variance"), "specific_variance")[:, 0],
                          index=given.index).reindex(loadings.index)
        bad = delta.isna() | (delta < 0) | ~np.isfinite(delta)
        if bad.any():
            raise InputError("must be finite and >= 0 for every class", field="specific_variance",
                             row=delta.index[bad][0])
        factor = pd.DataFrame(load @ omega.factor.to_numpy(), index=loadings.index.map(str),
                              columns=omega.factor.columns)
        delta.index = factor.index
        return cls(factor, delta.rename("specific_variance"))

    @classmethod
    def from_returns(cls, returns: pd.DataFrame, *, periods_per_year: float) -> RiskModel:
        """The sample covariance of a returns history (fractions per period), annualized."""
        if returns.isna().any().any():
            column = returns.columns[returns.isna().any()][0]
            raise InputError("returns contain NaN", field=str(column))
        if len(returns) < 2:
            raise InputError("need at least two periods of returns", field="returns")
        return cls.from_covariance(returns.cov() * periods_per_year)

    def arrays(self, classes: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Factor rows and specific variances over ``classes`` (zero for unknown ones), kept
        per model (it is immutable) for the next call with the same classes: a backtest asks
        at every look. Read-only arrays."""
        key = tuple(classes)
        cache: dict[tuple[str, ...], tuple[np.ndarray, np.ndarray]] = \
            self.__dict__.setdefault("_arrays", {})
        if key not in cache:
            factor = self.factor.reindex(list(key), fill_value=0.0).to_numpy(dtype=float)
            specific = self.specific_variance.reindex(list(key), fill_value=0.0) \
                .to_numpy(dtype=float)
            factor.flags.writeable = specific.flags.writeable = False
            cache[key] = (factor, specific)
        return cache[key]

    def covariance(self, classes: list[str] | None = None) -> pd.DataFrame:
        """The covariance ``F F' + diag(delta)`` over ``classes`` (zero rows for unknown ones)."""
        index = self.classes if classes is None else classes
        factor = self.factor.reindex(index, fill_value=0.0).to_numpy()
        delta = self.specific_variance.reindex(index, fill_value=0.0).to_numpy()
        return pd.DataFrame(factor @ factor.T + np.diag(delta), index=index, columns=index)

    def tracking_error(self, deviation: pd.Series) -> float:
        """Annualized ex-ante tracking error (fraction) of a weight deviation by class."""
        factor = self.factor.reindex(deviation.index, fill_value=0.0).to_numpy()
        delta = self.specific_variance.reindex(deviation.index, fill_value=0.0).to_numpy()
        d = deviation.to_numpy(dtype=float)
        return float(np.sqrt(np.sum((factor.T @ d) ** 2) + np.sum(delta * d * d)))


def _numbers(frame: pd.DataFrame, field: str) -> np.ndarray:
    """The frame's values as floats, or an :class:`InputError` naming the first cell that is
    not a number (text, a bool)."""
    for column in frame.columns:
        values = frame[column]
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            continue  # the common case: one vectorized check per column
        for row, value in values.items():
            if isinstance(value, bool | np.bool_) or not isinstance(
                    value, int | float | np.integer | np.floating):
                raise InputError(f"must be a number, got {value!r} in column {column!r}",
                                 field=field, row=str(row))
    return frame.to_numpy(dtype=float)


def _square(matrix: pd.DataFrame, field: str) -> pd.DataFrame:
    if not isinstance(matrix, pd.DataFrame):
        raise InputError("must be a DataFrame", field=field)
    cov = matrix.copy()
    cov.index = cov.index.map(str)
    cov.columns = cov.columns.map(str)
    if cov.shape[0] != cov.shape[1] or list(cov.index) != list(cov.columns):
        raise InputError("must be square with the same labels on rows and columns", field=field)
    values = _numbers(cov, field)
    if not np.isfinite(values).all():
        row = cov.index[int(np.argmax(~np.isfinite(values).all(axis=1)))]
        raise InputError("not finite", field=field, row=row)
    return cov.astype(float)
