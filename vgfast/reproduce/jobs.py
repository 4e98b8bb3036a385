"""The job runner: the independent training runs of the experiments, in threads of this process
(the default) or on Dask (``Config.scheduler``: ``"processes"`` or a scheduler address).

An experiment that trains networks is written as a generator (its *plan*): it yields a
:class:`Batch` of independent jobs, receives their results (in job order) and returns its
results. :func:`run_plan` runs one plan, its batches through :func:`_parallel_map`;
:class:`Schedule` runs the plans of many experiments at once on one pool of threads, every job
of every experiment ordered longest first, so the cores stay busy until the end instead of
waiting at the end of each experiment for its slowest job (see :func:`vgfast.reproduce.run`).

A job is plain data (a tuple of numbers, names and picklable factories) and ``fn(job, data)``
builds its network where it runs, so the numbers are the same whichever scheduler runs it: each
job is seeded, and BLAS runs one thread per job everywhere. On Dask the experiment's data are
scattered once to every worker, the jobs are submitted, and the results are collected with
``as_completed`` into job order; the Dask side (a LocalCluster of single-threaded worker
processes, an address, a Client) is :class:`vgfast.sweep.runners.DaskRunner`'s.
"""
import heapq
import itertools
import queue
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Callable

from ..sweep.runners import check_scheduler

__all__ = ["Batch", "Progress", "Schedule", "check_scheduler", "run_plan", "scheduler_session",
           "uses_dask"]


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


def _timed(fn, job, data):
    """(fn(job, data), CPU seconds of the thread that ran it)."""
    c = time.thread_time()
    out = fn(job, data)
    return out, time.thread_time() - c


def _parallel_map(fn, jobs, data, cfg, label, cpu=None):
    """[fn(job, data) for job in jobs], in threads when possible (the engine releases the GIL)
    or on Dask when ``cfg.scheduler`` asks for it; each job's CPU seconds are appended to
    `cpu` when it is a list.

    :func:`run` holds BLAS to one thread (threadpoolctl), and Dask workers run with one BLAS
    thread, so every run is bitwise the same whatever the number of workers or the scheduler;
    without threadpoolctl the threaded runs go one by one.
    """
    jobs = list(jobs)
    bar = Progress(len(jobs), label, cfg.progress)
    if uses_dask(cfg.scheduler):
        with scheduler_session(cfg):
            timed = _dask_map(_dask_client(cfg), fn, jobs, data, bar, label)
    elif _workers(cfg, len(jobs)) <= 1:
        timed = []
        for job in jobs:
            timed.append(_timed(fn, job, data))
            bar.tick()
    else:
        with ThreadPoolExecutor(_workers(cfg, len(jobs))) as pool:
            futures = [pool.submit(_timed, fn, job, data) for job in jobs]
            for _ in as_completed(futures):
                bar.tick()
            timed = [f.result() for f in futures]
    if cpu is not None:
        cpu.extend(c for _, c in timed)
    return [out for out, _ in timed]


def _workers(cfg, n_jobs):
    """Threads for n_jobs jobs: cfg.n_jobs at most, 1 without threadpoolctl (BLAS could not be
    held to one thread, and the numbers would depend on the thread count)."""
    return min(cfg.n_jobs, n_jobs) if _single_thread_blas() is not None else 1


def _on_worker(fn, job, data):
    """One job on a Dask worker, its BLAS held to one thread (for the worker's life, as
    vgfast.sweep's workers do); (result, CPU seconds)."""
    from ..sweep.runners import _one_blas_thread
    _one_blas_thread()
    return _timed(fn, job, data)


#: how many times a job whose worker died (Dask's KilledWorker) is submitted again; a job that
#: raises is not retried (it would raise again: every job is seeded)
RETRIES = 2


def _dask_map(client, fn, jobs, data, bar, label, retries=RETRIES):
    """Scatter `data` to every worker once, submit the jobs, collect with as_completed. A job
    whose worker died (or whose copy of the data went with a worker) is submitted again, up to
    `retries` times, the data scattered again if no worker holds it any more (same seed, same
    numbers); then a RuntimeError names the job."""
    from distributed import as_completed as dask_completed
    from distributed.scheduler import KilledWorker

    tag = uuid.uuid4().hex
    shared = client.scatter([data], broadcast=True, hash=False)
    where, tries = {}, [0] * len(jobs)

    def submit(i):
        f = client.submit(_on_worker, fn, jobs[i], shared[0], pure=False,
                          key=f"vgfast-reproduce-{label}-{i}-{tag}-{tries[i]}")
        where[f.key] = i
        return f

    futures = [submit(i) for i in range(len(jobs))]
    pending = dask_completed(futures)
    out = [None] * len(jobs)
    try:
        for future in pending:
            i = where[future.key]
            died = future.status == "cancelled" or (
                future.status == "error" and isinstance(future.exception(), KilledWorker))
            if died:
                if tries[i] >= retries:
                    raise RuntimeError(
                        f"reproduce {label}: job {i} ({jobs[i]!r}) lost its Dask worker "
                        f"{tries[i] + 1} time(s) (the worker process died, e.g. out of memory "
                        f"or killed); not retried again")
                tries[i] += 1
                if shared[0].status != "finished":  # every copy of the data went too
                    shared = client.scatter([data], broadcast=True, hash=False)
                again = submit(i)
                futures.append(again)
                pending.add(again)
                continue
            out[i] = future.result()  # a job's exception is raised here
            future.release()
            bar.tick()
    finally:
        client.cancel(futures + shared)
    return out


