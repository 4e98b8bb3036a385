"""vgfast.sweep on in-process threads: configs, keys, the store, resume, errors, interruption,
bad input, rows/pandas/plot. (Dask: tests/test_sweep_dask.py.)"""
import json
import os
import re
import sqlite3
import threading

import numpy as np
import pytest

import vgfast
from vgfast.sweep import StoreError, StoreLockedError, configs_of, load
from vgfast.sweep.store import run_key, run_name
from vgfast.sweep.training import DATASETS, load_data

from _sweep_runs import calls, logged_run, set_phase  # noqa: E402  (run functions)

pytest.importorskip("sklearn")  # the digits data set

DIGITS = dict(data="digits", sizes=[64, 12, 10], epochs=2, batch_size=20, lr=0.5)


@pytest.fixture
def log(tmp_path):
    d = tmp_path / "log"
    d.mkdir()
    set_phase(str(d), "first")
    return str(d)


# ---------------------------------------------------------------------------- configs and keys


def test_configs_are_the_product_with_fixed_keys_in_json_form():
    got = [c for _, c in configs_of({"a": [1, 2], "b": ["x", (3, 4)]}, {"c": 0.5})]
    assert got == [{"a": 1, "b": "x", "c": 0.5}, {"a": 1, "b": [3, 4], "c": 0.5},
                   {"a": 2, "b": "x", "c": 0.5}, {"a": 2, "b": [3, 4], "c": 0.5}]


def test_key_depends_on_config_and_run_name_only():
    (t1, _), = configs_of({"a": [1]}, {"b": 2})
    (t2, _), = configs_of({"b": [2]}, {"a": 1})  # same config from grid or fixed: same key
    assert run_key(t1, "m.f") == run_key(t2, "m.f")
    assert run_key(t1, "m.f") != run_key(t1, "m.g")
    (t3, _), = configs_of({"a": [1.0]}, {"b": 2})  # 1.0 is not 1 in JSON: another run
    assert run_key(t3, "m.f") != run_key(t1, "m.f")
    assert run_name(logged_run).endswith("_sweep_runs.logged_run")


# ---------------------------------------------------------------------------- the default run


def test_default_run_gives_the_numbers_of_hand_written_training():
    res = vgfast.sweep({"seed": [0, 1], "activation": ["sigmoid", "relu"]}, progress=False,
                       **DIGITS)
    X, y, Xv, yv = load_data({"data": "digits"})
    assert len(X) + len(Xv) == 1797 and abs(len(Xv) - 0.2 * 1797) < 1
    assert len(res.rows) == 4
    for row in res.rows:
        net = vgfast.Network([64, 12, 10], activation=row["activation"], seed=row["seed"])
        hist = vgfast.train(net, X, y, epochs=2, batch_size=20, optimizer=vgfast.SGD(0.5),
                            seed=row["seed"], monitor=False, validation=(Xv, yv))
        assert row["status"] == "done" and row["error"] is None
        assert row["train_cost"] == net.cost(X, y)
        assert row["train_accuracy"] == net.accuracy(X, y)
        assert row["validation_cost"] == net.cost(Xv, yv, n=len(X))
        assert row["validation_accuracy"] == net.accuracy(Xv, yv)
        assert row["epochs_trained"] == 2 and row["diverged"] is None
        np.testing.assert_array_equal(row["history"].validation_accuracy,
                                      hist.validation_accuracy)
    by = {(r["seed"], r["activation"]): r["train_cost"] for r in res.rows}
    assert len(set(by.values())) == 4  # seeds and activations really differ


def test_default_run_records_divergence_as_a_result():
    row, = vgfast.sweep({"lr": [1e6]}, data="digits", sizes=[64, 12, 10], epochs=2,
                        activation="relu", output="linear", cost="quadratic",
                        progress=False).rows
    assert row["status"] == "done"
    assert "non-finite" in row["diverged"]
    assert row["train_cost"] is None or np.isfinite(row["train_cost"])


def test_default_run_on_a_synthetic_set_with_loader_arguments():
    row, = vgfast.sweep({"seed": [3]}, data="parity", data_args={"n": 200, "n_bits": 4},
                        validation_split=0.25, sizes=[4, 8, 2], output="softmax",
                        cost="log_likelihood", optimizer="adam", lr=0.01, epochs=2,
                        progress=False).rows
    assert row["status"] == "done" and 0 <= row["validation_accuracy"] <= 1
    assert len(row["history"].lr) == 2


