"""The first layer read in place (csrc/vg_direct.c) against the same epoch with every product
through BLAS on gathered rows (vgfast._core.set_direct(False)): one epoch of train() with
default arguments, interleaved rounds, CPU time, medians of the per-round ratios.

    OPENBLAS_NUM_THREADS=1 python bench/direct_first_layer.py [--rounds 7]

Workloads: issue 9's (`[784, 30, 30, 30, 10]`, sigmoid, SGD 0.1, 10,000 uniform rows) at
batches 100 and 1000, and scikit-learn's default shape (`[784, 100, 10]`, relu, Adam, batch
200) on real MNIST digits (the bundled 5,000-digit subset, 19% of the pixels nonzero: the
sparse kernels run for the 100-unit layer in float64, the dense ones for the book's 30), both
dtypes.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.modules.setdefault("torch", None)

import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

import _workloads as W  # noqa: E402
import vgfast  # noqa: E402
from vgfast import _core  # noqa: E402
from vgfast.datasets import load_mnist  # noqa: E402


def cases():
    X, y = W.make_data()
    d = load_mnist(subset=True)
    Xm = np.vstack([d.X_train, d.X_validation])
    ym = np.concatenate([d.y_train, d.y_validation])
    for dt in ("float64", "float32"):
        for bs in (100, 1000):
            yield (f"issue 9 workload, {dt}, batch {bs}", W.SIZES, "sigmoid", X.astype(dt), y,
                   bs, lambda: vgfast.SGD(0.1), dt)
        yield (f"MNIST [784, 30, 10] sigmoid SGD, {dt}, batch 100", [784, 30, 10], "sigmoid",
               Xm.astype(dt), ym, 100, lambda: vgfast.SGD(0.1), dt)
        yield (f"MNIST [784, 100, 10] relu Adam, {dt}, batch 200", [784, 100, 10], "relu",
               Xm.astype(dt), ym, 200, lambda: vgfast.Adam(1e-3), dt)


def epoch(sizes, act, X, y, bs, opt, dtype, direct):
    _core.set_direct(direct)
    net = vgfast.Network(sizes, activation=act, dtype=dtype, seed=0)
    t = time.process_time()
    vgfast.train(net, X, y, epochs=1, batch_size=bs, optimizer=opt(), seed=0)
    el = time.process_time() - t
    return el, net._engine.first_layer


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args(argv)
    print("| workload | first layer | epoch (ms), in place | epoch (ms), BLAS | BLAS ÷ in place |")
    print("|---|---|---:|---:|---:|")
    with threadpool_limits(1, "blas"):
        for name, sizes, act, X, y, bs, opt, dt in cases():
            ratios, on, off = [], [], []
            for _ in range(args.rounds):
                a, kind = epoch(sizes, act, X, y, bs, opt, dt, True)
                b, _ = epoch(sizes, act, X, y, bs, opt, dt, False)
                on.append(a)
                off.append(b)
                ratios.append(b / a)
            print(f"| {name} | {kind} | {1e3 * np.median(on):.1f} | {1e3 * np.median(off):.1f} | "
                  f"{np.median(ratios):.2f}× |")
    _core.set_direct(True)


if __name__ == "__main__":
    main()
