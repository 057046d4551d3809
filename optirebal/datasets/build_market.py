"""Rebuild the market data files in ``optirebal/datasets/data`` from the ``arch`` and ``skfolio``
packages.

Run ``python -m optirebal.datasets.build_market`` after ``pip install "optirebal[datasets]"``
(``arch>=7``, ``skfolio>=0.5``); neither is needed to *load* the shipped files. The script writes

- ``stocks_bonds_monthly.csv.gz``: US stock market, long-term Aaa corporate bond and one-month
  T-bill total returns per month from July 1926 (Fama-French factors and Moody's Aaa yields as
  shipped in ``arch``),
- ``vix_daily.csv.gz``: the Cboe VIX daily close (``arch``),
- ``us_stocks_daily.csv.gz``: adjusted daily closes of 20 S&P 500 constituents (``skfolio``),
- ``provenance.json``: for each file its source sentence, units, license terms and the SHA-256 of
  the uncompressed CSV text (the loaders copy the first three into ``DataFrame.attrs``),

and rewrites them byte for byte when run again on the same package versions: every number is
formatted with a fixed number of decimals by this script (not by pandas' float repr), rows end in
``\\n``, and gzip gets ``mtime=0`` and no file name. ``--check`` rebuilds into a temporary
directory and compares with the shipped files.

The bond return (documented in ``docs/datasets.md``) is :func:`par_bond_return`: the one-month
holding return of a 20-year par bond with semiannual coupons bought at the end of month ``t-1``
with coupon equal to the yield ``y[t-1]`` and priced one month later at the yield ``y[t]``.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import json
import sys
import tempfile
from collections.abc import Sequence
from importlib import metadata, resources
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

__all__ = ["COUPONS_PER_YEAR", "MATURITY_YEARS", "build", "main", "par_bond_return"]

DATA_DIR = Path(__file__).resolve().parent / "data"

#: Maturity of the constant-maturity bond that stands for Moody's Aaa index: Moody's averages
#: seasoned bonds with 20 years or more to maturity (near 30 when it can), so 20 years is the
#: conservative, shorter-duration end.
MATURITY_YEARS = 20
#: US corporate bonds pay semiannual coupons and their yields are quoted semiannually compounded.
COUPONS_PER_YEAR = 2

MONTHLY = "stocks_bonds_monthly.csv.gz"
VIX = "vix_daily.csv.gz"
STOCKS = "us_stocks_daily.csv.gz"
PROVENANCE = "provenance.json"


def par_bond_return(y_prev: npt.ArrayLike, y_now: npt.ArrayLike,
                    maturity_years: int = MATURITY_YEARS,
                    frequency: int = COUPONS_PER_YEAR) -> npt.NDArray[np.float64]:
    """One-month total return of a constant-maturity par bond, by exact yield-to-maturity pricing.

    At the end of month ``t-1`` a bond with ``maturity_years * frequency`` coupons is bought at
    par, so its coupon rate is ``y_prev``. One month later the first coupon is ``12/frequency - 1``
    months away and the bond is priced at ``y_now`` (compounded ``frequency`` times a year, the
    street convention). With ``v = 1 + y_now/frequency``, ``n = maturity_years * frequency`` and
    ``e = frequency/12`` (the fraction of a coupon period that has passed), the full (dirty) price
    is ``v**e * (y_prev/y_now * (1 - v**-n) + v**-n)`` and the return is that price minus 1. It
    splits into the accrued coupon ``y_prev/12`` (income) and the clean price change.

    Parameters
    ----------
    y_prev, y_now : array_like
        Yields at the ends of months ``t-1`` and ``t``, as fractions a year (0.0472, not 4.72),
        positive.
    maturity_years : int, default 20
        Years to maturity when bought.
    frequency : int, default 2
        Coupons a year; must divide 12.

    Returns
    -------
    numpy.ndarray
        Total return over the month, a fraction (0.01 = 1 %), in the broadcast shape of the yields.

    Raises
    ------
    ValueError
        If a yield is not positive or ``frequency`` does not divide 12.
    """
    prev = np.asarray(y_prev, dtype=float)
    now = np.asarray(y_now, dtype=float)
    if not (np.all(prev > 0) and np.all(now > 0)):
        raise ValueError("yields must be positive fractions a year")
    if 12 % frequency:
        raise ValueError(f"frequency must divide 12, got {frequency}")
    n = maturity_years * frequency
    v = 1.0 + now / frequency
    # Value of the n remaining cash flows one full period before the first of them (annuity
    # formula for the coupons plus the discounted principal) ...
    period_start = prev / now * (1.0 - v ** -n) + v ** -n
    # ... carried forward one month, i.e. frequency/12 of a period (1/6 for semiannual coupons).
    dirty = v ** (frequency / 12.0) * period_start
    return np.asarray(dirty - 1.0, dtype=float)


def _fixed(value: float, decimals: int) -> str:
    """``value`` with exactly ``decimals`` decimals and never ``-0.000``."""
    rounded = round(float(value), decimals) + 0.0  # + 0.0 turns -0.0 into 0.0
    return f"{rounded:.{decimals}f}"


def _csv_text(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def _write_gz(path: Path, text: str) -> None:
    # mtime=0 and no file name in the header: the same text gives the same bytes on every run.
    path.write_bytes(gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0))


def _package_csv(package: str, name: str) -> pd.DataFrame:
    """A CSV shipped inside ``package``, every field as text (no float or date parsing)."""
    with resources.files(package).joinpath(name).open("rb") as raw:
        return pd.read_csv(raw, compression="gzip", dtype=str, keep_default_na=False)


def _hundredths(text: pd.Series) -> pd.Series:
    """Numbers printed with at most two decimals, as exact integers of hundredths."""
    values = text.astype(float)
    scaled = np.round(values * 100.0)
    if not np.allclose(scaled / 100.0, values, rtol=0.0, atol=1e-9):
        raise ValueError(f"{text.name}: more than two decimals in the source")
    return pd.Series(scaled.astype(np.int64), index=text.index, name=text.name)


def _version(dist: str) -> str:
    return metadata.version(dist)


def monthly_rows() -> tuple[list[str], list[list[str]], int, str, str]:
    """Rows of the monthly file: month end, stocks, bonds, bills; and the coverage it spans."""
    ff = _package_csv("arch.data.frenchdata", "frenchdata.csv.gz")
    # arch's own frenchdata.load() feeds the integer YYYYMM to pd.to_datetime, which reads it as
    # nanoseconds after 1970; the raw file is parsed here instead.
    ff_month = pd.PeriodIndex([pd.Period(f"{d[:4]}-{d[4:6]}", "M") for d in ff["Date"]])
    mkt_rf = _hundredths(ff["Mkt-RF"]).to_numpy()
    rf = _hundredths(ff["RF"]).to_numpy()
    # Percent with two decimals: the sum in hundredths of a percent is exact, /10000 is a fraction.
    stocks_bp = pd.Series(mkt_rf + rf, index=ff_month)
    bills_bp = pd.Series(rf, index=ff_month)

    aaa = _package_csv("arch.data.default", "default.csv.gz")
    aaa_month = pd.PeriodIndex(pd.to_datetime(aaa["Date"], format="%m/%d/%Y"), freq="M")
    yields = pd.Series(_hundredths(aaa["AAA"]).to_numpy() / 10000.0, index=aaa_month)
    if not (yields.index.is_unique and yields.index.is_monotonic_increasing
            and (np.diff(yields.index.asi8) == 1).all()):
        raise ValueError("Aaa yields are not one row per consecutive month")
    # The return of month t needs the yield of month t-1 too.
    bonds = pd.Series(par_bond_return(yields.shift(1).to_numpy()[1:], yields.to_numpy()[1:]),
                      index=yields.index[1:])

    months = stocks_bp.index.intersection(bonds.index)
    expected = pd.period_range(months[0], months[-1], freq="M")
    if not months.equals(expected):
        raise ValueError("months missing between the Fama-French and Aaa series")
    rows = [[str(m.end_time.date()), _fixed(stocks_bp[m] / 10000.0, 4),
             _fixed(bonds[m], 8), _fixed(bills_bp[m] / 10000.0, 4)] for m in months]
    return ["date", "stocks", "bonds", "bills"], rows, len(rows), str(months[0]), str(months[-1])


def vix_rows() -> tuple[list[str], list[list[str]]]:
    """Rows of the VIX file: trading day and close; the source's '.' holiday rows are dropped."""
    raw = _package_csv("arch.data.vix", "vix.csv.gz")
    traded = raw[raw["vix"] != "."]
    days = pd.to_datetime(traded["Date"], format="%m/%d/%Y")
    if not (days.is_unique and days.is_monotonic_increasing):
        raise ValueError("VIX dates are not unique and increasing")
    close = _hundredths(traded["vix"]) / 100.0
    return ["date", "vix"], [[str(d.date()), _fixed(c, 2)] for d, c in zip(days, close,
                                                                           strict=True)]


