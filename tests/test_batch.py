"""Batches: `solve_many` on a process pool and a Dask LocalCluster equals the serial batch
household by household; one household's bad input or infeasibility never stops the batch; the
book generator and `load_book`; the batch's tables and files; the `solve-many` command."""

from __future__ import annotations

import dataclasses
import datetime as dt
import pickle
from pathlib import Path

import pandas as pd
import pytest

import optirebal as orb
from optirebal.batch import (
    _INHERITED,
    STATUSES,
    BatchResult,
    _attach,
    solve_chunk,
    solve_many,
)
from optirebal.cli import main
from optirebal.datasets.book import Book, generate, load_book, write_book

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "models" / "book"


@pytest.fixture(scope="module")
def book() -> Book:
    return load_book(BOOK)


@pytest.fixture(scope="module")
def small(book: Book) -> Book:
    """Twenty households of the shipped book: every account set and model is in it."""
    return book.subset(list(book)[:20])


@pytest.fixture(scope="module")
def serial(small: Book) -> BatchResult:
    return solve_many(small, processes=1, progress=False)


def _per_household(batch: BatchResult, name: str) -> dict[object, pd.DataFrame]:
    frame = batch.table(name)
    return {h: part.drop(columns="household").reset_index(drop=True)
            for h, part in frame.groupby("household", sort=False)}


def _assert_same_batch(a: BatchResult, b: BatchResult) -> None:
    pd.testing.assert_frame_equal(a.statuses[["status", "error", "message", "orders"]],
                                  b.statuses[["status", "error", "message", "orders"]])
    for name in ("orders", "lots_sold", "costs", "tax"):
        left, right = _per_household(a, name), _per_household(b, name)
        assert left.keys() == right.keys(), name
        for household, frame in left.items():
            pd.testing.assert_frame_equal(frame, right[household], obj=f"{name} {household}")


def test_the_shipped_book_has_1000_households_of_three_models(book: Book) -> None:
    assert len(book) == 1000
    assert set(book.models) == {"conservative", "balanced", "growth"}
    assert book.as_of == dt.date(2026, 11, 20)
    sizes = [len(book.frames(h).lots) for h in list(book)[:50]]
    assert min(sizes) >= 120 and max(sizes) <= 300
    accounts = {tuple(book.frames(h).accounts["account"]) for h in book}
    assert all(1 <= len(a) <= 3 and set(a) <= {"taxable", "ira", "roth"} for a in accounts)
    assert len(accounts) >= 4


def test_the_shipped_book_has_flows_history_and_scheduled_buys(book: Book) -> None:
    frames = [book.frames(h) for h in book]
    assert sum(f.history is not None for f in frames) >= 20
    assert sum(f.scheduled is not None for f in frames) >= 50
    assert sum((f.accounts["flow"] != 0).any() for f in frames) >= 200


def test_the_generator_is_reproducible_and_realistic() -> None:
    one, again, other = generate(6, seed=7), generate(6, seed=7), generate(6, seed=8)
    for name in ("households", "accounts", "lots"):
        pd.testing.assert_frame_equal(one[name], again[name])
    assert not one["lots"]["cost_basis"].equals(other["lots"]["cost_basis"])
    lots = one["lots"]
    acquired = pd.to_datetime(lots["acquired"])
    assert acquired.max() <= pd.Timestamp("2026-11-20")
    assert acquired.min() >= pd.Timestamp("2015-11-01")
    assert (lots["cost_basis"] > 0).all() and (lots["quantity"] >= 1).all()
    assert len(one["securities"]) == 20


def test_a_written_book_loads_back(tmp_path: Path) -> None:
    tables = generate(3, seed=11)
    write_book(tables, tmp_path / "b", seed=11)
    loaded = load_book(tmp_path / "b")
    assert list(loaded) == ["H00001", "H00002", "H00003"]
    first = loaded.frames("H00001")
    expected = tables["lots"][tables["lots"]["household"] == "H00001"]
    assert first.lots["lot"].tolist() == expected["lot"].tolist()
    assert isinstance(loaded["H00002"], orb.Portfolio)
    assert loaded.policy_of("H00001") == loaded.policies[loaded.models["H00001"]]


