"""Decode: a solution in weights to orders in shares, lots sold and whole contracts, verified.

- :mod:`~optirebal.decode.rounding`: rounding, lot choice, cash repair and the numpy
  verification by the program's terms;
- :mod:`~optirebal.decode.contracts`: whole derivative contracts and their repair;
- :mod:`~optirebal.decode.tax_report`: wash-sale flags and the exact tax of the final trades;
- :mod:`~optirebal.decode.frames`: the result's tidy frames.
"""

from __future__ import annotations

from optirebal.decode.rounding import (
    decode,
    group_flows,
    no_trade_is_as_good,
    verify,
    wash_conflicts,
)
from optirebal.decode.trades import CASH_TOLERANCE, Trades

__all__ = ["CASH_TOLERANCE", "Trades", "decode", "group_flows", "no_trade_is_as_good", "verify",
           "wash_conflicts"]