def test_dataset_names_map_to_loaders_or_a_clear_error():
    from vgfast import datasets
    for name, loader in DATASETS.items():
        if not hasattr(datasets, loader):
            with pytest.raises(ValueError, match=f"needs vgfast.datasets.{loader}"):
                vgfast.sweep({"seed": [0]}, data=name, sizes=[784, 10], progress=False)


# ---------------------------------------------------------------------------- store, resume, errors


def test_resume_never_repeats_done_and_retries_errors(tmp_path, log):
    store = str(tmp_path / "runs.sqlite")
    grid = {"x": [1, 2, "boom", 3]}
    res = vgfast.sweep(grid, run=logged_run, store=store, log=log, progress=False)
    assert calls(log, "first") == [1, 2, 3, "boom"]
    st = {r["x"]: r["status"] for r in res.rows}
    assert st == {1: "done", 2: "done", "boom": "error", 3: "done"}
    boom = next(r for r in res.rows if r["x"] == "boom")
    assert "Traceback" in boom["error"] and "ValueError: boom" in boom["error"]
    assert [r.get("y") for r in res.rows] == [1, 4, None, 9]
    finished = {r["key"]: r["finished"] for r in res.runs}

    set_phase(log, "second")
    res2 = vgfast.sweep(grid, run=logged_run, store=store, log=log, progress=False)
    assert calls(log, "second") == ["boom"]  # only the error is tried again
    for r in res2.runs:
        if r["status"] == "done":
            assert r["finished"] == finished[r["key"]]  # the stored row is untouched
    # a larger grid runs only its new points
    set_phase(log, "third")
    vgfast.sweep({"x": [1, 2, 3, 4]}, run=logged_run, store=store, log=log, progress=False)
    assert calls(log, "third") == [4]
    assert len(load(store).rows) == 5


def test_interrupted_sweep_keeps_finished_runs_and_resumes_only_the_missing(tmp_path, log):
    store = str(tmp_path / "runs.sqlite")
    grid = {"x": list(range(12))}
    seen = []

    def stop_after_three(n, total, row):
        seen.append(row["x"])
        if len(seen) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        vgfast.sweep(grid, run=logged_run, store=store, log=log, progress=stop_after_three)
    stored = load(store)
    assert sorted(r["x"] for r in stored.rows) == sorted(seen)
    assert all(r["status"] == "done" and r["y"] == r["x"] ** 2 for r in stored.rows)

    set_phase(log, "resumed")
    res = vgfast.sweep(grid, run=logged_run, store=store, log=log, progress=False)
    assert calls(log, "resumed") == sorted(set(range(12)) - set(seen))
    assert [r["y"] for r in res.rows] == [x * x for x in range(12)]


def test_store_schema_and_rows(tmp_path, log):
    store = str(tmp_path / "runs.sqlite")
    vgfast.sweep({"x": [5]}, run=logged_run, store=store, log=log, progress=False)
    db = sqlite3.connect(store)
    cols = [r[1] for r in db.execute("PRAGMA table_info(runs)")]
    for c in ("key", "status", "config", "result", "error", "started", "finished", "worker"):
        assert c in cols
    key, status, config, result, started, finished, worker = db.execute(
        "SELECT key, status, config, result, started, finished, worker FROM runs").fetchone()
    db.close()
    assert json.loads(config) == {"log": log, "x": 5} and json.loads(result) == {"y": 25}
    assert status == "done" and started <= finished and worker.startswith("thread:")
    assert key == run_key(json.dumps({"log": log, "x": 5}, sort_keys=True,
                                     separators=(",", ":")), run_name(logged_run))


# ---------------------------------------------------------------------------- bad input


