"""sweep(): a grid of configs -> runs on a runner -> one row per run in the store.

Submit plain data, build compiled objects inside the worker, collect with as_completed, one
writer for the results (this process).
"""
import collections
import itertools
import json
import signal
import sys
import threading
import time
from contextlib import contextmanager

from ..threads import blas_threads
from .result import SweepResult
from .runners import check_picklable, check_scheduler, make_runner
from .store import Store, canonical_json, run_key, run_name
from .training import check_config, train_run


def _check_grid(grid, fixed):
    if not isinstance(grid, dict):
        raise TypeError(f"grid must be a dict of name -> list of values; got "
                        f"{type(grid).__name__}")
    for k, values in grid.items():
        if not isinstance(k, str):
            raise TypeError(f"grid keys must be str names; got {k!r}")
        if not isinstance(values, (list, tuple)) or not len(values):
            raise ValueError(f"grid[{k!r}] must be a non-empty list of values; got {values!r}")
    both = sorted(set(grid) & set(fixed))
    if both:
        raise ValueError(f"{both} given both in the grid and as fixed keyword arguments")


def configs_of(grid, fixed):
    """The runs' configs: ``{**fixed, **point}`` for each point of the product of the grid's
    lists, in order (the last key varies fastest); each is the JSON round trip of itself, so a
    run sees exactly what the store holds."""
    _check_grid(grid, fixed)
    names = list(grid)
    out = []
    for values in itertools.product(*(grid[k] for k in names)):
        config = {**fixed, **dict(zip(names, values))}
        text = canonical_json(config, "config")
        out.append((text, json.loads(text)))
    return out


def _check_run(run):
    if not callable(run):
        raise TypeError(f"run must be a function run(config) -> dict; got {type(run).__name__}")
    name = getattr(run, "__qualname__", None)
    if not isinstance(name, str) or not isinstance(getattr(run, "__module__", None), str):
        raise TypeError(f"run must be a named function (its name is part of every run's key); "
                        f"{run!r} has no __module__/__qualname__")
    if "<lambda>" in name:
        raise TypeError("run must be a named function (def), not a lambda: its name is part of "
                        "every run's key, and all lambdas share one name")
    check_picklable(run)


class _Bar:
    """done/total and an ETA on stderr, redrawn in place."""

    def __init__(self, total, already, runner_name):
        self.total, self.already, self.t0 = total, already, time.perf_counter()
        self.counts = {"done": already, "error": 0, "lost": 0}
        self.runner_name = runner_name
        self.draw()

    def update(self, status):
        self.counts[status] += 1
        self.draw()

    def draw(self):
        n = sum(self.counts.values())
        new = n - self.already
        el = time.perf_counter() - self.t0
        eta = "--" if not new else _clock(el / new * (self.total - n))
        bar = "#" * int(30 * n / max(self.total, 1))
        extra = "".join(f", {v} {k}" for k, v in self.counts.items() if k != "done" and v)
        sys.stderr.write(f"\r[{bar:<30}] {n}/{self.total} ({self.counts['done']} done{extra}) "
                         f"elapsed {_clock(el)} ETA {eta} on {self.runner_name}  ")
        sys.stderr.flush()

    def close(self):
        sys.stderr.write("\n")
        sys.stderr.flush()


def _clock(seconds):
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