def stock_rows() -> tuple[list[str], list[list[str]]]:
    """Rows of the stock file: trading day and one adjusted close per ticker (3 decimals)."""
    from skfolio.datasets import load_sp500_dataset

    prices = load_sp500_dataset()
    values = prices.to_numpy(dtype=float)
    if not np.allclose(np.round(values, 3), values, rtol=0.0, atol=1e-9):
        raise ValueError("skfolio prices have more than three decimals; widen the format")
    if np.isnan(values).any() or not prices.index.is_unique:
        raise ValueError("skfolio prices have gaps or repeated dates")
    rows = [[str(day.date()), *(_fixed(x, 3) for x in row)]
            for day, row in zip(prices.index, values, strict=True)]
    return ["date", *map(str, prices.columns)], rows


def provenance(n_months: int, first: str, last: str) -> dict[str, dict[str, str]]:
    """Source, units and license sentences of each file (the loaders copy them into ``attrs``)."""
    arch_v, skfolio_v = _version("arch"), _version("skfolio")
    return {
        MONTHLY: {
            "source": (
                "Kenneth R. French Data Library (Fama/French 3 factors, monthly: Mkt-RF and RF, "
                "built from CRSP, RF the one-month Treasury bill rate from Ibbotson) and Moody's "
                "Seasoned Aaa Corporate Bond Yield (monthly average of daily yields, the Federal "
                "Reserve Bank of St. Louis FRED series AAA), both as shipped in arch "
                f"{arch_v} (arch.data.frenchdata, arch.data.default); stocks = Mkt-RF + RF, "
                "bills = RF, bonds = one-month total return of a constant-maturity 20-year par "
                "bond with semiannual coupons bought at the previous month's Aaa yield and "
                f"priced exactly at this month's; {n_months} months {first} to {last}."),
            "units": ("fraction per month (0.01 = 1 %), simple total returns; the month-end "
                      "date labels the month the return is earned in"),
            "license": (
                "Fama-French data: free from the Ken French Data Library, no formal license, "
                "cite Fama and French (1993); Moody's Aaa yields: copyright Moody's Investors "
                "Service, on FRED for fair use; redistributed in arch (NCSA license)."),
        },
        VIX: {
            "source": (
                "Cboe Volatility Index (VIX) daily close, apparently from FRED series VIXCLS "
                f"(holidays marked '.'), as shipped in arch {arch_v} (arch.data.vix); holiday "
                "rows dropped, values unchanged."),
            "units": ("index points: annualized 30-day implied volatility of the S&P 500 in "
                      "percent (20.0 means 20 % a year)"),
            "license": ("VIX: Cboe Global Markets, used on FRED with permission, Cboe terms "
                        "apply; redistributed in arch (NCSA license)."),
        },
        STOCKS: {
            "source": (
                "Daily adjusted closing prices of 20 S&P 500 constituents as shipped in skfolio "
                f"{skfolio_v} (skfolio.datasets.load_sp500_dataset; skfolio does not name the "
                "upstream vendor), values unchanged at the 3 decimals skfolio ships."),
            "units": ("US dollars per share, adjusted for splits and dividends (so the price "
                      "ratio of two days is the total return)"),
            "license": ("skfolio is BSD-3-Clause; skfolio provides the data for testing and "
                        "examples only, not for investment use."),
        },
    }


