"""Where an engine epoch goes: a phase model of one train() epoch, in milliseconds.

    python bench/phases.py [--repeats 7] [--dtype float64] [--batch 10 100]

For each (dtype, batch) of the epoch benchmark it times, in one process and one BLAS thread:

train()     the whole public call, as in test_epoch.py (best of --repeats)
gemm        the roof: the same GEMMs on preallocated arrays (vgfast._blas.gemm_sequence)
validate X  vgfast._validate.as_matrix on the training matrix (train() runs it once per call)
and the engine's C kernels on the epoch's shapes, each looped over the epoch's steps in C
(_phase_driver.c, built with csrc/vg_kernels.c by _ckernels.py):
gather      vg_gather_rows: the mini-batch rows, walking the epoch's permutation
sigmoid     vg_bias_act for every layer (bias add + stable sigmoid, libm exp)
out delta   vg_output_delta (sigmoid + cross-entropy: delta and the cost, softplus per output)
bwd elem    vg_mul_act_deriv for the hidden layers + vg_colsum for every layer
sumsq       vg_sumsq of dC/dW and dC/db for every layer (the per-step norms / finite check)
update      vg_opt_step (plain SGD) for W and b of every layer

rest = train() - the sum: Python around the call, cache interference between phases, calls.
A phase model, not a profile: each kernel runs alone here, with its data warm in cache.
"""
import argparse
import ctypes
import importlib.util
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
if importlib.util.find_spec("vgfast") is None:  # a checkout built in place, not installed
    sys.path.insert(0, os.path.dirname(HERE))

from threadpoolctl import threadpool_limits  # noqa: E402

import _ckernels  # noqa: E402
import _workloads as W  # noqa: E402
from vgfast._validate import as_matrix  # noqa: E402

P = ctypes.c_void_p
I64 = ctypes.c_int64


def _ptrs(arrays):
    return (P * len(arrays))(*[a.ctypes.data for a in arrays])


CLOCK = "wall"


def _best(fn, reps):
    now = W.CLOCKS[CLOCK]
    best = float("inf")
    for _ in range(reps):
        t0 = now()
        fn()
        best = min(best, now() - t0)
    return best