def _single_thread_blas():
    """A context manager holding BLAS to one thread, or None without threadpoolctl."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    return partial(threadpool_limits, limits=1, user_api="blas")


# ------------------------------------------------------------------------------------ plans


@dataclass
class Batch:
    """Independent jobs of one experiment: ``fn(job, data)`` for each job.

    A job is plain data and ``fn`` a module-level function, so a job can travel to a Dask
    worker. ``cost(job)`` estimates the job's seconds (on one core of the machine the package
    was written on) and ``after`` the seconds of the experiment's own work once its jobs are
    done (its figures); a :class:`Schedule` starts the jobs with the largest ``cost + after``
    first, so that what is left at the end is short jobs and a short figure. They change no
    number.
    """

    fn: Callable
    jobs: list
    data: object
    label: str
    cost: Callable = None
    after: float = 0.0


def run_plan(plan, cfg, cpu=None):
    """Run an experiment's plan, the generator ``plan(cfg)``: every :class:`Batch` it yields goes
    through :func:`_parallel_map` and its results (in job order) are sent back; returns what the
    plan returns. Each job's CPU seconds are appended to `cpu` when it is a list."""
    gen = plan(cfg)
    results = None
    while True:
        try:
            batch = gen.send(results)
        except StopIteration as stop:
            return stop.value
        results = _parallel_map(batch.fn, batch.jobs, batch.data, cfg, batch.label, cpu)


class Schedule:
    """The plans of several experiments at once, their jobs on one pool of threads.

    ``add(name, plan, cfg)`` starts a plan: its code up to its first batch runs in the calling
    thread, and the batch's jobs join one queue that ``workers`` threads take from, the job with
    the largest estimated cost first (LPT: the long jobs of every experiment start early and the
    short ones fill the cores at the end; ``Batch.after``, the work that follows a batch, counts
    in its jobs' cost, and a batch whose ``after`` exceeds its jobs' total cost goes first).
    ``finished()``, in the calling thread, sends each plan its results when its last job is
    done and yields ``(name, results, cpu_seconds)`` as each plan returns; the caller has the
    figures drawn and writes files there while the workers go on.
    Every job is the same computation as under :func:`run_plan` (seeded, one BLAS thread), so
    the numbers do not depend on the order. A job's exception stops the pool and is raised by
    ``finished()``.
    """

    def __init__(self, workers, progress=False):
        self._heap, self._seq = [], itertools.count()
        self._lock = threading.Condition()
        self._done = queue.Queue()
        self._plans, self._ready = {}, []
        self._stopped = False
        self._total = 0
        self._bar = Progress(1, "reproduce: jobs", progress)
        self._threads = [threading.Thread(target=self._work, name=f"vgfast-reproduce-{i}",
                                          daemon=True) for i in range(max(1, workers))]
        for t in self._threads:
            t.start()

    def add(self, name, plan, cfg):
        """Start ``plan(cfg)`` under `name` and queue the jobs of its first batch."""
        self._plans[name] = {"gen": plan(cfg), "cpu": 0.0}
        self._advance(name, None)

    def _advance(self, name, results):
        """Run the plan's code up to its next batch (queue its jobs) or its end."""
        state = self._plans[name]
        c = time.thread_time()
        try:
            batch = state["gen"].send(results)
        except StopIteration as stop:
            state["cpu"] += time.thread_time() - c
            del self._plans[name]
            self._ready.append((name, stop.value, state["cpu"]))
            return
        state["cpu"] += time.thread_time() - c
        jobs = list(batch.jobs)
        state.update(results=[None] * len(jobs), left=len(jobs))
        if not jobs:
            self._advance(name, [])
            return
        costs = [float(batch.cost(job)) if batch.cost is not None else 0.0 for job in jobs]
        # a batch whose after-work (figures) takes longer than its jobs goes first (Johnson's
        # rule for two stages): that work then runs beside the long jobs, not at the end
        first = batch.after > sum(costs)
        with self._lock:
            for i, (job, cost) in enumerate(zip(jobs, costs)):
                heapq.heappush(self._heap, (not first, -(cost + batch.after), next(self._seq),
                                            name, i, batch.fn, job, batch.data))
            self._lock.notify_all()
        self._total += len(jobs)
        self._bar.total = max(1, self._total)

    def _work(self):
        while True:
            with self._lock:
                while not self._heap and not self._stopped:
                    self._lock.wait()
                if self._stopped:
                    return
                _, _, _, name, i, fn, job, data = heapq.heappop(self._heap)
            try:
                out = (True, *_timed(fn, job, data))
            except Exception as e:  # handed to the caller's thread, raised by finished()
                out = (False, e, 0.0)
            self._done.put((name, i, out))

    def finished(self):
        """Yield ``(name, results, cpu_seconds)`` as each plan returns (in this thread)."""
        try:
            while self._plans or self._ready:
                if self._ready:
                    yield self._ready.pop(0)
                    continue
                name, i, (ok, value, cpu) = self._done.get()
                if not ok:
                    raise value
                state = self._plans[name]
                state["results"][i] = value
                state["cpu"] += cpu
                state["left"] -= 1
                self._bar.tick()
                if state["left"] == 0:
                    self._advance(name, state.pop("results"))
        finally:
            self.close()

    def close(self):
        """Stop the workers (after the jobs they are running); drop the jobs not started."""
        with self._lock:
            self._stopped = True
            self._heap.clear()
            self._lock.notify_all()
        for t in self._threads:
            t.join()