def build(out_dir: Path = DATA_DIR) -> dict[str, str]:
    """Write the three data files and ``provenance.json`` into ``out_dir``.

    Parameters
    ----------
    out_dir : pathlib.Path
        Target directory, created if missing; defaults to the package's ``data`` directory.

    Returns
    -------
    dict
        File name -> SHA-256 (hex) of its uncompressed CSV text.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    header, rows, n_months, first, last = monthly_rows()
    texts = {MONTHLY: _csv_text(header, rows), VIX: _csv_text(*vix_rows()),
             STOCKS: _csv_text(*stock_rows())}
    info = provenance(n_months, first, last)
    digests = {}
    for name, text in texts.items():
        _write_gz(out_dir / name, text)
        digests[name] = hashlib.sha256(text.encode("utf-8")).hexdigest()
        info[name]["sha256_csv"] = digests[name]
    (out_dir / PROVENANCE).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n",
                                      encoding="utf-8")
    return digests


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: rebuild the files, or with ``--check`` compare a rebuild with them."""
    parser = argparse.ArgumentParser(prog="python -m optirebal.datasets.build_market",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DATA_DIR, help="output directory")
    parser.add_argument("--check", action="store_true",
                        help="rebuild into a temporary directory and compare bytes with --out")
    args = parser.parse_args(argv)
    if not args.check:
        build(args.out)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        build(Path(tmp))
        names = [MONTHLY, VIX, STOCKS, PROVENANCE]
        differ = [n for n in names
                  if (Path(tmp) / n).read_bytes() != (args.out / n).read_bytes()]
    for name in differ:
        print(f"differs: {name}", file=sys.stderr)
    return 1 if differ else 0


if __name__ == "__main__":
    raise SystemExit(main())
