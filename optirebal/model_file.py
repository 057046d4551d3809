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

import io
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from optirebal.errors import InputError, PolicyFileError
from optirebal.policy import Policy, _known_keys, _read_toml, read_text
from optirebal.portfolio import Portfolio, check_cost_inputs
from optirebal.risk import RiskModel
from optirebal.schema import date, numeric_matrix

_TOP_KEYS = ("model", "data", "policy")
_MODEL_KEYS = ("name", "description", "as_of", "base_currency")
_DATA_KEYS = ("securities", "accounts", "lots", "covariance", "exposures", "factor_loadings",
              "factor_covariance", "specific_variance", "derivatives", "history", "scheduled")
_TEXT_COLUMNS: dict[str, tuple[str, ...]] = {
    "securities": ("security", "asset_class", "group", "name", "description"),
    "accounts": ("account", "type", "name", "description"),
    "lots": ("lot", "account", "security", "description"),
    "exposures": ("security",),
    "derivatives": ("instrument", "kind", "asset_class", "name", "description"),
    "history": ("account", "security", "lot_id", "description"),
    "scheduled": ("account", "security", "description"),
}
"""Id and text columns read as text (so ``007`` stays ``007`` and an empty id stays empty)."""


def load(path: str | Path) -> tuple[Portfolio, Policy]:
    """Read a model file and return its portfolio and policy.

    Raises
    ------
    PolicyFileError
        Unknown keys, missing keys or files, bad TOML, a file that is a directory, empty or not
        UTF-8, a CSV that is not a table (naming the model file and the key).
    InputError
        Bad data in the CSV files (naming the field and row), or a policy with market impact
        on securities without ``daily_volatility`` or ``daily_traded_value``.
    """
    path = Path(path)
    file = str(path)
    doc = _read_toml(path)
    _known_keys(doc, _TOP_KEYS, "", file)
    for key in _TOP_KEYS:
        if key not in doc:
            raise PolicyFileError("missing table", file=file, key=key)
        if not isinstance(doc[key], Mapping):
            raise PolicyFileError(f"must be a table ([{key}]), got {doc[key]!r}", file=file,
                                  key=key)
    model, data = doc["model"], doc["data"]
    _known_keys(model, _MODEL_KEYS, "model", file)
    _known_keys(data, _DATA_KEYS, "data", file)
    if "as_of" not in model:
        raise PolicyFileError("missing date", file=file, key="model.as_of")
    try:
        as_of = date(model["as_of"], "model.as_of")
    except InputError as exc:
        raise PolicyFileError(exc.detail, file=file, key="model.as_of") from None
    for key in ("name", "description", "base_currency"):
        if key in model and not isinstance(model[key], str):
            raise PolicyFileError(f"must be text, got {model[key]!r}", file=file,
                                  key=f"model.{key}")
    for key, value in data.items():
        if not isinstance(value, str) or not value.strip():
            raise PolicyFileError(f"must be a file name (text), got {value!r}", file=file,
                                  key=f"data.{key}")

    def frame(key: str, index: str | None = None) -> pd.DataFrame:
        if key not in data:
            raise PolicyFileError("missing file name", file=file, key=f"data.{key}")
        target = path.parent / data[key]
        try:
            text = read_text(target, "CSV file")
        except PolicyFileError as exc:
            raise PolicyFileError(f"{target}: {exc.detail}", file=file,
                                  key=f"data.{key}") from None
        try:
            table = pd.read_csv(io.StringIO(text),
                                dtype=dict.fromkeys(_TEXT_COLUMNS.get(key, ()), str))
        except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
            reason = " ".join(str(exc).split())  # one line
            raise PolicyFileError(f"{target}: not a CSV table ({reason})", file=file,
                                  key=f"data.{key}") from None
        if not isinstance(table.index, pd.RangeIndex):  # pandas took the extra cells as ids
            raise PolicyFileError(f"{target}: a row has more cells than the header has names",
                                  file=file, key=f"data.{key}")
        if index is not None:
            return table
        if len(table.columns) < 2:
            raise PolicyFileError(f"{target}: needs a column of labels and at least one column "
                                  "of numbers", file=file, key=f"data.{key}")
        return numeric_matrix(table.set_index(table.columns[0]), key)

    try:
        if "covariance" in data:
            risk = RiskModel.from_covariance(frame("covariance"))
        elif "factor_loadings" in data:
            specific = frame("specific_variance")
            if len(specific.columns) != 1:
                raise InputError("give one column of variances per class",
                                 field="specific_variance")
            risk = RiskModel.from_factors(frame("factor_loadings"), frame("factor_covariance"),
                                          specific.iloc[:, 0])
        else:
            raise PolicyFileError("give covariance or factor_loadings", file=file, key="data")
        portfolio = Portfolio.from_frames(
            frame("securities", "security"), frame("accounts", "account"),
            frame("lots", "lot"), as_of=as_of, risk=risk,
            exposures=_exposures(frame("exposures", "security")) if "exposures" in data
            else None,
            derivatives=frame("derivatives", "instrument") if "derivatives" in data else None,
            # wash-sale inputs: past trades of every account, scheduled buys (docs/tax.md)
            history=frame("history", "account") if "history" in data else None,
            scheduled=frame("scheduled", "account") if "scheduled" in data else None)
        policy = Policy.from_dict(doc["policy"], file=file)
        check_cost_inputs(portfolio, policy)
    except InputError as exc:
        located = InputError(f"{file}: {exc}")
        located.field, located.row = exc.field, exc.row
        raise located from None
    return portfolio, policy


def _exposures(table: pd.DataFrame) -> pd.DataFrame:
    """An exposures table: securities by row (first column, or ``security``), classes by
    column."""
    if "security" not in table.columns and len(table.columns):
        table = table.rename(columns={table.columns[0]: "security"})
    return table.astype({"security": str}) if "security" in table.columns else table
