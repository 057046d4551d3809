"""US tax building blocks: holding period, capital-gain netting and the wash-sale ledger.

See ``docs/tax.md`` for the rules implemented, their citations and the choices made.
"""

from __future__ import annotations

from optirebal.tax.holding import (
    days_to_long_term,
    days_to_long_term_array,
    is_long_term,
    is_long_term_array,
    long_term_date,
    long_term_date_array,
)

__all__ = [
    "days_to_long_term",
    "days_to_long_term_array",
    "is_long_term",
    "is_long_term_array",
    "long_term_date",
    "long_term_date_array",
]
