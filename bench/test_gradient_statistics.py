"""vgfast.analysis.gradient_statistics beside the same quantities from torch.func.

Workload: ``[784, 30, 30, 30, 10]``, sigmoid everywhere, cross-entropy, the network at its
initialisation (seed 0), one mini-batch of 100 MNIST-shaped rows (bench/_workloads.py's data),
float64 and float32, one BLAS thread and one torch thread. Every quantity of
:class:`vgfast.analysis.GradientStatistics` (``sq_norms``, ``grad_norm``, ``trace_cov``,
``noise_scale``, ``norm_test``, ``inner_test``, ``ortho_test``, ``gsnr`` and the five per-layer
arrays) from:

- **vgfast**: ``gradient_statistics(net, X, y)``: one engine trace (forward + every delta) and
  closed forms over D and A (no per-example gradient);
- **torch.func** (``bench/_torch_func.py``): ``vmap(grad(loss))`` over the rows with ``functional_call`` on an
  ``nn.Sequential`` (per-example gradients, as Cockpit/BackPACK's ``BatchGrad``), then per
  parameter tensor the sums Cockpit's quantities use (``||g_i||^2``, ``g_i.gbar``,
  ``sum_i g_ij^2``) and the formulas, per layer and in total;
- **engine gradient** (context): ``net.gradient(X, y)``, one forward/backward of the batch,
  the work of a training step before its update.

The suite checks that torch.func's numbers equal vgfast's (rtol 1e-9 in float64, 1e-3 in
float32) before timing.

Run: ``python -m pytest bench/test_gradient_statistics.py --benchmark-only
--benchmark-group-by=group`` or ``python bench/test_gradient_statistics.py [--rounds N]`` for
the table of bench/README.md (interleaved rounds, CPU time: every runner is single-threaded).
"""
import os
import sys
import time

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import _workloads as W  # noqa: E402
from _torch_func import TorchStatistics  # noqa: E402

import vgfast  # noqa: E402
from vgfast.analysis import gradient_statistics  # noqa: E402

BATCH = 100
DTYPES = ("float64", "float32")
FIELDS = ("grad_norm", "trace_cov", "noise_scale", "norm_test", "inner_test", "ortho_test",
          "gsnr", "sq_norms", "layer_grad_norm", "layer_trace_cov", "layer_noise_scale",
          "layer_norm_test", "layer_gsnr")


def setup(dtype):
    """(net, X, y): the network at initialisation and the first BATCH rows."""
    X, y = W.make_data()
    net = vgfast.Network(W.SIZES, seed=0, dtype=dtype)
    return net, np.ascontiguousarray(X[:BATCH], dtype), y[:BATCH]


def runners(dtype):
    """{name: zero-argument callable}; torch.func only when torch is installed."""
    net, X, y = setup(dtype)
    out = {"vgfast": lambda: gradient_statistics(net, X, y),
           "engine gradient": lambda: net.gradient(X, y)}
    if W.torch is not None:
        out["torch.func"] = TorchStatistics(net, X, y)
    return out


def check_agree(dtype):
    """torch.func's quantities equal vgfast's (float64: 1e-9; float32: 1e-3, its rounding)."""
    r = runners(dtype)
    if "torch.func" not in r:
        return
    ours, theirs = r["vgfast"](), r["torch.func"]()
    rtol = 1e-9 if dtype == "float64" else 1e-3
    for k in FIELDS:
        np.testing.assert_allclose(getattr(ours, k), theirs[k].double().numpy(), rtol=rtol,
                                   err_msg=k)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("runner", ["vgfast", "torch.func", "engine gradient"])
def test_gradient_statistics(benchmark, runner, dtype):
    if runner == "torch.func" and W.torch is None:
        pytest.skip("torch is not installed")
    check_agree(dtype)
    benchmark.group = f"gradient statistics {dtype} batch {BATCH}"
    benchmark.extra_info.update(runner=runner, dtype=dtype, batch=BATCH)
    benchmark(runners(dtype)[runner])


def report(rounds=20, calls=20):
    """Interleaved rounds of `calls` calls each, CPU time, best round; prints the table."""
    from threadpoolctl import threadpool_limits

    if W.torch is not None:
        W.torch.set_num_threads(1)
    best = {}
    with threadpool_limits(1, "blas"):
        for dt in DTYPES:
            check_agree(dt)
        rs = {dt: runners(dt) for dt in DTYPES}
        for _ in range(rounds):
            for dt in DTYPES:
                for name, f in rs[dt].items():
                    f()  # warm
                    t = time.process_time()
                    for _ in range(calls):
                        f()
                    el = (time.process_time() - t) / calls
                    best[dt, name] = min(best.get((dt, name), np.inf), el)
    print(f"{W.SIZES}, sigmoid, cross-entropy, batch {BATCH}, 1 BLAS / 1 torch thread, best CPU "
          f"time per call of {rounds} interleaved rounds of {calls} calls\n")
    print("| dtype | vgfast ms | torch.func ms | vgfast speed-up | engine gradient ms | vgfast / "
          "gradient |")
    print("|---|---:|---:|---:|---:|---:|")
    for dt in DTYPES:
        v, g = best[dt, "vgfast"], best[dt, "engine gradient"]
        t = best.get((dt, "torch.func"))
        tcol = f"{t * 1e3:.3f} | {t / v:.1f}x" if t is not None else "— | —"
        print(f"| {dt} | {v * 1e3:.3f} | {tcol} | {g * 1e3:.3f} | {v / g:.2f}x |")


if __name__ == "__main__":
    import argparse

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=20)
    report(p.parse_args().rounds)
