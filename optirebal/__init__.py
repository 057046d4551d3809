"""optirebal: portfolio rebalancing as one convex program, decoded into verified trades.

>>> import optirebal
>>> portfolio, policy = optirebal.load("models/pension_6040.toml")  # doctest: +SKIP
>>> result = optirebal.solve(portfolio, policy)  # doctest: +SKIP
"""

from __future__ import annotations

from optirebal import presets
from optirebal.apply import apply_trades
from optirebal.backtest import BacktestResult, backtest, compare, sweep
from optirebal.batch import BatchResult, solve_many
from optirebal.errors import (
    DecodeError,
    InfeasibleError,
    InputError,
    OptirebalError,
    PolicyFileError,
    SolverError,
)
from optirebal.market import Market
from optirebal.model_file import load
from optirebal.policy import (
    Band,
    Costs,
    DecodeOptions,
    Overlay,
    Policy,
    Restrictions,
    Schedule,
    SolverOptions,
    Tax,
)
from optirebal.portfolio import Portfolio
from optirebal.rebalance import Rebalancer, solve
from optirebal.result import Diagnostics, Result
from optirebal.risk import RiskModel

__all__ = [
    "BacktestResult", "Band", "BatchResult", "Costs", "DecodeError", "DecodeOptions",
    "Diagnostics", "InfeasibleError", "InputError", "Market", "OptirebalError", "Overlay",
    "Policy", "PolicyFileError", "Portfolio", "Rebalancer", "Restrictions", "Result",
    "RiskModel", "Schedule", "SolverError", "SolverOptions", "Tax", "apply_trades", "backtest",
    "compare", "load", "load_book", "presets", "solve", "solve_many", "sweep",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    # imported on first use, so that `python -m optirebal.datasets.book` runs the module fresh
    if name == "load_book":
        from optirebal.datasets.book import load_book

        return load_book
    raise AttributeError(f"module 'optirebal' has no attribute {name!r}")