def test_load_book_names_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(orb.PolicyFileError, match=r"book\.toml"):
        load_book(tmp_path)


def test_a_serial_batch_solves_every_household(small: Book, serial: BatchResult) -> None:
    assert serial.summary()["solved"] == 20 and serial.summary()["total"] == 20
    assert list(serial.statuses.index) == list(small)  # in the order given
    orders = serial.orders
    assert orders.columns[0] == "household"
    assert set(orders["household"]) <= set(small)
    first = next(iter(small))
    expected = orb.solve(small[first], small.policy_of(first)).orders
    pd.testing.assert_frame_equal(
        orders[orders["household"] == first].drop(columns="household").reset_index(drop=True),
        expected.reset_index(drop=True))


def test_a_local_cluster_batch_equals_the_serial_batch(small: Book,
                                                       serial: BatchResult) -> None:
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        batch = solve_many(small, client=client, progress=False)
    assert batch.mode == "dask (2 workers)"
    assert batch.statuses["worker"].nunique() == 2
    _assert_same_batch(batch, serial)
    # a worker meets each shape at most once (a chunk another worker stole meets it again
    # there, once)
    hints = pd.Series({h: (small.models[h], tuple(small.frames(h).accounts["account"]))
                       for h in small}, name="hint")
    statuses = batch.statuses.join(hints)
    assert (statuses.groupby(["worker", "hint"])["compiles"].sum() <= 1).all()
    assert (batch.compiles_per_worker() <= hints.nunique()).all()


@pytest.mark.parametrize("forks", [True, False], ids=["inherited", "pickled"])
def test_a_process_pool_batch_equals_the_serial_batch(small: Book, serial: BatchResult,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      forks: bool) -> None:
    """Forked workers inherit the batch; spawned ones (as on macOS and Windows) import
    optirebal afresh and get each chunk pickled."""
    monkeypatch.setattr("optirebal.batch.SERIAL_BELOW", 0)  # a pool even for 20 households
    monkeypatch.setattr("optirebal.batch._pool_forks", lambda: forks)
    batch = solve_many(small, processes=2, progress=False)
    assert batch.mode == "2 processes"
    _assert_same_batch(batch, serial)
    assert not _INHERITED  # the batch is not kept once the pool is closed


def test_one_bad_and_one_infeasible_household_do_not_stop_the_batch(small: Book) -> None:
    ids = list(small)[:6]
    bad, impossible = ids[1], ids[4]
    frames = {h: small.frames(h) for h in ids}
    lots = frames[bad].lots.copy()
    lots.loc[3, "quantity"] = -5.0
    frames[bad] = dataclasses.replace(frames[bad], lots=lots)
    models = small.models.loc[ids].copy()
    models[impossible] = "frozen"
    policies = {**small.policies,
                "frozen": dataclasses.replace(small.policy_of(impossible), turnover_cap=0.0)}
    before = lots.copy()
    batch = solve_many(Book(frames, models, policies, small.as_of), progress=False)
    pd.testing.assert_frame_equal(lots, before)  # inputs never mutated
    failed = batch.failed()
    assert list(failed.index) == [bad, impossible]
    assert failed.loc[bad, "status"] == "input_error"
    assert "'quantity'" in failed.loc[bad, "message"]
    assert repr(lots.loc[3, "lot"]) in failed.loc[bad, "message"]
    assert failed.loc[impossible, "status"] == "infeasible"
    assert "turnover cap" in failed.loc[impossible, "message"]
    summary = batch.summary()
    assert summary["solved"] == 4 and summary["input_error"] == 1
    assert summary["infeasible"] == 1 and summary["total"] == 6
    assert set(summary.index) == {*STATUSES, "total"}
    assert set(batch.orders["household"]) <= set(ids) - {bad, impossible}
    assert bad in batch._repr_html_() and "infeasible" in batch._repr_html_()
    with pytest.raises(KeyError, match="input_error"):
        batch[bad]


