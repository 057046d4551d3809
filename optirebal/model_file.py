"""Model files: a TOML file naming the portfolio's CSV files and holding the policy.

.. code-block:: toml

    [model]
    name = "60/40 pension fund"
    as_of = 2026-11-20

    [data]                      # paths relative to the TOML file
    securities = "pension_6040/securities.csv"
    accounts = "pension_6040/accounts.csv"
    lots = "pension_6040/lots.csv"
    covariance = "pension_6040/covariance.csv"   # or the three factor_* keys
    # exposures = "..."  factor_loadings = "..."  factor_covariance = "..."
    # specific_variance = "..."
    # derivatives = "..."   futures, swaps, options (optirebal.overlay), index "instrument"
    # history = "..."  scheduled = "..."   (wash-sale inputs, see docs/tax.md)

    [policy]
    mode = "full"
    [policy.targets]
    equity = 0.6
    bonds = 0.4

Every key is checked: a misspelled one is a :class:`PolicyFileError` naming the file and the key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from optirebal.errors import InputError, PolicyFileError
from optirebal.policy import Policy, _known_keys, _read_toml
from optirebal.portfolio import Portfolio
from optirebal.risk import RiskModel

_TOP_KEYS = ("model", "data", "policy")
_MODEL_KEYS = ("name", "description", "as_of", "base_currency")
_DATA_KEYS = ("securities", "accounts", "lots", "covariance", "exposures", "factor_loadings",
              "factor_covariance", "specific_variance", "derivatives", "history", "scheduled")


def load(path: str | Path) -> tuple[Portfolio, Policy]:
    """Read a model file and return its portfolio and policy.

    Raises
    ------
    PolicyFileError
        Unknown keys, missing keys or files, bad TOML (naming the file and key).
    InputError
        Bad data in the CSV files (naming the field and row).
    """
    path = Path(path)
    file = str(path)
    doc = _read_toml(path)
    _known_keys(doc, _TOP_KEYS, "", file)
    for key in _TOP_KEYS:
        if key not in doc:
            raise PolicyFileError("missing table", file=file, key=key)
    model, data = doc["model"], doc["data"]
    _known_keys(model, _MODEL_KEYS, "model", file)
    _known_keys(data, _DATA_KEYS, "data", file)
    if "as_of" not in model:
        raise PolicyFileError("missing date", file=file, key="model.as_of")

    def frame(key: str, index: str | None = None) -> pd.DataFrame:
        if key not in data:
            raise PolicyFileError("missing file name", file=file, key=f"data.{key}")
        target = path.parent / data[key]
        if not target.is_file():
            raise PolicyFileError(f"file not found: {target}", file=file, key=f"data.{key}")
        table = pd.read_csv(target, dtype={index: str} if index else None)
        return table.set_index(table.columns[0]) if index is None else table

    if "covariance" in data:
        cov = frame("covariance")
        risk = RiskModel.from_covariance(cov)
    elif "factor_loadings" in data:
        loadings = frame("factor_loadings")
        omega = frame("factor_covariance")
        specific = frame("specific_variance").iloc[:, 0]
        risk = RiskModel.from_factors(loadings, omega, specific)
    else:
        raise PolicyFileError("give covariance or factor_loadings", file=file, key="data")
    try:
        portfolio = Portfolio.from_frames(
            frame("securities", "security"), frame("accounts", "account"), _lots(frame),
            as_of=model["as_of"], risk=risk,
            exposures=frame("exposures", "security") if "exposures" in data else None,
            derivatives=frame("derivatives", "instrument") if "derivatives" in data else None,
            # wash-sale inputs: past trades of every account, scheduled buys (docs/tax.md)
            history=_trades(frame, "history") if "history" in data else None,
            scheduled=_trades(frame, "scheduled") if "scheduled" in data else None)
    except InputError as exc:
        located = InputError(f"{file}: {exc}")
        located.field, located.row = exc.field, exc.row
        raise located from None
    policy = Policy.from_dict(doc["policy"], file=file)
    return portfolio, policy


def _trades(frame: Any, key: str) -> pd.DataFrame:
    """A history or scheduled-buys table: account, security and lot ids as text, rows kept."""
    table = frame(key, "account")
    for column in ("account", "security", "lot_id"):
        if column in table.columns:
            table[column] = [x if pd.isna(x) else str(x) for x in table[column]]
    return table


def _lots(frame: Any) -> pd.DataFrame:
    lots = frame("lots", "lot")
    for column in ("lot", "account", "security"):
        if column in lots.columns:
            lots[column] = lots[column].astype(str)
    return lots
