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
