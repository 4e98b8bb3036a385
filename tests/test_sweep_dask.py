"""vgfast.sweep on dask.distributed with real worker processes: a worker killed in the middle
of a run, a run that raises, a worker that always dies, an interrupted sweep resumed, and the
same numbers from threads, a LocalCluster ("processes") and a tcp:// address."""
import os
import sys
import threading
import time

import pytest

import vgfast
from vgfast.sweep import load

distributed = pytest.importorskip("distributed")
pytest.importorskip("sklearn")
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="kills processes with SIGKILL")

from _sweep_runs import calls, chaos_run, kill_the_victim, logged_run, set_phase  # noqa: E402


@pytest.fixture(scope="module")
def loopback_cluster():
    """A cluster the test starts on loopback and reaches by its tcp:// address, configured as a
    user would configure `dask scheduler` for vgfast (see vgfast.sweep's docstring)."""
    import logging

    import dask
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                           host="127.0.0.1", dashboard_address=":0",
                                           silence_logs=logging.CRITICAL)
    yield cluster
    cluster.close()


def test_killed_worker_is_retried_a_failing_run_recorded_a_dying_one_lost(tmp_path):
    marks = str(tmp_path)
    stop = threading.Event()
    killer = threading.Thread(target=kill_the_victim, args=(marks, stop), daemon=True)
    killer.start()
    try:
        res = vgfast.sweep({"mode": ["ok", "victim", "raise", "suicide", "ok2"]}, run=chaos_run,
                           store=str(tmp_path / "runs.sqlite"), scheduler="processes",
                           retries=1, marks=marks, progress=False)
    finally:
        stop.set()
    rows = {r["mode"]: r for r in res.rows}
    runs = {r["config"]["mode"]: r for r in res.runs}
    assert os.path.exists(os.path.join(marks, "victim.pid"))  # it was killed once ...
    assert rows["victim"]["status"] == "done"  # ... ran again and finished
    assert runs["victim"]["attempts"] == 2
    assert rows["victim"]["pid"] != int(open(os.path.join(marks, "victim.pid")).read())
    assert rows["ok"]["status"] == rows["ok2"]["status"] == "done"
    assert rows["raise"]["status"] == "error"
    assert "RuntimeError: this run fails on purpose" in rows["raise"]["error"]
    assert "Traceback" in rows["raise"]["error"]
    assert rows["suicide"]["status"] == "lost"  # retries=1: two deaths, then lost
    assert open(os.path.join(marks, "suicides")).read() == "xx", open(os.path.join(marks, "starts")).read()
    assert "2 worker(s) died" in rows["suicide"]["error"]
    assert all(r["worker"].startswith("tcp://") for m, r in runs.items() if m != "raise")


def test_same_numbers_from_threads_processes_and_a_tcp_address(loopback_cluster):
    grid = {"seed": [0, 1], "activation": ["sigmoid", "tanh"]}
    fixed = dict(data="digits", sizes=[64, 12, 10], epochs=2, batch_size=20, lr=0.3,
                 record=["grad_norms"], progress=False)
    results = {s: vgfast.sweep(grid, scheduler=s, **fixed)
               for s in ("threads", "processes", loopback_cluster.scheduler_address)}
    assert loopback_cluster.scheduler_address.startswith("tcp://127.0.0.1:")
    workers = {s: {r["worker"].split(":")[0] for r in res.runs} for s, res in results.items()}
    assert workers["threads"] == {"thread"} and workers["processes"] == {"tcp"}

    def numbers(res):
        return [{k: v for k, v in r.items() if k not in ("seconds", "history")} | {
            "grad_norms": r["history"].grad_norms.tolist()} for r in res.rows]
    base = numbers(results["threads"])
    assert all(r["status"] == "done" for r in base) and len(base) == 4
    for s, res in results.items():
        assert numbers(res) == base, s  # bitwise: one BLAS thread everywhere


def test_interrupted_sweep_on_a_cluster_resumes_only_the_missing_runs(tmp_path,
                                                                       loopback_cluster):
    log = tmp_path / "log"
    log.mkdir()
    log = str(log)
    set_phase(log, "first")
    store = str(tmp_path / "runs.sqlite")
    grid = {"x": list(range(8))}
    seen = []

    def stop_after_two(n, total, row):
        seen.append(row["x"])
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        vgfast.sweep(grid, run=logged_run, store=store, log=log, progress=stop_after_two,
                     scheduler=loopback_cluster.scheduler_address)
    assert sorted(r["x"] for r in load(store).rows) == sorted(seen)
    # a run already executing when the caller stopped finishes on its worker (dask cannot stop
    # a running task); let it end before the next phase, or its log line would count there
    with distributed.Client(loopback_cluster) as client:
        deadline = time.monotonic() + 30
        while any(client.processing().values()) and time.monotonic() < deadline:
            time.sleep(0.05)
    set_phase(log, "resumed")
    with distributed.Client(loopback_cluster) as client:  # a Client is used as is, not closed
        res = vgfast.sweep(grid, run=logged_run, store=store, log=log, progress=False,
                           scheduler=client)
        assert client.status == "running"
    assert calls(log, "resumed") == sorted(set(range(8)) - set(seen))
    assert [r["y"] for r in res.rows] == [x * x for x in range(8)]
