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
from optirebal.tax.ledger import ACCOUNT_TYPES, WINDOW_DAYS, LedgerResult, wash_sale_ledger
from optirebal.tax.netting import (
    REGIONS,
    FilingStatus,
    TaxOutcome,
    TaxRates,
    exact_tax,
    linear_tax,
    region_affine,
    region_of,
)

__all__ = [
    "ACCOUNT_TYPES",
    "REGIONS",
    "WINDOW_DAYS",
    "FilingStatus",
    "LedgerResult",
    "TaxOutcome",
    "TaxRates",
    "days_to_long_term",
    "days_to_long_term_array",
    "exact_tax",
    "is_long_term",
    "is_long_term_array",
    "linear_tax",
    "long_term_date",
    "long_term_date_array",
    "region_affine",
    "region_of",
    "wash_sale_ledger",
]
