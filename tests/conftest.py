import os

os.environ.setdefault("MPLBACKEND", "Agg")

import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def rel_err(a, b):
    """||a - b|| / max(||a||, ||b||, tiny): the relative error used throughout the tests."""
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    den = max(np.linalg.norm(a), np.linalg.norm(b), 1e-300)
    return np.linalg.norm(a - b) / den


def fd_gradient(net, X, Y, h=1e-6, batch_stats=False):
    """Central differences of net.cost over every parameter: the independent oracle of the
    gradient tests."""
    p0 = net.params.copy()
    g = np.zeros(net.n_params)
    for i in range(net.n_params):
        net.params[i] = p0[i] + h
        cp = net.cost(X, Y, batch_stats=batch_stats)
        net.params[i] = p0[i] - h
        cm = net.cost(X, Y, batch_stats=batch_stats)
        net.params[i] = p0[i]
        g[i] = (cp - cm) / (2 * h)
    return g
