"""Optimiser updates over 10M float64 parameters, in GB/s, next to the machine's copy bandwidth.

Groups "optim adam" and "optim sgd-momentum" (momentum 0.9) each hold, from one run:

vgfast-C      the engine's update kernel vg_opt_step, through ``vgfast._core.optimizer_step``
              (or, in a build without it, a standalone build of csrc/vg_kernels.c: _ckernels.py)
numpy         the update as numpy expressions (vgfast._reference.adam_step; b = mu b + g, ...)
numpy-inplace the same with ufunc out= into preallocated scratch (no temporaries)
torch         torch.optim.Adam / SGD (default single-tensor CPU path), and fused=True
copy          np.copyto of 10M doubles: the machine's bandwidth for one read + one write stream

GB/s counts the bytes each update must move once: Adam reads p, g, m, v and writes p, m, v
(7 x 8 bytes per parameter); SGD-momentum reads p, g, b and writes p, b (5 x 8); the copy reads
and writes 8 bytes each (2 x 8). Stored in extra_info (gbytes_per_s) from the best round.
"""
import numpy as np
import pytest

import _ckernels
import _workloads as W
import vgfast._core
from vgfast import _reference

N = 10_000_000
BYTES = {"adam": 7 * 8 * N, "sgd-momentum": 5 * 8 * N, "copy": 2 * 8 * N}
LR, B1, B2, EPS, MU = 1e-3, 0.9, 0.999, 1e-8, 0.9
KIND = {"adam": 3, "sgd-momentum": 0}
HYPER = {"adam": [LR, B1, B2, EPS, 0.0, 0.0], "sgd-momentum": [LR, MU, 0.0, 0.0, 0.0, 0.0]}
ROUNDS = 7


@pytest.fixture(scope="module")
def vectors():
    rng = np.random.default_rng(0)
    p = rng.standard_normal(N)
    g = rng.standard_normal(N) * 1e-3
    return p, g


def _state(vectors):
    p, g = vectors
    return p.copy(), g.copy(), np.zeros(N), np.zeros(N)


def _bench(benchmark, algo, variant, fn):
    benchmark.group = f"optim {algo}"
    benchmark.pedantic(fn, rounds=ROUNDS, warmup_rounds=1, iterations=1)
    if benchmark.stats is None:  # --benchmark-disable: the body ran once, nothing was timed
        return
    nbytes = BYTES["copy" if variant == "copy" else algo]
    benchmark.extra_info.update(variant=variant, n_params=N, bytes_moved=nbytes,
                                gbytes_per_s=round(nbytes / benchmark.stats.stats.min / 1e9, 2))


def c_opt_step():
    """(callable, how) for the engine's kernel, or (None, why not)."""
    for name in ("optimizer_step", "opt_step"):
        f = getattr(vgfast._core, name, None)
        if f is not None:
            return f, f"vgfast._core.{name}"
    if _ckernels.load() is not None:
        return _ckernels.opt_step_ctypes, "standalone build of csrc/vg_kernels.c (ctypes)"
    return None, "no vgfast._core.opt_step and no C compiler"


ALGOS = ["adam", "sgd-momentum"]


@pytest.mark.parametrize("algo", ALGOS)
def test_vgfast_c(benchmark, vectors, algo):
    f, how = c_opt_step()
    if f is None:
        pytest.skip(how)
    p, g, s1, s2 = _state(vectors)
    kind, hyper = KIND[algo], HYPER[algo]
    _bench(benchmark, algo, "vgfast-C", lambda: f(kind, p, g, s1, s2, hyper, 10))
    benchmark.extra_info["entry"] = how
    assert np.isfinite(p).all()


@pytest.mark.parametrize("algo", ALGOS)
def test_numpy(benchmark, vectors, algo):
    p, g, s1, s2 = _state(vectors)
    if algo == "adam":
        fn = lambda: _reference.adam_step(p, g, s1, s2, 10, LR, B1, B2, EPS)  # noqa: E731
    else:
        def fn():
            s1[...] = MU * s1 + g
            p[...] -= LR * s1
    _bench(benchmark, algo, "numpy", fn)


@pytest.mark.parametrize("algo", ALGOS)
def test_numpy_inplace(benchmark, vectors, algo):
    p, g, s1, s2 = _state(vectors)
    tmp = np.empty(N)
    if algo == "adam":
        bc1, bc2 = 1 - B1 ** 10, 1 - B2 ** 10
        step, bc2s = LR / bc1, np.sqrt(bc2)

        def fn():
            np.multiply(s1, B1, out=s1)           # m = b1 m + (1 - b1) g
            np.multiply(g, 1 - B1, out=tmp)
            np.add(s1, tmp, out=s1)
            np.multiply(g, g, out=tmp)            # v = b2 v + (1 - b2) g^2
            np.multiply(tmp, 1 - B2, out=tmp)
            np.multiply(s2, B2, out=s2)
            np.add(s2, tmp, out=s2)
            np.sqrt(s2, out=tmp)                  # p -= step m / (sqrt(v) / sqrt(bc2) + eps)
            np.multiply(tmp, 1 / bc2s, out=tmp)
            np.add(tmp, EPS, out=tmp)
            np.divide(s1, tmp, out=tmp)
            np.multiply(tmp, step, out=tmp)
            np.subtract(p, tmp, out=p)
    else:
        def fn():
            np.multiply(s1, MU, out=s1)           # b = mu b + g
            np.add(s1, g, out=s1)
            np.multiply(s1, LR, out=tmp)          # p -= lr b
            np.subtract(p, tmp, out=p)
    _bench(benchmark, algo, "numpy-inplace", fn)


@pytest.mark.parametrize("fused", [False, True], ids=["default", "fused"])
@pytest.mark.parametrize("algo", ALGOS)
def test_torch(benchmark, vectors, algo, fused):
    torch = W.torch
    if torch is None:
        pytest.skip("PyTorch is not installed")
    p0, g0 = vectors
    p = torch.nn.Parameter(torch.from_numpy(p0.copy()))
    p.grad = torch.from_numpy(g0.copy())
    kw = {"fused": True} if fused else {"foreach": False}
    try:
        if algo == "adam":
            opt = torch.optim.Adam([p], lr=LR, betas=(B1, B2), eps=EPS, **kw)
        else:
            opt = torch.optim.SGD([p], lr=LR, momentum=MU, **kw)
        opt.step()
    except (RuntimeError, TypeError, ValueError) as e:
        pytest.skip(f"torch.optim fused={fused} not available here: {e}")
    _bench(benchmark, algo, "torch-fused" if fused else "torch", opt.step)


@pytest.mark.parametrize("algo", ALGOS)
def test_copy(benchmark, vectors, algo):
    """The bandwidth yardstick, repeated in each group so it sits next to the updates."""
    src = vectors[0]
    dst = np.empty_like(src)
    _bench(benchmark, algo, "copy", lambda: np.copyto(dst, src))
