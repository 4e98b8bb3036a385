"""vgfast.sweep: a grid of configs -> runs on threads or dask.distributed -> a SQLite store.

Calling the package is calling :func:`vgfast.sweep.core.sweep`
``(grid, *, run=None, store=None, scheduler=None, retries=2, progress=None, **fixed)``:

>>> res = vgfast.sweep({"activation": ["sigmoid", "relu"], "seed": [0, 1, 2]},
...                    data="digits", sizes=[64, 30, 30, 10], epochs=5, lr=0.5,
...                    store="runs.sqlite", scheduler="processes")
>>> res.to_pandas()[["activation", "seed", "validation_accuracy"]]
>>> res.plot("validation_accuracy", "activation")

Modules: :mod:`~vgfast.sweep.core` (sweep(), load()), :mod:`~vgfast.sweep.store` (the SQLite
store), :mod:`~vgfast.sweep.runners` (threads and Dask), :mod:`~vgfast.sweep.training` (the
default run: config keys and results), :mod:`~vgfast.sweep.result` (rows, pandas, plot).

Running on a real cluster
-------------------------
Install ``vgfast[cluster]`` (and the same vgfast) on every machine, then::

    dask scheduler --port 8786                       # on one machine
    dask worker tcp://SCHEDULER:8786 --nworkers 8 --nthreads 1   # on each worker machine
    vgfast sweep grid.toml --store runs.sqlite --scheduler tcp://SCHEDULER:8786

(or ``vgfast.sweep(grid, scheduler="tcp://SCHEDULER:8786", ...)``). One single-threaded worker
per core is the layout vgfast expects; each run also limits its worker's BLAS to one thread.
A custom ``run`` function must be importable on the workers, or defined in the calling script
(Dask then sends it by value).

What happens when workers come and go:

- The store is a file on the calling machine; only the calling process writes it, one commit
  per finished run. Workers never see it and need no shared disk.
- Runs wait in the calling process; it hands the scheduler as many as the workers have threads
  at that moment, so a worker that joins gets runs at once, and one that leaves cleanly
  (``dask worker`` stopped with Ctrl-C, or retired) gives its run back to be started elsewhere
  (not counted as a death).
- A worker that dies in the middle of a run (killed, out of memory, machine lost) loses that
  run only: the run is started again elsewhere, up to ``retries`` times, then recorded ``lost``.
  Dask also reruns on its own up to its ``distributed.scheduler.allowed-failures`` (3 by
  default) before it reports the death; the LocalCluster of ``scheduler="processes"`` sets it
  to 0 so that ``retries`` is exact. For a scheduler you start yourself, set it the same way:
  ``DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES=0 dask scheduler``.
- If the calling process stops (Ctrl-C, a lost connection, a crash), every run already stored
  stays; calling the same sweep again runs only the runs that are not ``done`` (``error`` and
  ``lost`` ones included).
- Results do not depend on where a run went on one machine: the same config and seed give the
  same numbers on threads and on worker processes (one BLAS thread each). Across machines they
  agree when the BLAS picks the same kernels (same build, same CPU family).
"""
import sys
import types

from .core import configs_of, load, sweep
from .result import SweepResult
from .store import StoreError, StoreLockedError
from .training import DATASETS, train_run

__all__ = ["sweep", "load", "SweepResult", "train_run", "StoreError", "StoreLockedError",
           "DATASETS", "configs_of"]


class _SweepModule(types.ModuleType):
    """vgfast.sweep is this package and, called, the function :func:`vgfast.sweep.core.sweep`:
    ``vgfast.sweep(grid, ...)`` and ``vgfast.sweep.load(path)`` both read naturally."""

    def __call__(self, grid, **kwargs):
        return sweep(grid, **kwargs)

    __call__.__doc__ = sweep.__doc__


sys.modules[__name__].__class__ = _SweepModule
