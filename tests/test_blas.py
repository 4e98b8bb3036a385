"""The row-major BLAS shim against numpy for every transpose combination and both dtypes."""
import itertools

import numpy as np
import pytest

from vgfast import _blas


@pytest.mark.parametrize("ta,tb", list(itertools.product([False, True], repeat=2)))
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-13), (np.float32, 1e-5)])
def test_gemm_matches_numpy(ta, tb, dtype, tol):
    rng = np.random.default_rng(0)
    m, k, n = 7, 5, 3
    a = rng.normal(size=(k, m) if ta else (m, k)).astype(dtype)
    b = rng.normal(size=(n, k) if tb else (k, n)).astype(dtype)
    c = rng.normal(size=(m, n)).astype(dtype)
    expect = 0.5 * (a.T if ta else a) @ (b.T if tb else b) + 2.0 * c
    _blas.gemm(a, b, c, ta, tb, alpha=0.5, beta=2.0)
    assert np.allclose(c, expect, rtol=tol, atol=tol)


def test_gemm_refuses_mismatched_shapes():
    with pytest.raises(ValueError, match="shapes"):
        _blas.gemm(np.ones((2, 3)), np.ones((2, 3)), np.ones((2, 3)))


def test_gemm_sequence_runs_the_same_products():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(4, 6)), rng.normal(size=(5, 6))
    c = np.zeros((4, 5))
    _blas.gemm_sequence([(a, b, c, False, True, 1.0)], 3)
    assert np.allclose(c, a @ b.T, rtol=1e-13)
    with pytest.raises(TypeError):
        _blas.gemm_sequence([(a.astype(np.float32), b, c, False, True, 1.0)], 1)
