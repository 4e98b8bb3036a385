"""What vgfast.sweep's machinery costs: 32 training runs of about 1 s each on 2 cores.

Run: python -m pytest bench/test_sweep.py --benchmark-only --benchmark-group-by=group

32 runs       the same 32 configs (digits, [64, 100, 100, 10], 40 epochs of mini-batch 10, 16
              seeds x 2 learning rates) run by two hand-written threads calling
              vgfast.sweep.train_run directly (the floor), by vgfast.sweep on threads with a
              SQLite store, by vgfast.sweep on a LocalCluster already running (a Client), and
              by vgfast.sweep(scheduler="processes"), which starts and stops its LocalCluster.
              extra_info: wall time and CPU time (this process's threads, plus the workers'
              processes on the running LocalCluster; the worker processes of "processes" are
              not counted), and their ratios to the floor. On a machine shared with other jobs
              the CPU ratio is the one to read: wall time there measures the neighbours.
cluster       LocalCluster start-up and shut-down (two single-threaded worker processes), and
              the per-run cost of the machinery: 64 runs that return at once, through a
              running LocalCluster and through threads (wall time per run, two at a time, and
              the calling process's CPU time per run: validation, submission, the store).
"""
import logging
import threading
import time

import pytest
from threadpoolctl import threadpool_limits

import vgfast
from vgfast.sweep.training import train_run

distributed = pytest.importorskip("distributed")
pytest.importorskip("sklearn")

N_CORES = 2
GRID = {"seed": list(range(16)), "lr": [0.05, 0.1]}
FIXED = dict(data="digits", sizes=[64, 100, 100, 10], epochs=40, batch_size=10)
CONFIGS = [{**FIXED, "seed": s, "lr": lr} for s in GRID["seed"] for lr in GRID["lr"]]


def two_threads():
    """The floor: two threads, each training its half of the configs one after the other."""
    results = [None] * len(CONFIGS)

    def work(i0):
        for i in range(i0, len(CONFIGS), N_CORES):
            results[i] = train_run(CONFIGS[i])

    ts = [threading.Thread(target=work, args=(i,)) for i in range(N_CORES)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return results


def timed(fn):
    """fn() -> (its result, wall seconds, CPU seconds of this process)."""
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def cluster():
    """A LocalCluster as vgfast.sweep(scheduler="processes") starts one."""
    import dask
    with dask.config.set({"distributed.scheduler.allowed-failures": 0,
                          "distributed.worker.profile.enabled": False}):
        return distributed.LocalCluster(n_workers=N_CORES, threads_per_worker=1,
                                        processes=True, dashboard_address=":0",
                                        silence_logs=logging.CRITICAL)


@pytest.fixture(scope="module")
def floor():
    with threadpool_limits(1, "blas"):  # (module fixtures run before conftest's one_thread)
        train_run(CONFIGS[0])  # data loaded and code warm, as in every variant
        _, wall, cpu = timed(two_threads)
    return wall, cpu


def workers_cpu(client):
    """Total CPU seconds the cluster's worker processes have used so far."""
    return sum(client.run(time.process_time).values())


@pytest.mark.benchmark(group="sweep: 32 runs of ~1 s on 2 cores")
@pytest.mark.parametrize("how", ["two hand-written threads", "sweep threads + store",
                                 "sweep on a running LocalCluster", "sweep processes "
                                 "(starts its LocalCluster)"])
def test_32_runs(benchmark, tmp_path, floor, how):
    counter = iter(range(100))
    extra = {}

    def go():
        store = str(tmp_path / f"runs{next(counter)}.sqlite")
        if how.startswith("two"):
            return two_threads()
        if how.startswith("sweep threads"):
            return vgfast.sweep(GRID, store=store, progress=False, **FIXED)
        if how.startswith("sweep on a running"):
            return vgfast.sweep(GRID, store=store, scheduler=extra["client"], progress=False,
                                **FIXED)
        return vgfast.sweep(GRID, store=store, scheduler="processes", progress=False, **FIXED)

    if how.startswith("sweep on a running"):
        lc = cluster()
        extra["client"] = distributed.Client(lc)
        extra["client"].run(train_run, CONFIGS[0])  # warm the workers as the floor is warm
    try:
        walls, cpus = [], []

        def once():
            before = workers_cpu(extra["client"]) if "client" in extra else 0.0
            out, w, c = timed(go)
            walls.append(w)
            cpus.append(c + (workers_cpu(extra["client"]) - before if "client" in extra else 0))
            return out

        out = benchmark.pedantic(once, rounds=2, iterations=1)
    finally:
        if "client" in extra:
            extra["client"].close()
            lc.close()
    if not how.startswith("two"):
        assert all(r["status"] == "done" for r in out.rows) and len(out.rows) == 32
    benchmark.extra_info.update(
        wall_s=min(walls), cpu_s=min(cpus), floor_wall_s=floor[0], floor_cpu_s=floor[1],
        wall_ratio_to_floor=min(walls) / floor[0], cpu_ratio_to_floor=min(cpus) / floor[1])


def noop_run(config):
    return {"i": config["i"]}


@pytest.mark.benchmark(group="sweep: LocalCluster start-up and shut-down")
def test_local_cluster_start_and_stop(benchmark):
    def start_stop():
        lc = cluster()
        c = distributed.Client(lc)
        c.close()
        lc.close()
    benchmark.pedantic(start_stop, rounds=3, iterations=1)


@pytest.mark.benchmark(group="sweep: per-run cost (64 runs that return at once)")
@pytest.mark.parametrize("where", ["threads", "running LocalCluster"])
def test_per_run_overhead(benchmark, tmp_path, where):
    counter = iter(range(100))
    lc = client = None
    if where != "threads":
        lc = cluster()
        client = distributed.Client(lc)
    cpus = []
    try:
        def go():
            c = time.process_time()
            out = vgfast.sweep({"i": list(range(64))}, run=noop_run, progress=False,
                               store=str(tmp_path / f"r{next(counter)}.sqlite"),
                               scheduler=client)
            cpus.append(time.process_time() - c)
            return out
        benchmark.pedantic(go, rounds=3, iterations=1)
    finally:
        if client is not None:
            client.close()
            lc.close()
    benchmark.extra_info["ms_per_run"] = 1e3 * benchmark.stats.stats.min / 64
    benchmark.extra_info["caller_cpu_ms_per_run"] = 1e3 * min(cpus) / 64