def test_a_mapping_of_portfolios_with_one_policy_or_one_per_id(small: Book) -> None:
    ids = list(small)[:3]
    portfolios = {h: small[h] for h in ids}
    policy = small.policies["balanced"]
    one = solve_many(portfolios, policy, progress=False)
    per_id = solve_many(portfolios, dict.fromkeys(ids, policy), progress=False)
    pd.testing.assert_frame_equal(one.orders, per_id.orders)
    with pytest.raises(orb.InputError, match=repr(ids[2])):
        solve_many(portfolios, {h: policy for h in ids[:2]}, progress=False)
    with pytest.raises(orb.InputError, match="policy"):
        solve_many(portfolios, progress=False)
    with pytest.raises(orb.InputError, match="processes"):
        solve_many(portfolios, policy, processes=0, progress=False)


def test_batch_tables_round_trip_through_parquet_and_csv(serial: BatchResult,
                                                         tmp_path: Path) -> None:
    written = serial.write(tmp_path / "tables")
    assert sorted(p.name for p in written) == sorted(
        f"{n}.parquet" for n in ("orders", "lots_sold", "costs", "tax", "events", "statuses"))
    orders = pd.read_parquet(tmp_path / "tables" / "orders.parquet")
    pd.testing.assert_frame_equal(orders, serial.orders, check_dtype=False)
    serial.to_csv(tmp_path / "lots.csv", "lots_sold")
    lots = pd.read_csv(tmp_path / "lots.csv")
    assert len(lots) == len(serial.lots_sold)
    assert lots["gain"].sum() == pytest.approx(serial.lots_sold["gain"].sum())
    for name in ("lots_sold", "costs", "tax", "events"):
        assert serial.table(name).columns[0] == "household"
    with pytest.raises(orb.InputError, match="table"):
        serial.table("weights_of_nothing")


def test_portfolio_policy_and_result_round_trip_through_pickle(small: Book) -> None:
    household = next(iter(small))
    portfolio, policy = small[household], small.policy_of(household)
    result = orb.solve(portfolio, policy)
    portfolio2, policy2, result2 = pickle.loads(pickle.dumps((portfolio, policy, result)))
    assert policy2 == policy
    pd.testing.assert_frame_equal(portfolio2.lots, portfolio.lots)
    pd.testing.assert_frame_equal(portfolio2.securities, portfolio.securities)
    for name, frame in result.to_frames().items():
        pd.testing.assert_frame_equal(result2.to_frames()[name], frame, obj=name)
    assert result2.diagnostics == result.diagnostics
    pd.testing.assert_frame_equal(orb.solve(portfolio2, policy2).orders, result.orders)


