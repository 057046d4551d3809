"""Data shipped with optirebal: real market histories (offline, with provenance) and a
generated book of households."""

from optirebal.datasets.market import (
    implied_volatility_daily,
    stocks_bonds_monthly,
    us_stocks_daily,
)

__all__ = ["implied_volatility_daily", "stocks_bonds_monthly", "us_stocks_daily"]