@contextmanager
def _no_interrupt():
    """Hold Ctrl-C until the block ends (a result being committed is kept), then raise it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    try:
        old = signal.signal(signal.SIGINT, lambda *a: caught.append(a))
    except ValueError:  # not the main interpreter
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)
        if caught:
            raise KeyboardInterrupt


def _check_progress(progress):
    if not (progress is None or isinstance(progress, bool) or callable(progress)):
        raise TypeError(f"progress must be None (a bar on a terminal), True, False or a "
                        f"callable(n_finished, total, row); got {progress!r}")


def _progress_of(progress, total, already, runner):
    """(bar or None, callback or None)."""
    if callable(progress):
        return None, progress
    if progress is None:
        progress = sys.stderr.isatty()
    return (_Bar(total, already, runner.name) if progress else None), None


def sweep(grid, *, run=None, store=None, scheduler=None, retries=2, progress=None, **fixed):
    """Run ``run(config)`` for every point of a grid, in parallel, keeping one row per run in a
    SQLite store; calling it again runs only what is not ``done``.

    Parameters
    ----------
    grid : dict of str -> list
        The runs are the product of the lists (``seed`` is a grid key like any other); each
        run's config is ``{**fixed, **point}`` of plain JSON values.
    run : function config -> dict, optional
        A picklable named function returning a dict of JSON-able results. Default:
        :func:`vgfast.sweep.training.train_run`, which trains ``vgfast.Network`` on a data set
        by name (config keys: Network's and train()'s parameters, ``data``, ``optimizer`` and
        its hyper-parameters, ``seed``; see :mod:`vgfast.sweep.training`).
    store : str or os.PathLike, optional
        The SQLite file of results (created if missing). Without it the results live in memory
        for this call only.
    scheduler : None, "threads", "processes", "tcp://host:port" or distributed.Client
        None/"threads": threads of this process, one per core, one BLAS thread each (the engine
        releases the GIL). "processes": a ``dask.distributed.LocalCluster`` of one
        single-threaded worker process per core, started and stopped here. An address: an
        existing Dask scheduler (``dask scheduler``; workers joined with ``dask worker``). A
        Client: used as is.
    retries : int >= 0, default 2
        How many times a run whose worker died is run again before it is recorded ``lost``.
        A run that raises is not retried in this call (it is recorded ``error``).
    progress : None, bool or callable
        A bar with done/total/ETA on stderr (None: only when stderr is a terminal), or a
        function ``progress(n_finished, total, row)`` called after each run is stored.
    **fixed
        Config keys shared by every run.

    Returns
    -------
    SweepResult
        ``.rows`` (a dict per run: config keys, result keys, ``status``, ``error``),
        ``.to_pandas()``, ``.plot(metric, x)``.

    Notes
    -----
    Keys: a run's key is a hash of its canonical config JSON and the run function's
    module-qualified name; a ``done`` key is never run again, ``error`` and ``lost`` keys are.
    Only this process writes the store, and it commits each result as it arrives: interrupting
    the sweep (Ctrl-C) keeps every finished run, and the next call runs only the others.
    """
    run = train_run if run is None else run
    _check_run(run)
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ValueError(f"retries must be an integer >= 0; got {retries!r}")
    check_scheduler(scheduler)
    _check_progress(progress)
    configs = configs_of(grid, fixed)
    if run is train_run:
        for _, config in configs:
            check_config(config)
    name = run_name(run)
    keyed = {}
    for text, config in configs:  # a point given twice is one run
        keyed.setdefault(run_key(text, name), (text, config))
    keys = list(keyed)
    db = Store(store) if store is not None else Store.memory()
    try:
        statuses = db.statuses(keys)
        todo = [k for k in keys if statuses.get(k) != "done"]
        if todo:
            _run_all(db, run, name, keyed, todo, scheduler, retries, progress, len(keys))
        return SweepResult(db.rows(keys), list(grid))
    finally:
        db.close()


def _run_all(db, run, name, keyed, todo, scheduler, retries, progress, total):
    """Keep as many runs in flight as the runner has threads (a sliding window over the queue:
    a worker holds only the run it is running, so a worker's death touches that run alone, and
    runs not yet started stay here, to be dropped cleanly on interrupt); store each result as
    it arrives."""
    runner = make_runner(scheduler)
    bar, callback = _progress_of(progress, total, total - len(todo), runner)
    deaths = dict.fromkeys(todo, 0)
    queue = collections.deque(todo)
    in_flight = {}
    finished = total - len(todo)
    limit = blas_threads(1) if runner.name == "threads" else None
    try:
        if limit is not None:
            try:
                limit.__enter__()
            except ImportError:
                limit = None  # threadpoolctl missing: the BLAS keeps its own thread count
        pending = runner.as_completed([])

        def fill():
            room = max(runner.capacity(), 1) - len(in_flight)
            while queue and room > 0:
                key = queue.popleft()
                future = runner.submit(run, keyed[key][1])
                in_flight[future] = key
                pending.add(future)
                room -= 1

        fill()
        for fut in pending:
            key = in_flight.pop(fut)
            status, out = runner.outcome(fut)
            retry = False
            if status == "died":
                deaths[key] += out["deaths"]
                retry = deaths[key] <= retries
                if retry:
                    queue.appendleft(key)
                else:
                    status = "lost"
                    out = {**out, "error": f"{deaths[key]} worker(s) died while running it "
                                           f"(retries={retries}); last: {out['error']}"}
            fill()  # the freed thread starts its next run while this result is committed
            if retry:
                continue
            with _no_interrupt():
                db.write(key, status, name, keyed[key][0], result_json=out.get("result"),
                         error=out.get("error"), started=out.get("started"),
                         finished=out.get("finished"), worker=out.get("worker"),
                         attempts=deaths[key] + (status != "lost"))
            finished += 1
            if bar is not None:
                bar.update(status)
            if callback is not None:
                callback(finished, total, SweepResult._row(db.rows([key])[0]))
        runner.close()
    except BaseException:
        runner.close(cancel=True)
        raise
    finally:
        if limit is not None:
            limit.__exit__(None, None, None)
        if bar is not None:
            bar.close()


def load(store):
    """A store's runs, every one of them, as a :class:`SweepResult` (read only; the grid keys
    are the config keys whose values differ between runs)."""
    with Store(store, exclusive=False) as db:
        runs = db.rows()
    keys = {}
    for r in runs:
        for k, v in r["config"].items():
            keys.setdefault(k, set()).add(json.dumps(v, sort_keys=True))
    varying = [k for k, vals in keys.items() if len(vals) > 1 or
               sum(k in r["config"] for r in runs) < len(runs)]
    return SweepResult(runs, varying)