def kernel_model(lib, X, y, dtype, batch, reps):
    """Seconds per epoch of each kernel phase, the kernels looped in C (_phase_driver.c)."""
    s = "_d" if dtype == "float64" else "_f"
    f = {k: getattr(lib, "vgb_" + k + s) for k in ("gather", "sigmoid", "out_delta",
                                                   "bwd_elem", "sumsq", "update")}
    f["out_delta"].restype = ctypes.c_double
    f["sumsq"].restype = ctypes.c_double
    sizes, L, m, n = W.SIZES, len(W.SIZES) - 1, batch, X.shape[0]
    steps = n // batch
    rng = np.random.default_rng(2)
    arr = lambda *shape, scale=1.0: np.ascontiguousarray(  # noqa: E731
        rng.standard_normal(shape) * scale, dtype)
    Z = [arr(m, k) for k in sizes[1:]]
    A = [np.ascontiguousarray(rng.random((m, k)), dtype) for k in sizes[1:]]
    D = [arr(m, k, scale=0.1) for k in sizes[1:]]
    Agold = [np.full((m, k), 1.618034, dtype) for k in sizes[1:]]
    zeros = [np.zeros(k, dtype) for k in sizes[1:]]
    gbuf = [np.zeros(k, dtype) for k in sizes[1:]]
    sz = np.asarray(sizes, np.int64)
    net_n = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    w_off, b_off, o = [], [], 0
    for a, b in zip(sizes[:-1], sizes[1:]):
        w_off.append(o)
        o += a * b
        b_off.append(o)
        o += b
    w_off, b_off = np.asarray(w_off, np.int64), np.asarray(b_off, np.int64)
    grad = arr(net_n, scale=1e-3)
    params = arr(net_n)
    s1, s2, old = np.zeros(net_n, dtype), np.zeros(net_n, dtype), np.zeros(net_n, dtype)
    h = np.zeros(8)
    h[0] = 1e-9
    lab = np.ascontiguousarray(y[:m], np.int64)
    perm = W.engine_perm(n)
    buf = np.empty((m, sizes[0]), dtype)
    pZ, pA, pD, pG, p0, pgb = (_ptrs(Z), _ptrs(A), _ptrs(D), _ptrs(Agold), _ptrs(zeros),
                               _ptrs(gbuf))
    runs = {
        "gather": lambda: f["gather"](P(X.ctypes.data), P(perm.ctypes.data), I64(steps), I64(m),
                                      I64(sizes[0]), P(buf.ctypes.data)),
        "sigmoid": lambda: f["sigmoid"](pZ, pA, p0, P(sz.ctypes.data), L, I64(m), I64(steps)),
        "out delta": lambda: f["out_delta"](P(D[-1].ctypes.data), P(Z[-1].ctypes.data),
                                            P(A[-1].ctypes.data), P(lab.ctypes.data), I64(m),
                                            I64(sizes[-1]), I64(steps)),
        "bwd elem": lambda: f["bwd_elem"](pD, pZ, pG, pgb, P(sz.ctypes.data), L, I64(m),
                                          I64(steps)),
        "sumsq": lambda: f["sumsq"](P(grad.ctypes.data), P(w_off.ctypes.data),
                                    P(b_off.ctypes.data), P(sz.ctypes.data), L, I64(steps)),
        "update": lambda: f["update"](0, P(params.ctypes.data), P(grad.ctypes.data),
                                      P(s1.ctypes.data), P(s2.ctypes.data), P(w_off.ctypes.data),
                                      P(b_off.ctypes.data), P(sz.ctypes.data), L,
                                      P(h.ctypes.data), I64(steps),
                                      P(old.ctypes.data if lib.opt_old else None)),
    }
    for fn in runs.values():
        fn()
    return {k: _best(fn, reps) for k, fn in runs.items()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--dtype", nargs="*", default=list(W.DTYPES))
    ap.add_argument("--batch", nargs="*", type=int, default=list(W.BATCHES))
    ap.add_argument("--clock", choices=sorted(W.CLOCKS), default="wall")
    args = ap.parse_args(argv)
    global CLOCK
    CLOCK = args.clock
    lib = _ckernels.load()
    if lib is None:
        sys.exit("phases.py needs a C compiler to build csrc/vg_kernels.c standalone")
    X64, y = W.make_data()
    cols = ["gemm", "validate X", "gather", "sigmoid", "out delta", "bwd elem", "sumsq",
            "update", "rest"]
    print("| dtype | batch | train() ms | " + " | ".join(cols) + " |")
    print("|---|---:|---:|" + "---:|" * len(cols))
    with threadpool_limits(1, "blas"):
        for dtype in args.dtype:
            X = np.ascontiguousarray(X64, dtype=dtype)
            for batch in args.batch:
                t_train = W.best_time(W.Engine(X, y, dtype, batch), args.repeats,
                                      clock=CLOCK)
                t_roof = W.best_time(W.Roof(X, y, dtype, batch), args.repeats, clock=CLOCK)
                t_val = _best(lambda: as_matrix(X, "X", np.dtype(dtype).type, W.SIZES[0]),
                              args.repeats)
                ph = {"gemm": t_roof, "validate X": t_val}
                ph.update(kernel_model(lib, X, y, dtype, batch, args.repeats))
                ph["rest"] = t_train - sum(ph.values())
                cells = [f"{1e3 * ph[c]:.1f} ({100 * ph[c] / t_train:.0f}%)" for c in cols]
                print(f"| {dtype} | {batch} | {1e3 * t_train:.1f} | " + " | ".join(cells) + " |",
                      flush=True)


if __name__ == "__main__":
    main()
