"""Two threads against one, and the cost of dropout, batch norm and recording per epoch.

Run: python -m pytest bench/test_threads_overhead.py --benchmark-only --benchmark-group-by=group

threads   two networks trained in two Python threads (each engine call releases the GIL) against
          the same two trained one after the other; speed-up = sequential / threaded time.
overhead  one epoch of the [784, 30, 30, 30, 10] workload, mini-batch 100, plain, with dropout
          (0.8 / 0.5), with batch norm, with per-step recording of every statistic; the ratio to
          the plain epoch is in extra_info.
"""
import os
import sys
import threading
import time

import numpy as np
import pytest

import vgfast

SIZES = [784, 30, 30, 30, 10]


def _train(net, X, y, **kw):
    vgfast.train(net, X, y, epochs=1, batch_size=kw.pop("batch_size", 100), seed=0, **kw)


@pytest.mark.benchmark(group="threads: two networks, one epoch each")
@pytest.mark.parametrize("mode", ["sequential", "two threads"])
def test_two_networks(benchmark, mnist_like, mode):
    X, y = mnist_like
    nets = [vgfast.Network(SIZES, seed=s) for s in (0, 1)]

    def sequential():
        for n in nets:
            _train(n, X, y)

    def threaded():
        ts = [threading.Thread(target=_train, args=(n, X, y)) for n in nets]
        for t in ts:
            t.start()
        for t in ts:
            t.join()

    benchmark.pedantic(sequential if mode == "sequential" else threaded, rounds=5, iterations=1)
    benchmark.extra_info["examples_per_s"] = 2 * len(X) / benchmark.stats.stats.min


VARIANTS = {
    "plain": {},
    "dropout 0.8/0.5": {"dropout": (0.8, 0.5)},
    "batch norm": {"batch_norm": True},
    "record everything per step": {"record": ("grad_norms", "weight_grad_norms", "cost",
                                              "activation_mean", "activation_std", "saturation",
                                              "dead_fraction", "update_ratio"),
                                   "record_every": "step"},
}


def epoch_time(X, y, variant, repeats=5):
    kw = dict(VARIANTS[variant])
    net = vgfast.Network(SIZES, seed=0, batch_norm=kw.pop("batch_norm", False))
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        _train(net, X, y, **kw)
        best = min(best, time.perf_counter() - t0)
    return best


@pytest.mark.benchmark(group="overhead per epoch (batch 100)")
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_overhead(benchmark, mnist_like, variant):
    X, y = mnist_like
    kw = dict(VARIANTS[variant])
    net = vgfast.Network(SIZES, seed=0, batch_norm=kw.pop("batch_norm", False))
    benchmark.pedantic(_train, args=(net, X, y), kwargs=kw, rounds=5, iterations=1)
    if variant != "plain":
        benchmark.extra_info["ratio_to_plain"] = (benchmark.stats.stats.min /
                                                  epoch_time(X, y, "plain"))


if __name__ == "__main__":  # a quick table without pytest-benchmark
    from threadpoolctl import threadpool_limits
    rng = np.random.default_rng(0)
    X, y = rng.random((10_000, 784)), rng.integers(0, 10, 10_000)
    with threadpool_limits(1, "blas"):
        plain = epoch_time(X, y, "plain")
        for v in VARIANTS:
            t = epoch_time(X, y, v)
            print(f"{v:28s} {t * 1e3:7.1f} ms  ratio {t / plain:.3f}")
        # beside each engine round, the same for the GEMM-only roof (two instances of
        # bench/_workloads.Roof, nogil): what two threads get from this machine at that moment
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        sys.modules.setdefault("torch", None)
        from _workloads import Roof

        def pair(fns):
            t0 = time.perf_counter()
            for f in fns:
                f()
            seq = time.perf_counter() - t0
            ts = [threading.Thread(target=f) for f in fns]
            t0 = time.perf_counter()
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            return seq / (time.perf_counter() - t0)

        for batch in (10, 100, 1000):
            nets = [vgfast.Network(SIZES, seed=s) for s in (0, 1)]
            roofs = [Roof(X, y, "float64", batch) for _ in range(2)]
            ups, rups = [], []
            for _ in range(5):  # interleaved rounds; the median speed-up is the robust number
                ups.append(pair([lambda n=n: _train(n, X, y, batch_size=batch) for n in nets]))
                rups.append(pair([r.run for r in roofs]))
            print(f"two networks, batch {batch}: two threads against one after the other, "
                  f"median speed-up {np.median(ups):.2f}x (rounds {', '.join(f'{u:.2f}' for u in ups)}); "
                  f"the GEMM roof {np.median(rups):.2f}x (rounds {', '.join(f'{u:.2f}' for u in rups)})")