def test_the_solve_many_command_writes_the_orders(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    write_book(generate(4, seed=3), tmp_path / "book", seed=3)
    out = tmp_path / "orders.parquet"
    code = main(["solve-many", str(tmp_path / "book"), "--out", str(out), "--workers", "1",
                 "--tables", str(tmp_path / "tables"), "--no-progress"])
    assert code == 0, capsys.readouterr()
    assert "solved 4" in capsys.readouterr().out
    expected = solve_many(load_book(tmp_path / "book"), progress=False).orders
    pd.testing.assert_frame_equal(pd.read_parquet(out), expected, check_dtype=False)
    assert (tmp_path / "tables" / "statuses.parquet").is_file()


def test_the_solve_many_command_refuses_a_bad_out_before_loading(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["solve-many", str(tmp_path), "--out", str(tmp_path / "orders.json")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and ".parquet" in err and "Traceback" not in err


def test_a_household_built_over_a_validated_universe_equals_from_frames(book: Book) -> None:
    for household in list(book)[:5]:
        f = book.frames(household)
        direct = orb.Portfolio.from_frames(f.securities, f.accounts, f.lots, as_of=f.as_of,
                                           risk=f.covariance, history=f.history,
                                           scheduled=f.scheduled)
        built = f.portfolio()  # the first one validates the universe, the others re-use it
        for name in ("securities", "exposures", "accounts", "lots"):
            pd.testing.assert_frame_equal(getattr(built, name), getattr(direct, name))
        for name in ("history", "scheduled"):
            left, right = getattr(built, name), getattr(direct, name)
            assert (left is None) == (right is None)
            if left is not None:
                pd.testing.assert_frame_equal(left, right)
        assert built.defaults == direct.defaults


def test_with_holdings_validates_like_from_frames(book: Book) -> None:
    f = book.frames(next(iter(book)))
    template = f.portfolio()
    lots = f.lots.copy()
    lots.loc[2, "security"] = "NOPE"
    with pytest.raises(orb.InputError, match=r"'security'.*unknown security 'NOPE'"):
        template.with_holdings(f.accounts, lots)
    accounts = f.accounts.assign(type="pension")
    with pytest.raises(orb.InputError, match="'type'"):
        template.with_holdings(accounts, f.lots)


def test_a_value_that_is_not_a_portfolio_is_its_own_input_error(small: Book) -> None:
    first = next(iter(small))
    batch = solve_many({first: small[first], "oops": "not a portfolio"},
                       small.policy_of(first), progress=False)
    assert batch.statuses.loc[first, "status"] == "solved"
    assert batch.statuses.loc["oops", "status"] == "input_error"
    assert "must be a Portfolio, got str" in batch.statuses.loc["oops", "message"]


def test_an_empty_batch_is_an_empty_result(small: Book) -> None:
    batch = solve_many({}, small.policies["growth"], progress=False)
    assert len(batch) == 0 and batch.summary()["total"] == 0
    assert list(batch.orders.columns) == ["household"] and len(batch.failed()) == 0


def test_households_validated_together_equal_households_built_alone(book: Book) -> None:
    from optirebal.datasets.book import build_together

    ids = [h for h in book if book.frames(h).history is not None][:3]
    ids += [h for h in book if book.frames(h).scheduled is not None][:3] + list(book)[:10]
    frames = [book.frames(h) for h in ids]
    together = build_together(frames)
    assert all(p is not None for p in together)
    for f, built in zip(frames, together, strict=True):
        alone = f.portfolio()
        assert built is not None
        for name in ("securities", "accounts", "lots", "history", "scheduled"):
            left, right = getattr(built, name), getattr(alone, name)
            assert (left is None) == (right is None), name
            if left is not None:
                pd.testing.assert_frame_equal(left, right, obj=f"{f.household} {name}")
    lots = frames[4].lots.copy()
    lots.loc[0, "cost_basis"] = -1.0
    broken = [*frames[:4], dataclasses.replace(frames[4], lots=lots), *frames[5:]]
    assert build_together(broken)[1:] == [None] * (len(broken) - 1)  # one by one, then


def test_outcomes_carry_decisions_whose_results_equal_solve(small: Book,
                                                            serial: BatchResult) -> None:
    """A worker sends back the decision; the result built from it on access is the one
    `solve` returns, and the statuses read from the decision agree with it to the last bit."""
    for household in list(small)[:6]:
        outcome = next(o for o in serial.outcomes if o.id == household)
        assert outcome.status == "solved" and outcome.decision is not None
        expected = orb.solve(small[household], small.policy_of(household))
        got = serial[household]
        assert got is serial[household] is outcome.result  # built once, then kept
        for name, frame in expected.to_frames().items():
            if name == "diagnostics":  # seconds differ by run, compiles by rebalancer
                varying = ["compile_seconds", "solve_seconds", "compiles"]
                frame = frame.drop(columns=varying)
                other = got.to_frames()[name].drop(columns=varying)
            else:
                other = got.to_frames()[name]
            pd.testing.assert_frame_equal(other, frame, obj=f"{household} {name}")
        row = serial.statuses.loc[household]
        assert row["orders"] == len(expected.orders)
        assert row["nav"] == expected.nav
        assert row["turnover"] == expected.turnover  # the same float, not approximately
        assert row["solves"] == expected.diagnostics.solves
    for household, result in serial.results.items():  # every household, to the last bit
        assert serial.statuses.loc[household, "turnover"] == result.turnover, household
    assert len(serial.results) == serial.summary()["solved"]
    assert set(serial.results) == set(serial.statuses.index[serial.statuses["status"] == "solved"])


def test_frames_built_on_the_workers_equal_frames_built_on_access(small: Book,
                                                                  serial: BatchResult) -> None:
    ids = list(small)[:8]
    eager = solve_many(small.subset(ids), processes=1, progress=False, frames=True)
    assert all(o.result_built for o in eager.outcomes)  # built in the worker
    lazy = solve_many(small.subset(ids), processes=1, progress=False)
    assert not any(o.result_built for o in lazy.outcomes)  # not until asked
    _assert_same_batch(eager, lazy)
    restored = pickle.loads(pickle.dumps(eager.outcomes))  # what a pool sends back
    assert all(o.result_built for o in restored)
    pd.testing.assert_frame_equal(restored[0].result.orders, eager[ids[0]].orders)
    # a decision sent back without its cached maps builds the same result
    for outcome in pickle.loads(pickle.dumps(solve_many(small.subset(ids), processes=1,
                                                        progress=False).outcomes)):
        assert not outcome.result_built
        for name in ("orders", "lots_sold", "tax", "costs", "events"):
            pd.testing.assert_frame_equal(outcome.result.to_frames()[name],
                                          eager[outcome.id].to_frames()[name], obj=name)
    for name in ("orders", "lots_sold", "costs", "tax", "events"):
        expected = serial.table(name)
        pd.testing.assert_frame_equal(
            lazy.table(name).reset_index(drop=True),
            expected[expected["household"].isin(ids)].reset_index(drop=True), obj=name)


def test_a_worker_does_not_send_back_the_portfolios_the_caller_keeps(small: Book) -> None:
    """With ``inputs_kept`` (a pool, a cluster), a decision's portfolio is pickled as its
    position in the chunk: the outcomes cannot be read until the gathering process attaches
    its own, a given portfolio comes back as the very object given, and a book household's
    is built again equal; a gathered batch pickled again is whole."""
    ids = list(small)[:5]
    chunk = [(h, small.frames(h), small.policy_of(h)) for h in ids]
    given = {ids[0]: small[ids[0]], ids[1]: small[ids[1]]}  # portfolios, not frames
    chunk[:2] = [(h, given[h], small.policy_of(h)) for h in ids[:2]]
    kept = pickle.dumps(solve_chunk(chunk, inputs_kept=True))
    sent = pickle.dumps(solve_chunk(chunk))
    assert len(kept) < 0.7 * len(sent)  # the lots frames stay home
    received = pickle.loads(kept)
    with pytest.raises(orb.OptirebalError, match="attach"):
        _ = received[0].decision
    _attach(received, chunk)
    assert [o.status for o in received] == ["solved"] * 5
    assert received[0].decision.data.portfolio is given[ids[0]]
    assert received[1].decision.data.portfolio is given[ids[1]]
    expected = solve_many(small.subset(ids), processes=1, progress=False)
    for outcome in received[2:]:
        built = outcome.decision.data.portfolio
        for name in ("securities", "accounts", "lots", "history", "scheduled"):
            left, right = getattr(built, name), getattr(small[outcome.id], name)
            assert (left is None) == (right is None), name
            if left is not None:
                pd.testing.assert_frame_equal(left, right, obj=f"{outcome.id} {name}")
        pd.testing.assert_frame_equal(outcome.result.orders, expected[outcome.id].orders)
    unread = pickle.loads(kept)
    _attach(unread, chunk)
    again = pickle.loads(pickle.dumps(unread))  # no portfolio to attach: a whole pickle
    for outcome, before in zip(again, received, strict=True):
        pd.testing.assert_frame_equal(outcome.result.orders, before.result.orders)


def test_statuses_of_a_gathered_batch_unpack_no_decision(small: Book, serial: BatchResult
                                                         ) -> None:
    """Outcomes come back from a worker with their decisions packed; the statuses read the
    figures kept beside them, and a decision unpacks (with its chunk) on first access only."""
    gathered = BatchResult(pickle.loads(pickle.dumps(serial.outcomes)))
    assert not any(o.unpacked for o in gathered.outcomes)
    pd.testing.assert_frame_equal(gathered.statuses, serial.statuses)
    assert not any(o.unpacked for o in gathered.outcomes)
    first = next(o for o in gathered.outcomes if o.status == "solved")
    expected = serial.results[first.id]
    pd.testing.assert_frame_equal(first.result.orders, expected.orders)
    assert first.unpacked


def test_a_bad_history_or_schedule_fails_its_household_alone(small: Book) -> None:
    """The histories and scheduled buys of a chunk are checked in one pass; when one is bad,
    its household still fails alone, naming the field and the row."""
    with_history = [h for h in small if small.frames(h).history is not None]
    with_scheduled = [h for h in small if small.frames(h).scheduled is not None]
    assert with_history and with_scheduled
    ids = list(dict.fromkeys([*with_history[:2], *with_scheduled[:2], *list(small)[:6]]))
    frames = {h: small.frames(h) for h in ids}
    bad_history, bad_scheduled = with_history[0], with_scheduled[0]
    history = frames[bad_history].history.astype({"price": object})
    history.loc[0, "price"] = "n/a"
    frames[bad_history] = dataclasses.replace(frames[bad_history], history=history)
    scheduled = frames[bad_scheduled].scheduled.copy()
    scheduled.loc[0, "value"] = -5.0
    frames[bad_scheduled] = dataclasses.replace(frames[bad_scheduled], scheduled=scheduled)
    batch = solve_many(Book(frames, small.models.loc[ids], small.policies, small.as_of),
                       processes=1, progress=False)
    failed = batch.failed()
    assert set(failed.index) == {bad_history, bad_scheduled}
    assert (failed["status"] == "input_error").all()
    assert "field 'history.price', row 0" in failed.loc[bad_history, "message"]
    assert "field 'scheduled.value', row 0" in failed.loc[bad_scheduled, "message"]
    assert batch.summary()["solved"] == len(ids) - 2


def test_a_chunk_travels_to_dask_with_its_frames_stacked_and_arrives_equal(book: Book) -> None:
    from optirebal.batch import _arrived, _pack, _tasks, _travelling
    from optirebal.datasets.book import stack_households

    ids = [h for h in book if book.frames(h).history is not None][:3]
    ids += [h for h in book if book.frames(h).scheduled is not None][:3] + list(book)[:10]
    chunk = _tasks(book.subset(list(dict.fromkeys(ids))), None)
    travelled = _travelling(chunk)
    assert isinstance(travelled, tuple)  # stacked: two frames, not two per household
    arrived = _arrived(pickle.loads(_pack(travelled)))
    assert [(k, p) for k, _, p in arrived] == [(k, p) for k, _, p in chunk]
    for (_, sent, _), (_, got, _) in zip(chunk, arrived, strict=True):
        assert got.household == sent.household and got.as_of == sent.as_of
        for name in ("securities", "covariance", "accounts", "lots", "history", "scheduled"):
            left, right = getattr(got, name), getattr(sent, name)
            assert (left is None) == (right is None), name
            if left is not None:
                pd.testing.assert_frame_equal(left, right, check_index_type=True,
                                              obj=f"{sent.household} {name}")
    # frames that would not slice back equal travel as they are
    first = chunk[0][1]
    lots = first.lots.astype({"quantity": "int64"})
    other_dtype = [dataclasses.replace(first, lots=lots), chunk[1][1]]
    other_index = [dataclasses.replace(first, lots=first.lots.set_axis(
        range(1, len(first.lots) + 1))), chunk[1][1]]
    other_universe = [dataclasses.replace(first, securities=first.securities.copy()),
                      chunk[1][1]]
    for frames in (other_dtype, other_index, other_universe):
        assert stack_households(frames) is None
    plain = [(1, other_dtype[0], chunk[0][2]), (2, other_dtype[1], chunk[1][2])]
    assert _travelling(plain) is plain and _arrived(plain) is plain


def test_columns_read_once_for_a_chunk_equal_each_households_own(book: Book) -> None:
    from optirebal.datasets.book import build_together
    from optirebal.portfolio_frames import Columns

    frames = [book.frames(h) for h in list(book)[:12]]
    for portfolio in build_together(frames):
        assert portfolio is not None
        for columns, frame in ((portfolio.lot_columns, portfolio.lots),
                               (portfolio.account_columns, portfolio.accounts),
                               (portfolio.security_columns, portfolio.securities)):
            assert columns.frame is frame
            for name in frame.columns:
                got, fresh = columns[name], Columns(frame)[name]
                assert got.dtype == fresh.dtype and not got.flags.writeable, name
                pd.testing.assert_series_equal(pd.Series(got), pd.Series(fresh), obj=name)
    assert pickle.loads(pickle.dumps(portfolio.lot_columns)).frame.equals(portfolio.lots)