def closure_run_factory():
    lock = threading.Lock()

    def run(config):
        with lock:
            return {}
    return run


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(grid={"seed": [0]}, nonsense=1), ValueError, "unknown config key.*nonsense"),
    (dict(grid={"seed": [np.int64(0)]}), TypeError, r"config\['seed'\] is a int64"),
    (dict(grid={"seed": [0]}, lr=float("nan")), ValueError, "NaN"),
    (dict(grid={"seed": [0]}, sizes=object()), TypeError, "only JSON values"),
    (dict(grid={"seed": [0]}, data="imagenet"), ValueError, "data must be one of"),
    (dict(grid={"seed": [0]}, optimizer="adam", momentum=0.9), ValueError,
     "not parameters of optimizer 'adam'"),
    (dict(grid={"seed": [0]}, activation="swish"), ValueError, "activation must be one of"),
    (dict(grid={"seed": [0]}, data_args={"n_bits": 3}), ValueError, "data_args"),
    (dict(grid={"seed": [0]}, data_args=[1, 2]), TypeError, "data_args must be a dict"),
    (dict(grid={"seed": [0]}, validation_split=1.5), ValueError, "validation_split"),
    (dict(grid={"seed": [0]}, sizes=None), ValueError, "sizes"),
    (dict(grid={"seed": []}), ValueError, "non-empty list"),
    (dict(grid=[("seed", [0])]), TypeError, "grid must be a dict"),
    (dict(grid={"seed": [0]}, seed=1), ValueError, "both in the grid"),
    (dict(grid={"seed": [0]}, retries=-1), ValueError, "retries"),
    (dict(grid={"seed": [0]}, run=lambda c: {}), TypeError, "not a lambda"),
    (dict(grid={"seed": [0]}, run=closure_run_factory()), TypeError, "picklable"),
])
def test_bad_input_is_refused_before_the_store_is_touched(tmp_path, kwargs, error, match):
    store = tmp_path / "runs.sqlite"
    base = dict(data="digits", sizes=[64, 5, 10], progress=False, store=str(store))
    with pytest.raises(error, match=match):
        vgfast.sweep(**{**base, **kwargs})
    assert not store.exists()


def test_bad_scheduler_and_progress(tmp_path):
    store = tmp_path / "runs.sqlite"
    with pytest.raises(ValueError, match="scheduler must be"):
        vgfast.sweep({"seed": [0]}, scheduler="gpu", progress=False, store=str(store), **DIGITS)
    with pytest.raises(TypeError, match="progress must be"):
        vgfast.sweep({"seed": [0]}, progress="yes", store=str(store), **DIGITS)
    assert not store.exists()


def test_a_file_that_is_not_a_store_is_refused_and_untouched(tmp_path, log):
    text = tmp_path / "notes.txt"
    text.write_bytes(b"my precious notes\n" * 100)
    other = tmp_path / "other.sqlite"
    db = sqlite3.connect(other)
    db.execute("CREATE TABLE runs (a, b)")
    db.execute("INSERT INTO runs VALUES (1, 2)")
    db.commit()
    db.close()
    for path in (text, other):
        before = path.read_bytes()
        with pytest.raises(StoreError, match="not a vgfast sweep store"):
            vgfast.sweep({"x": [1]}, run=logged_run, store=str(path), log=log, progress=False)
        with pytest.raises(StoreError, match="not a vgfast sweep store"):
            load(str(path))
        assert path.read_bytes() == before
    assert calls(log, "first") == []


