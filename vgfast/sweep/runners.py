"""Where runs execute: in-process threads, or Dask (a LocalCluster sweep starts, a scheduler
address, or a Client).

Every run travels as plain data, ``(run, config)``; :func:`execute` calls ``run(config)`` on the
worker and sends back plain data: the status, the result as JSON text (or the traceback), the
start and end times and where it ran. It never raises, so any exception the caller sees from a
Dask future is the runner's own: a worker that died (``KilledWorker``), a run the scheduler
cancelled, or a function the worker could not unpickle.
"""
import os
import pickle
import socket
import threading
import time
import traceback
import uuid

from .store import canonical_json

_blas_limited = False


def _one_blas_thread():
    """Limit this worker process's BLAS to one thread (each Dask worker runs one run per core).

    The BLAS is loaded first (the engine's scipy import), so the limit reaches it."""
    global _blas_limited
    if _blas_limited:
        return
    import scipy.linalg  # noqa: F401  (loads the BLAS the engine calls)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # Dask's nanny already sets OPENBLAS_NUM_THREADS=1 for its workers
        pass
    else:
        threadpool_limits(1, user_api="blas")  # for the life of the worker process
    _blas_limited = True


def execute(run, config, on_dask):
    """Run ``run(config)`` and return plain data; never raises (the worker-side half of a run).

    Returns
    -------
    dict with ``status`` (``done`` or ``error``), ``result`` (canonical JSON text or None),
    ``error`` (a traceback or None), ``started``, ``finished`` (Unix times), ``worker``.
    """
    if on_dask:
        from distributed import get_worker
        worker = get_worker().address
        _one_blas_thread()
    else:
        worker = f"thread:{threading.current_thread().name}@{socket.gethostname()}"
    started = time.time()
    try:
        result = run(config)
        if not isinstance(result, dict):
            raise TypeError(f"the run function must return a dict of results; "
                            f"{getattr(run, '__qualname__', run)!r} returned a "
                            f"{type(result).__name__}")
        text, status, error = canonical_json(result, "the run's result"), "done", None
    except BaseException:  # noqa: B036  the run's failure is data: recorded, the others go on
        text, status, error = None, "error", traceback.format_exc()
    return {"status": status, "result": text, "error": error, "started": started,
            "finished": time.time(), "worker": worker}


def _n_cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def check_picklable(run):
    """Raise TypeError unless `run` can travel to a worker process (as Dask sends it)."""
    try:
        import cloudpickle as pickler  # what Dask uses; pickles __main__ functions by value
    except ImportError:
        pickler = pickle
    try:
        pickler.dumps(run)
    except Exception as e:
        raise TypeError(f"run must be a picklable function (define it at the top level of a "
                        f"module); {run!r} cannot be pickled: {e}") from None


class ThreadRunner:
    """In-process threads, one per core. The engine releases the GIL, so runs go in parallel;
    the caller holds the BLAS to one thread for the whole sweep (see :func:`vgfast.sweep`)."""

    name = "threads"

    def __init__(self, n_threads=None):
        from concurrent.futures import ThreadPoolExecutor
        self.n_workers = n_threads or _n_cores()
        self.pool = ThreadPoolExecutor(self.n_workers, thread_name_prefix="vgfast-sweep")

    def capacity(self):
        return self.n_workers

    def submit(self, run, config):
        return self.pool.submit(execute, run, config, False)

    def as_completed(self, futures):
        return _Completed(futures)

    def outcome(self, future):
        """('done'|'error', payload dict) from a finished future."""
        out = future.result()
        return out["status"], out

    def close(self, cancel=False):
        # on cancel the runs already started finish in their threads; their results are dropped
        self.pool.shutdown(wait=not cancel, cancel_futures=cancel)


class _Completed:
    """concurrent.futures' as_completed that also takes futures added while iterating."""

    def __init__(self, futures):
        import queue
        self.done_queue = queue.Queue()
        self.pending = 0
        for f in futures:
            self.add(f)

    def add(self, future):
        self.pending += 1
        future.add_done_callback(self.done_queue.put)

    def __iter__(self):
        while self.pending:
            # a timeout keeps the wait interruptible (Ctrl-C) on every platform
            while True:
                try:
                    future = self.done_queue.get(timeout=0.5)
                    break
                except Exception:  # queue.Empty
                    continue
            self.pending -= 1
            yield future


