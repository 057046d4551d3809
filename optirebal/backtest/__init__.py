"""The time axis: a policy stepped through market history (:func:`backtest`), compared
(:func:`compare`) and swept over a grid (:func:`sweep`)."""

from optirebal.backtest.engine import backtest
from optirebal.backtest.result import BacktestResult, compare
from optirebal.backtest.sweep import sweep

__all__ = ["BacktestResult", "backtest", "compare", "sweep"]
