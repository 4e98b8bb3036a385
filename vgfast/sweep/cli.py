"""`vgfast sweep GRID.toml --store runs.sqlite --scheduler ...`: a sweep from a TOML file.

GRID.toml::

    # run = "mypackage.experiments:my_run"   # optional; default: vgfast's training run
    [grid]                                   # the runs are the product of these lists
    activation = ["sigmoid", "relu"]
    seed = [0, 1, 2]

    [fixed]                                  # config keys every run shares
    data = "digits"
    sizes = [64, 30, 10]
    epochs = 10
    lr = 0.5

Exit status 0 when every run is done, 1 when some are ``error`` or ``lost`` (run the same
command again to retry them), 2 on bad input.
"""
import argparse
import importlib
import sys

EXAMPLE = __doc__[__doc__.index("    # run"):__doc__.index("Exit status")].rstrip()


def read_grid(path):
    """(grid, fixed, run) from a TOML file; ValueError naming what is wrong."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        try:
            import tomli as tomllib
        except ImportError:
            raise ImportError('reading TOML on Python 3.10 needs tomli: pip install '
                              '"vgfast[cluster]"') from None
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except OSError as e:
        raise ValueError(f"cannot read {path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"{path} is not valid TOML: {e}") from None
    unknown = sorted(set(doc) - {"grid", "fixed", "run"})
    if unknown:
        raise ValueError(f"{path}: unknown top-level key(s) {unknown}; expected [grid], "
                         f"[fixed] and optionally run = \"module:function\"")
    grid, fixed = doc.get("grid"), doc.get("fixed", {})
    if not isinstance(grid, dict) or not isinstance(fixed, dict):
        raise ValueError(f"{path} needs a [grid] table of name = [values] (and optionally a "
                         f"[fixed] table); for example:\n{EXAMPLE}")
    return grid, fixed, _import_run(doc["run"]) if "run" in doc else None


def _import_run(spec):
    if not isinstance(spec, str) or spec.count(":") != 1:
        raise ValueError(f'run must be "module:function"; got {spec!r}')
    module, name = spec.split(":")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"run {spec!r} cannot be imported: {e}") from None


def main(argv=None):
    p = argparse.ArgumentParser(
        prog="vgfast sweep", description="Run every point of a grid (threads or Dask), one row "
        "per run in a SQLite store; run again to resume.",
        epilog=f"GRID.toml:\n{EXAMPLE}", formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("grid", metavar="GRID.toml")
    p.add_argument("--store", required=True, help="SQLite file of results (created if missing)")
    p.add_argument("--scheduler", default="threads",
                   help="threads (default), processes (a Dask LocalCluster) or tcp://host:port")
    p.add_argument("--retries", type=int, default=2,
                   help="reruns of a run whose worker died (default 2)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    from . import StoreError, StoreLockedError, sweep
    try:
        grid, fixed, run = read_grid(args.grid)
        res = sweep(grid, run=run, store=args.store, scheduler=args.scheduler,
                    retries=args.retries, progress=False if args.no_progress else None, **fixed)
    except (ValueError, TypeError, ImportError, StoreError, StoreLockedError,
            ConnectionError) as e:
        print(f"vgfast sweep: {e}", file=sys.stderr)
        return 2
    c = res.counts()
    print(f"{len(res)} runs: {c['done']} done, {c['error']} error, {c['lost']} lost; "
          f"store {args.store}")
    for r in res.rows:
        if r["status"] != "done":
            point = ", ".join(f"{k}={r[k]!r}" for k in res.grid_keys)
            last = (r["error"] or "").strip().splitlines()[-1:] or [""]
            print(f"  {r['status']}: {point}: {last[0]}")
    return 0 if c["done"] == len(res) else 1
