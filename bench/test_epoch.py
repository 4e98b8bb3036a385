"""One epoch of [784, 30, 30, 30, 10] (sigmoid, cross-entropy, SGD lr 0.1) on 10,000 rows.

Side by side in one group per (dtype, batch): the engine, a vectorised numpy loop, vgfast's
pure-numpy reference, the book's per-example loop (float64, batch 10 and 100, on 1,000 rows,
scaled), PyTorch CPU (skipped when absent) and the GEMM-only roof. See _workloads.py.

extra_info of each benchmark: examples_per_s and gflops (GEMM flops, 2 m n_in n_out per GEMM)
from the best round, and for the per-example loop rows_timed (examples/s is rows_timed / time).
Every runner except the roof is checked to end the epoch with the engine's parameters.
"""
import numpy as np
import pytest

import _workloads as W

CASES = [(d, b) for d in W.DTYPES for b in W.BATCHES]
IDS = [f"{d}-b{b}" for d, b in CASES]
ROUNDS = {10: 5, 100: 7, 1000: 7}


def _bench(benchmark, runner, dtype, batch, rounds):
    benchmark.group = f"epoch {dtype} batch {batch}"
    benchmark.pedantic(runner.run, setup=runner.reset, rounds=rounds, warmup_rounds=1,
                       iterations=1)
    if benchmark.stats is None:  # --benchmark-disable: the body ran once, nothing was timed
        return
    best = benchmark.stats.stats.min
    ex, gf = W.rates(best, runner.rows)
    benchmark.extra_info.update(variant=runner.name, dtype=dtype, batch=batch,
                                rows_timed=runner.rows, examples_per_s=round(ex),
                                gflops=round(gf, 3))


def _check(runner, expected, dtype):
    runner.reset()
    runner.run()
    tol = 1e-9 if dtype == "float64" else 2e-4
    np.testing.assert_allclose(runner.params(), expected, rtol=0, atol=tol)


@pytest.mark.parametrize("dtype,batch", CASES, ids=IDS)
def test_engine(benchmark, mnist_data, dtype, batch):
    X, y = mnist_data(dtype)
    _bench(benchmark, W.Engine(X, y, dtype, batch), dtype, batch, ROUNDS[batch])


@pytest.mark.parametrize("dtype,batch", CASES, ids=IDS)
def test_numpy_loop(benchmark, mnist_data, engine_result, dtype, batch):
    X, y = mnist_data(dtype)
    r = W.NumpyLoop(X, y, dtype, batch)
    _bench(benchmark, r, dtype, batch, ROUNDS[batch])
    _check(r, engine_result(dtype, batch), dtype)


@pytest.mark.parametrize("dtype,batch", CASES, ids=IDS)
def test_reference(benchmark, mnist_data, engine_result, dtype, batch):
    X, y = mnist_data(dtype)
    r = W.ReferenceLoop(X, y, dtype, batch)
    _bench(benchmark, r, dtype, batch, 3)
    _check(r, engine_result(dtype, batch), dtype)


@pytest.mark.parametrize("batch", W.PER_EXAMPLE_BATCHES)
def test_per_example_1000rows(benchmark, mnist_data, batch):
    """network2's loop on the first 1,000 rows of the epoch; examples/s = 1,000 / time."""
    X, y = mnist_data("float64")
    r = W.PerExample(X, y, "float64", batch)
    _bench(benchmark, r, "float64", batch, 3)
    benchmark.extra_info["note"] = (f"timed on {r.rows} of {X.shape[0]} rows; "
                                    f"examples_per_s scaled from those")


@pytest.mark.parametrize("dtype,batch", CASES, ids=IDS)
def test_torch(benchmark, mnist_data, engine_result, dtype, batch):
    if W.torch is None:
        pytest.skip("PyTorch is not installed")
    X, y = mnist_data(dtype)
    r = W.Torch(X, y, dtype, batch)
    _bench(benchmark, r, dtype, batch, 3 if batch == 10 else 5)
    _check(r, engine_result(dtype, batch), dtype)


@pytest.mark.parametrize("dtype,batch", CASES, ids=IDS)
def test_roof(benchmark, mnist_data, dtype, batch):
    X, y = mnist_data(dtype)
    _bench(benchmark, W.Roof(X, y, dtype, batch), dtype, batch, ROUNDS[batch])
