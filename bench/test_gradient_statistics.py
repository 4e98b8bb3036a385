"""vgfast.analysis.gradient_statistics beside the same quantities from torch.func.

Workload: ``[784, 30, 30, 30, 10]``, sigmoid everywhere, cross-entropy, the network at its
initialisation (seed 0), one mini-batch of 100 MNIST-shaped rows (bench/_workloads.py's data),
float64 and float32, one BLAS thread and one torch thread. Every quantity of
:class:`vgfast.analysis.GradientStatistics` (``sq_norms``, ``grad_norm``, ``trace_cov``,
``noise_scale``, ``norm_test``, ``inner_test``, ``ortho_test``, ``gsnr`` and the five per-layer
arrays) from:

- **vgfast**: ``gradient_statistics(net, X, y)``: one engine trace (forward + every delta) and
  closed forms over D and A (no per-example gradient);
- **torch.func**: ``vmap(grad(loss))`` over the rows with ``functional_call`` on an
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

import vgfast  # noqa: E402
from vgfast.analysis import gradient_statistics  # noqa: E402

BATCH = 100
DTYPES = ("float64", "float32")
EPS = 1e-5
FIELDS = ("grad_norm", "trace_cov", "noise_scale", "norm_test", "inner_test", "ortho_test",
          "gsnr", "sq_norms", "layer_grad_norm", "layer_trace_cov", "layer_noise_scale",
          "layer_norm_test", "layer_gsnr")


def setup(dtype):
    """(net, X, y): the network at initialisation and the first BATCH rows."""
    X, y = W.make_data()
    net = vgfast.Network(W.SIZES, seed=0, dtype=dtype)
    return net, np.ascontiguousarray(X[:BATCH], dtype), y[:BATCH]


class TorchStatistics:
    """The same quantities from torch.func's per-example gradients (vmap of grad)."""

    def __init__(self, net, X, y):
        torch = W.torch
        from torch.func import functional_call, grad, vmap

        tdt = {"float64": torch.float64, "float32": torch.float32}[np.dtype(net.dtype).name]
        layers = []
        for l, (a, b) in enumerate(zip(W.SIZES[:-1], W.SIZES[1:])):
            layers.append(torch.nn.Linear(a, b, dtype=tdt))
            if l < len(W.SIZES) - 2:
                layers.append(torch.nn.Sigmoid())
        self.model = torch.nn.Sequential(*layers)  # logits out; the sigmoid is in the loss
        linears = [m for m in self.model if isinstance(m, torch.nn.Linear)]
        with torch.no_grad():
            for lin, w, b in zip(linears, net.weights, net.biases):
                lin.weight.copy_(torch.from_numpy(w))
                lin.bias.copy_(torch.from_numpy(b))
        self.params = {k: v.detach() for k, v in self.model.named_parameters()}
        self.X = torch.from_numpy(X)
        self.T = torch.from_numpy(W.one_hot(y, W.SIZES[-1], net.dtype))
        bce = torch.nn.functional.binary_cross_entropy_with_logits

        def loss(params, x, t):  # example i's own cost: cross-entropy summed over the outputs
            z = functional_call(self.model, params, (x[None],))
            return bce(z[0], t, reduction="sum")

        self.per_example = vmap(grad(loss), in_dims=(None, 0, 0))
        self.torch = torch

    def __call__(self):
        """Per parameter tensor, the sums Cockpit forms from BackPACK's per-example gradients
        (||g_i||^2, g_i.gbar, ||gbar||^2, sum_i g_ij^2), then the formulas; no concatenation."""
        torch = self.torch
        g = self.per_example(self.params, self.X, self.T)
        m = self.X.shape[0]
        names = list(self.params)
        sq, layer = 0, []
        for w, b in zip(names[::2], names[1::2]):  # layer l: its weight and bias tensors
            gbars = [g[k].reshape(m, -1).mean(0) for k in (w, b)]
            gg = sum(gb @ gb for gb in gbars)
            sq_l, dots_l, gsnr_sum, n = 0, 0, 0, 0
            for k, gb in zip((w, b), gbars):
                G = g[k].reshape(m, -1)
                sq_l = sq_l + (G * G).sum(1)
                dots_l = dots_l + G @ gb
                gsnr_sum = gsnr_sum + (gb ** 2 / ((G * G).mean(0) - gb ** 2 + EPS)).sum()
                n += gb.numel()
            layer.append((sq_l, dots_l, gg, gsnr_sum, n))
            sq = sq + sq_l
        dots = sum(x[1] for x in layer)
        gg = sum(x[2] for x in layer)
        tc = (sq.sum() - m * gg) / (m - 1)
        layer_gg = torch.stack([x[2] for x in layer])
        layer_tc = (torch.stack([x[0].sum() for x in layer]) - m * layer_gg) / (m - 1)
        return dict(
            sq_norms=sq, grad_norm=gg.sqrt(), trace_cov=tc, noise_scale=tc / gg,
            norm_test=(tc / (m * gg)).sqrt(),
            inner_test=(((dots - gg) ** 2).sum() / (m - 1) / (m * gg ** 2)).sqrt(),
            ortho_test=((sq.sum() - (dots ** 2).sum() / gg) / (m - 1) / (m * gg)).sqrt(),
            gsnr=sum(x[3] for x in layer) / sum(x[4] for x in layer),
            layer_grad_norm=layer_gg.sqrt(), layer_trace_cov=layer_tc,
            layer_noise_scale=layer_tc / layer_gg,
            layer_norm_test=(layer_tc / (m * layer_gg)).sqrt(),
            layer_gsnr=torch.stack([x[3] / x[4] for x in layer]))


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
