"""How `vgfast reproduce` runs: vgfast.reproduce.jobs.Schedule, the jobs of several plans on one
pool of threads, the longest first (each plan gets its results in job order, whatever order the
jobs ran in); vgfast.reproduce.drawing.FigureProcess, the figures drawn in a child process."""
import threading
import time

import pytest

from vgfast.reproduce.jobs import Batch, Schedule, run_plan


def _record(job, data):
    """Append the job to the shared log and return it squared."""
    log, lock = data
    with lock:
        log.append(job)
    return job * job


def _plan(jobs, data, cost=lambda job: job, batches=1, after=0.0):
    """A plan of `batches` batches of the same jobs; returns every batch's results."""
    def plan(cfg):
        got = []
        for _ in range(batches):
            got.append((yield Batch(_record, list(jobs), data, "test", cost=cost, after=after)))
        return got
    return plan


def _finished(schedule):
    return {name: (results, cpu) for name, results, cpu in schedule.finished()}


def test_one_worker_runs_the_jobs_of_all_plans_longest_first():
    log, lock = [], threading.Lock()
    # hold the only worker until every plan is queued, so the order is the queue's alone
    gate = threading.Event()
    schedule = Schedule(1)
    schedule.add("gate", lambda cfg: (yield Batch(lambda job, data: gate.wait(5), [0], None,
                                                  "gate", cost=lambda job: 1e9)), None)
    time.sleep(0.05)
    schedule.add("a", _plan([1, 5, 3], (log, lock)), None)
    schedule.add("b", _plan([4, 2, 6], (log, lock)), None)
    # work after the batch (its figures) counts in its jobs' cost: 2.5 + 3 goes before 5
    schedule.add("c", _plan([2.5, 2.5], (log, lock), after=3.0), None)
    # figures longer than the batch's jobs: the batch goes first
    schedule.add("d", _plan([0.25], (log, lock), after=0.5), None)
    gate.set()
    done = _finished(schedule)
    assert log == [0.25, 6, 2.5, 2.5, 5, 4, 3, 2, 1]
    # results in job order, as the plan listed its jobs
    assert done["a"][0] == [[1, 25, 9]] and done["b"][0] == [[16, 4, 36]]


def test_plans_with_several_batches_and_none():
    log, lock = [], threading.Lock()
    schedule = Schedule(2)
    schedule.add("two", _plan([1, 2, 3], (log, lock), batches=2), None)
    schedule.add("empty", _plan([], (log, lock)), None)
    schedule.add("nothing", lambda cfg: (yield from ()) or {"x": 1}, None)
    done = _finished(schedule)
    assert done["two"][0] == [[1, 4, 9], [1, 4, 9]]
    assert done["empty"][0] == [[]]
    assert done["nothing"][0] == {"x": 1}
    assert sorted(log) == [1, 1, 2, 2, 3, 3]


def test_same_results_as_run_plan():
    """The pool and run_plan (the jobs one after another) give the plan the same results."""
    class Cfg:  # what run_plan's _parallel_map reads
        scheduler, progress, n_jobs = None, False, 1

    log, lock = [], threading.Lock()
    plan = _plan([3, 1, 2], (log, lock), cost=lambda job: -job)
    schedule = Schedule(3)
    schedule.add("p", plan, None)
    assert _finished(schedule)["p"][0] == run_plan(plan, Cfg()) == [[9, 1, 4]]


def test_a_failing_job_stops_the_pool_and_is_raised():
    def boom(job, data):
        if job == 2:
            raise ZeroDivisionError("job 2")
        return job

    schedule = Schedule(2)
    schedule.add("p", lambda cfg: (yield Batch(boom, [1, 2, 3, 4], None, "boom")), None)
    with pytest.raises(ZeroDivisionError, match="job 2"):
        _finished(schedule)
    assert not any(t.is_alive() for t in schedule._threads)


# ------------------------------------------------------------------------ figures in a child


def _interval_results():
    from vgfast.reproduce import EXPERIMENTS, Config
    from vgfast.reproduce.common import _jsonable
    return _jsonable(EXPERIMENTS["interval"].compute(Config(quick=True)))


def _drawn(drawing, out):
    drawing.submit("interval", _interval_results(), str(out))
    [(name, figures)] = list(drawing.collect(wait=True))
    drawing.close()
    assert name == "interval" and figures
    return {f["file"]: (out / f["file"]).read_bytes() for f in figures}


def test_figures_drawn_in_the_child_process_are_those_drawn_here(tmp_path, monkeypatch):
    """The child process writes the same PNG files, byte for byte, as the figures drawn in this
    process (which is what happens when no child can be started)."""
    pytest.importorskip("matplotlib")
    from vgfast.reproduce import drawing
    child = drawing.FigureProcess()
    assert child._child is not None
    (tmp_path / "child").mkdir()
    (tmp_path / "here").mkdir()
    in_child = _drawn(child, tmp_path / "child")
    monkeypatch.setattr(drawing.sys, "executable", str(tmp_path / "no-such-python"))
    here = drawing.FigureProcess()
    assert here._child is None  # could not start: draws in this process
    assert _drawn(here, tmp_path / "here") == in_child


def test_a_figure_that_fails_in_the_child_is_an_error(tmp_path):
    from vgfast.reproduce import drawing
    child = drawing.FigureProcess()
    child.submit("interval", {"not": "the interval results"}, str(tmp_path))
    with pytest.raises(RuntimeError, match="drawing the figures of 'interval' failed"):
        list(child.collect(wait=True))
    child.close()
