"""Data shipped with optirebal: real market histories (offline, with provenance) and a
generated book of households."""

from optirebal.datasets.market import (
    implied_volatility_daily,
    stocks_bonds_monthly,
    us_stocks_daily,
)

__all__ = ["implied_volatility_daily", "stocks_bonds_monthly", "us_stocks_daily"]


def __getattr__(name: str) -> object:
    # the book is imported on first use: `python -m optirebal.datasets.book` must run it fresh
    if name in ("Book", "generate", "load_book"):
        from optirebal.datasets import book

        return getattr(book, name)
    raise AttributeError(f"module 'optirebal.datasets' has no attribute {name!r}")
