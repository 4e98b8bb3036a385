"""Several epochs of train() as a user calls it, on real MNIST digits, beside the numpy loop:
the path where train() compacts X's rows once (vgfast._core.TileRows) for the sparse first
layer, and the same runs with that switched off (the scan of X's rows at every step).

    OPENBLAS_NUM_THREADS=1 python bench/epochs.py [--rounds 7] [--epochs 5]

Workloads: `[784, 30, 10]` and `[784, 100, 10]`, sigmoid, cross-entropy, SGD lr 0.1 (issue 9's
maths), batch 100, on the bundled 5,000-digit subset (4,000 rows: 19% of the pixels nonzero),
float64 and float32. Each runner does the same number of epochs: the engine one train() call
with default arguments but the workload's; the numpy loop (bench/_workloads.py's NumpyLoop,
the same maths written as one would) once per epoch. Interleaved rounds (the runners' order
cycling through four, after one warm-up epoch of each), CPU time, the best round's examples/s and GFLOP/s (GEMM flops only), the median
over rounds of each ratio within a round.
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

SHAPES = ([784, 30, 10], [784, 100, 10])
BATCH = 100


def engine(sizes, X, y, dtype, epochs, tiles):
    """train() with default arguments but the workload's; returns (CPU s, first layer used)."""
    before = _core._set_tiles(tiles)
    try:
        net = vgfast.Network(sizes, dtype=dtype, seed=0)
        t = time.process_time()
        vgfast.train(net, X, y, epochs=epochs, batch_size=BATCH, optimizer=vgfast.SGD(W.LR),
                     seed=W.TRAIN_SEED)
        el = time.process_time() - t
    finally:
        _core._set_tiles(before)
    kind = net._engine.first_layer + (" (compacted rows)" if net._engine.first_layer_tiles
                                      else "")
    return el, kind


def numpy_loop(sizes, X, y, dtype, epochs):
    loop = W.NumpyLoop(X, y, dtype, BATCH, sizes=sizes)
    t = time.process_time()
    for _ in range(epochs):
        loop.run()
    return time.process_time() - t


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--epochs", type=int, default=5)
    args = ap.parse_args(argv)
    d = load_mnist(subset=True)
    X = np.vstack([d.X_train, d.X_validation])
    y = np.concatenate([d.y_train, d.y_validation])
    print(f"{X.shape[0]} MNIST digits, {args.epochs} epochs, batch {BATCH}, 1 BLAS thread, CPU "
          f"time, {args.rounds} interleaved rounds\n")
    print("| shape | dtype | first layer | engine ex/s | engine GFLOP/s | numpy ex/s | "
          "× numpy loop | compacted rows: time ÷ scan's |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    with threadpool_limits(1, "blas"):
        for sizes in SHAPES:
            flops = W.gemm_flops_per_example(sizes)
            for dt in W.DTYPES:
                Xd = np.ascontiguousarray(X, dtype=dt)
                on, off, npy = [], [], []
                engine(sizes, Xd, y, dt, 1, True)  # warm-up: the workspace, the first calls
                numpy_loop(sizes, Xd, y, dt, 1)
                for k in range(args.rounds):
                    order = ((0, 1, 2), (1, 0, 2), (2, 1, 0), (2, 0, 1))[k % 4]
                    for r in order:
                        if r == 0:
                            t, kind = engine(sizes, Xd, y, dt, args.epochs, True)
                            on.append(t)
                        elif r == 1:
                            off.append(engine(sizes, Xd, y, dt, args.epochs, False)[0])
                        else:
                            npy.append(numpy_loop(sizes, Xd, y, dt, args.epochs))
                on, off, npy = np.array(on), np.array(off), np.array(npy)
                rows = X.shape[0] * args.epochs
                print(f"| {sizes} | {dt} | {kind} | {rows / on.min():,.0f} | "
                      f"{rows * flops / on.min() / 1e9:.1f} | {rows / npy.min():,.0f} | "
                      f"{np.median(npy / on):.2f}× | {np.median(on / off):.3f} |")


if __name__ == "__main__":
    main()