def test_a_locked_store_is_refused_and_untouched(tmp_path, log):
    store = tmp_path / "runs.sqlite"
    vgfast.sweep({"x": [1]}, run=logged_run, store=str(store), log=log, progress=False)
    before = store.read_bytes()
    holder = sqlite3.connect(store, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another program writing it
    try:
        with pytest.raises(StoreLockedError, match="locked"):
            vgfast.sweep({"x": [1, 2]}, run=logged_run, store=str(store), log=log,
                         progress=False)
        with pytest.raises(StoreLockedError, match="locked"):
            load(str(store))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert store.read_bytes() == before
    assert calls(log, "first") == [1]


# ---------------------------------------------------------------------------- rows, pandas, plot


def test_rows_pandas_and_plot_with_seed_spread(tmp_path):
    res = vgfast.sweep({"lr": [0.1, 1.0], "seed": [0, 1, 2]}, data="digits",
                       sizes=[64, 12, 10], epochs=1, batch_size=50, progress=False)
    df = res.to_pandas()
    assert list(df.columns[:2]) == ["lr", "seed"] and len(df) == 6
    assert (df["status"] == "done").all()
    ax = res.plot("validation_accuracy", "lr")
    (line,) = ax.get_lines()
    for lr, mean in zip(*line.get_data()):
        vals = [r["validation_accuracy"] for r in res.rows if r["lr"] == lr]
        assert mean == pytest.approx(np.mean(vals), rel=1e-12)
    assert len(ax.collections) >= 1  # the min-max band and the seeds' dots
    with pytest.raises(ValueError, match="grid key"):
        res.plot("validation_accuracy", "epochs")
    with pytest.raises(ValueError, match="metric"):
        res.plot("no_such_metric", "lr")


# ---------------------------------------------------------------------------- progress and CLI


def test_progress_bar_shows_done_total_and_eta_only_when_asked(capsys, log):
    vgfast.sweep({"x": [1, 2, 3]}, run=logged_run, log=log, progress=True)
    err = capsys.readouterr().err
    assert "3/3 (3 done)" in err and "ETA" in err and "0/3" in err
    vgfast.sweep({"x": [1, 2, 3]}, run=logged_run, log=log)  # stderr is not a terminal here
    assert capsys.readouterr().err == ""


def test_cli_runs_a_toml_grid_resumes_and_refuses_bad_files(tmp_path, capsys, log):
    from vgfast.cli import main
    grid = tmp_path / "grid.toml"
    grid.write_text(f'run = "_sweep_runs:logged_run"\n[grid]\nx = [1, 2, "boom"]\n'
                    f'[fixed]\nlog = "{log}"\n')
    store = tmp_path / "runs.sqlite"
    assert main(["sweep", str(grid), "--store", str(store), "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert "3 runs: 2 done, 1 error, 0 lost" in out
    assert "error: x='boom': ValueError: boom: this run fails on purpose" in out
    # (load() gives rows in the order they were written: runs finish in any order)
    assert sorted(r["y"] for r in load(str(store)).rows if r["status"] == "done") == [1, 4]
    set_phase(log, "again")
    assert main(["sweep", str(grid), "--store", str(store), "--no-progress"]) == 1
    assert calls(log, "again") == ["boom"]

    before = store.read_bytes()
    for text, message in [("[grid]\nx = [1,\n", "not valid TOML"),
                          ("[grid]\nx = [1]\n[other]\na = 1\n", "unknown top-level key"),
                          ("x = [1]\n", "unknown top-level key.*'x'"),
                          ("[fixed]\na = 1\n", "needs a \\[grid\\] table"),
                          ('run = "nowhere:f"\n[grid]\nx = [1]\n', "cannot be imported"),
                          (f'[grid]\nx = [1]\n[fixed]\nlog = "{log}"\nlr = 0.1\n',
                           "unknown config key")]:
        grid.write_text(text)
        assert main(["sweep", str(grid), "--store", str(store)]) == 2
        assert re.search(message, capsys.readouterr().err)
    assert store.read_bytes() == before


def test_cli_default_run(tmp_path, capsys):
    from vgfast.cli import main
    grid = tmp_path / "grid.toml"
    grid.write_text('[grid]\nseed = [0, 1]\n[fixed]\ndata = "digits"\nsizes = [64, 8, 10]\n'
                    'epochs = 1\nbatch_size = 50\n')
    store = tmp_path / "runs.sqlite"
    assert main(["sweep", str(grid), "--store", str(store), "--scheduler", "threads"]) == 0
    assert "2 runs: 2 done" in capsys.readouterr().out
    rows = load(str(store)).rows
    assert sorted(r["seed"] for r in rows) == [0, 1] and all(0 < r["train_accuracy"] <= 1 for r in rows)


def test_a_running_sweep_holds_its_store_against_a_second_writer(tmp_path, log):
    store = str(tmp_path / "runs.sqlite")
    seen = []

    def meanwhile(n, total, row):  # runs inside the first sweep, after its first commit
        if seen:
            return
        with pytest.raises(StoreLockedError, match="locked"):
            vgfast.sweep({"x": [7]}, run=logged_run, store=store, log=log, progress=False)
        other = sqlite3.connect(store, timeout=0)
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("INSERT INTO runs (key, status, run, config) "
                          "VALUES ('k', 'done', 'r', '{}')")
        other.close()
        seen.append(n)

    res = vgfast.sweep({"x": [1, 2, 3]}, run=logged_run, store=store, log=log,
                       progress=meanwhile)
    assert seen == [1] and [r["y"] for r in res.rows] == [1, 4, 9]
    assert calls(log, "first") == [1, 2, 3]  # the refused sweep ran nothing
    assert len(load(store).rows) == 3
