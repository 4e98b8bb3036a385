"""Fixtures of the benchmark suite (not part of the test suite).

Run: python -m pytest bench/ --benchmark-only --benchmark-group-by=group

Every benchmark runs on one BLAS thread (threadpoolctl) and, when PyTorch is installed, one
torch thread, so the comparison is core for core.
"""
import importlib.util
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
if importlib.util.find_spec("vgfast") is None:  # a checkout built in place, not installed
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from threadpoolctl import threadpool_limits  # noqa: E402

import _workloads as W  # noqa: E402


@pytest.fixture(autouse=True)
def one_thread():
    """One BLAS thread (numpy's and scipy's OpenBLAS alike) and one torch thread."""
    if W.torch is not None:
        before = W.torch.get_num_threads()
        W.torch.set_num_threads(1)
    with threadpool_limits(1, "blas"):
        yield
    if W.torch is not None:
        W.torch.set_num_threads(before)


@pytest.fixture(scope="session")
def mnist_like():
    """(X, y): 10,000 rows x 784 uniform in [0, 1) (float64, fixed seed), labels 0-9."""
    X, y = W.make_data()
    X.setflags(write=False)
    y.setflags(write=False)
    return X, y


@pytest.fixture(scope="session")
def mnist_data(mnist_like):
    """mnist_data(dtype) -> (X as dtype, y), converted once per dtype."""
    X, y = mnist_like
    cache = {}

    def get(dtype):
        key = np.dtype(dtype).name
        if key not in cache:
            Xd = np.ascontiguousarray(X, dtype=key)
            Xd.setflags(write=False)
            cache[key] = (Xd, y)
        return cache[key]

    return get


@pytest.fixture(scope="session")
def engine_result(mnist_data):
    """engine_result(dtype, batch) -> the engine's parameters after the epoch (for checks)."""
    cache = {}

    def get(dtype, batch):
        if (dtype, batch) not in cache:
            with threadpool_limits(1, "blas"):
                X, y = mnist_data(dtype)
                e = W.Engine(X, y, dtype, batch)
                e.reset()
                e.run()
                cache[dtype, batch] = e.params()
        return cache[dtype, batch]

    return get
