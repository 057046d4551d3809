"""The command line and the result's tables: every table from `Result.to_frames`, files checked
before solving, one line and exit status 2 on any failure, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

import optirebal as orb
from optirebal.cli import main

ROOT = Path(__file__).resolve().parents[1]
HOUSEHOLD = str(ROOT / "models" / "household.toml")
OVERLAY = str(ROOT / "models" / "pension_overlay.toml")


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"optirebal {orb.__version__}"


@pytest.mark.parametrize("out", ["orders.xlsx", "missing/orders.json", "."])
def test_a_bad_out_path_is_refused_before_solving(out: str, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("optirebal.cli.solve", lambda *a: pytest.fail("solved first"))
    assert main(["solve", HOUSEHOLD, "--out", str(tmp_path / out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("optirebal: ") and "Traceback" not in err


def test_failures_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["solve", str(tmp_path / "nowhere.toml")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_json_holds_every_table_and_csv_has_no_float_noise(tmp_path: Path) -> None:
    assert main(["solve", HOUSEHOLD, "--out", str(tmp_path / "all.json")]) == 0
    doc = json.loads((tmp_path / "all.json").read_text())
    assert list(doc) == ["orders", "lots_sold", "weights", "costs", "cash", "tracking_error",
                         "tax", "events", "diagnostics"]
    assert {e["kind"] for e in doc["events"]} >= {"restriction", "wash_conflict"}
    assert main(["solve", HOUSEHOLD, "--out", str(tmp_path / "orders.csv")]) == 0
    text = (tmp_path / "orders.csv").read_text()
    assert "0000000" not in text and "9999999" not in text
    orders = pd.read_csv(tmp_path / "orders.csv")
    assert list(orders.columns) == ["account", "security", "side", "shares", "price", "value",
                                    "reason"]


def test_to_frames_names_every_table_and_the_summary_shows_them() -> None:
    result = orb.solve(*orb.load(OVERLAY))
    frames = result.to_frames()
    assert list(frames) == ["orders", "lots_sold", "weights", "costs", "cash", "tracking_error",
                            "tax", "synthetic", "events", "diagnostics"]
    assert frames["diagnostics"].loc[0, "solver"] == result.diagnostics.solver
    text = result.summary()
    assert "Synthetic trades" in text and "Tracking error" in text
    assert "Synthetic trades" in result._repr_html_()


def test_plot_shows_weights_against_bands_and_the_costs() -> None:
    import matplotlib

    matplotlib.use("Agg")
    result = orb.solve(*orb.load(HOUSEHOLD))
    fig = result.plot()
    weights, costs = fig.axes
    assert [t.get_text() for t in weights.get_yticklabels()] == list(result.weights.index)
    assert len(costs.patches) == len(result.costs) - 1  # every component but the total


def test_the_summary_formats_each_column() -> None:
    text = orb.solve(*orb.load(HOUSEHOLD)).summary()
    assert " -700 " in text and "-700.0000" not in text  # whole shares are whole
    weights = text.split("\nWeights\n")[1].split("\nCosts\n")[0]
    assert "%" in weights and "0.4206" not in weights  # weights in percent, not fractions
    assert "-61,880.00" in text and "-0.00" not in text
    assert "\n    total " in text  # a totals row under the orders
    pension = orb.solve(*orb.load(str(ROOT / "models" / "pension_6040.toml"))).summary()
    assert "\nTax\n" not in pension  # a tax-exempt trust has no tax table


def test_parquet_orders_and_every_table(tmp_path: Path) -> None:
    assert main(["solve", HOUSEHOLD, "--out", str(tmp_path / "orders.parquet"),
                 "--tables", str(tmp_path / "tables")]) == 0
    orders = pd.read_parquet(tmp_path / "orders.parquet")
    result = orb.solve(*orb.load(HOUSEHOLD))
    pd.testing.assert_frame_equal(orders, result.orders)
    written = sorted(p.stem for p in (tmp_path / "tables").glob("*.parquet"))
    assert written == sorted(result.to_frames())
    events = pd.read_parquet(tmp_path / "tables" / "events.parquet")
    assert len(events) == len(result.events)