class DaskRunner:
    """Runs on dask.distributed: ``"processes"`` (a LocalCluster this runner starts and stops:
    one single-threaded worker process per core), ``"tcp://host:port"`` (an existing scheduler),
    or a ``distributed.Client`` (used as is, not closed).

    Dask itself reruns a task whose worker died until ``distributed.scheduler.allowed-failures``
    deaths have happened, then reports ``KilledWorker``. The LocalCluster started here sets it
    to 0, so every death reaches the caller, which reruns exactly ``retries`` times; the caller
    gives the cluster only as many runs as it has threads, so a worker that dies held only the
    run it was running.
    """

    def __init__(self, scheduler):
        try:
            import distributed
        except ImportError:
            raise ImportError(f'scheduler={scheduler!r} needs dask.distributed: pip install '
                              f'"vgfast[cluster]"') from None
        self.cluster = None
        self.own_client = True
        if isinstance(scheduler, distributed.Client):
            self.client, self.own_client = scheduler, False
            self.name = f"client of {scheduler.scheduler.address}"
        elif scheduler == "processes":
            import logging

            import dask
            # every worker death reaches the caller, which counts the retries; no statistical
            # profiler sampling the workers' stacks every 10 ms (it serves only the dashboard)
            with dask.config.set({"distributed.scheduler.allowed-failures": 0,
                                  "distributed.worker.profile.enabled": False}):
                self.cluster = distributed.LocalCluster(
                    n_workers=_n_cores(), threads_per_worker=1, processes=True,
                    dashboard_address=":0", silence_logs=logging.CRITICAL)
            self.client = distributed.Client(self.cluster)
            self.name = "processes"
        else:
            try:
                self.client = distributed.Client(scheduler, timeout="10s")
            except OSError as e:
                raise ConnectionError(f"scheduler: no Dask scheduler answered at {scheduler!r} "
                                      f"({e}); start one with `dask scheduler`") from None
            self.name = scheduler
        self._distributed = distributed

    def capacity(self):
        """Threads of the workers connected now (it changes as workers come and go)."""
        return sum(self.client.nthreads().values())

    def submit(self, run, config):
        return self.client.submit(execute, run, config, True, pure=False,
                                  key=f"vgfast-run-{uuid.uuid4().hex}")

    def as_completed(self, futures):
        return self._distributed.as_completed(futures)

    def outcome(self, future):
        """('done'|'error'|'died'|'lost', payload) from a finished future."""
        if future.status == "finished":
            out = future.result()
            future.release()
            return out["status"], out
        if future.status == "cancelled":
            return "lost", {"error": "the scheduler cancelled the run (did it restart, or did "
                                     "the client lose it?)", "deaths": 0, "worker": None}
        exc = future.exception()
        tb = future.traceback()
        future.release()
        from distributed.scheduler import KilledWorker
        if isinstance(exc, KilledWorker):
            last = getattr(exc, "last_worker", None)
            return "died", {"deaths": getattr(exc, "allowed_failures", 0) + 1,
                            "worker": getattr(last, "address", None),
                            "error": f"KilledWorker: {exc}"}
        text = "".join(traceback.format_exception(type(exc), exc, tb))
        return "error", {"error": "the worker could not run it (is the run's module importable "
                                  "on every worker?):\n" + text, "worker": None,
                         "started": None, "finished": time.time(), "result": None}

    def close(self, cancel=False):
        if self.own_client:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def check_scheduler(scheduler):
    """Raise ValueError unless `scheduler` is one :func:`make_runner` takes (nothing starts)."""
    if scheduler is None or scheduler in ("threads", "processes"):
        return
    if isinstance(scheduler, str) and "://" in scheduler:
        return
    if type(scheduler).__name__ == "Client" and type(scheduler).__module__.startswith(
            "distributed"):
        return
    raise ValueError(f"scheduler must be None, 'threads', 'processes', a Dask scheduler address "
                     f"such as 'tcp://host:8786', or a distributed.Client; got {scheduler!r}")


def make_runner(scheduler):
    """A runner for the `scheduler` argument of :func:`vgfast.sweep`."""
    check_scheduler(scheduler)
    if scheduler is None or scheduler == "threads":
        return ThreadRunner()
    return DaskRunner(scheduler)
