"""The job runner: the independent training runs of an experiment, in threads of this process
(the default) or on Dask (``Config.scheduler``: ``"processes"`` or a scheduler address).

A job is plain data (a tuple of numbers, names and picklable factories) and ``fn(job, data)``
builds its network where it runs, so the numbers are the same whichever scheduler runs it: each
job is seeded, and BLAS runs one thread per job everywhere. On Dask the experiment's data are
scattered once to every worker, the jobs are submitted, and the results are collected with
``as_completed`` into job order; the Dask side (a LocalCluster of single-threaded worker
processes, an address, a Client) is :class:`vgfast.sweep.runners.DaskRunner`'s.
"""
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from functools import partial

from ..sweep.runners import check_scheduler

__all__ = ["Progress", "check_scheduler", "scheduler_session", "uses_dask"]


class Progress:
    """A one-line progress bar on stderr: ``[#####     ] label 5/10 3.2s``."""

    def __init__(self, total, label, enabled=True, width=30):
        self.total, self.label, self.enabled, self.width = max(1, total), label, enabled, width
        self.done, self.t0 = 0, time.perf_counter()
        self._draw()

    def tick(self, n=1):
        self.done += n
        self._draw()

    def _draw(self):
        if not self.enabled:
            return
        bar = "#" * int(self.width * self.done / self.total)
        sys.stderr.write(f"\r[{bar:<{self.width}}] {self.label} {self.done}/{self.total} "
                         f"{time.perf_counter() - self.t0:.1f}s")
        if self.done >= self.total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def uses_dask(scheduler):
    """True when `scheduler` sends the jobs to Dask (anything but None and ``"threads"``)."""
    return scheduler is not None and not (isinstance(scheduler, str) and scheduler == "threads")


@contextmanager
def scheduler_session(cfg):
    """Keep the Dask runner the first job on ``cfg.scheduler`` starts until the block ends (a
    LocalCluster then starts once for every experiment of a :func:`~vgfast.reproduce.run`,
    and only when one has training jobs); the block that opened it closes it."""
    if cfg._runner is not None:  # inside an outer session
        yield
        return
    cfg._runner = []  # empty until a job needs the runner
    try:
        yield
    finally:
        started, cfg._runner = cfg._runner, None
        for runner in started:
            runner.close()


def _dask_client(cfg):
    """The Client of the session's runner, started on first use."""
    if not cfg._runner:
        check_scheduler(cfg.scheduler)
        from ..sweep.runners import DaskRunner
        cfg._runner.append(DaskRunner(cfg.scheduler))
    return cfg._runner[0].client


def _parallel_map(fn, jobs, data, cfg, label):
    """[fn(job, data) for job in jobs], in threads when possible (the engine releases the GIL)
    or on Dask when ``cfg.scheduler`` asks for it.

    :func:`run` holds BLAS to one thread (threadpoolctl), and Dask workers run with one BLAS
    thread, so every run is bitwise the same whatever the number of workers or the scheduler;
    without threadpoolctl the threaded runs go one by one.
    """
    jobs = list(jobs)
    bar = Progress(len(jobs), label, cfg.progress)
    if uses_dask(cfg.scheduler):
        with scheduler_session(cfg):
            return _dask_map(_dask_client(cfg), fn, jobs, data, bar, label)
    workers = min(cfg.n_jobs, len(jobs)) if _single_thread_blas() is not None else 1
    if workers <= 1:
        out = []
        for job in jobs:
            out.append(fn(job, data))
            bar.tick()
        return out
    with ThreadPoolExecutor(workers) as pool:
        futures = [pool.submit(fn, job, data) for job in jobs]
        for _ in as_completed(futures):
            bar.tick()
        return [f.result() for f in futures]


def _on_worker(fn, job, data):
    """One job on a Dask worker, its BLAS held to one thread (for the worker's life, as
    vgfast.sweep's workers do)."""
    from ..sweep.runners import _one_blas_thread
    _one_blas_thread()
    return fn(job, data)


def _dask_map(client, fn, jobs, data, bar, label):
    """Scatter `data` to every worker once, submit the jobs, collect with as_completed."""
    from distributed import as_completed as dask_completed

    tag = uuid.uuid4().hex
    [shared] = client.scatter([data], broadcast=True, hash=False)
    futures = [client.submit(_on_worker, fn, job, shared, pure=False,
                             key=f"vgfast-reproduce-{label}-{i}-{tag}")
               for i, job in enumerate(jobs)]
    where = {f.key: i for i, f in enumerate(futures)}
    out = [None] * len(jobs)
    try:
        for future in dask_completed(futures):
            out[where[future.key]] = future.result()  # a job's exception is raised here
            future.release()
            bar.tick()
    finally:
        client.cancel(futures + [shared])
    return out


def _single_thread_blas():
    """A context manager holding BLAS to one thread, or None without threadpoolctl."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    return partial(threadpool_limits, limits=1, user_api="blas")
