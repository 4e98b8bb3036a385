# cython: language_level=3, boundscheck=False, wraparound=False
"""Python access to the row-major BLAS shim, for tests and the GEMM-only benchmark roof."""
import numpy as np
cimport numpy as cnp
from cython cimport floating
from vgfast._blas cimport gemm_rm

cnp.import_array()


def gemm(floating[:, ::1] a, floating[:, ::1] b, floating[:, ::1] c, bint trans_a=False,
         bint trans_b=False, double alpha=1.0, double beta=0.0):
    """c = alpha * op(a) @ op(b) + beta * c, in place, row-major (op = transpose when asked)."""
    cdef int m = a.shape[1] if trans_a else a.shape[0]
    cdef int k = a.shape[0] if trans_a else a.shape[1]
    cdef int kb = b.shape[1] if trans_b else b.shape[0]
    cdef int n = b.shape[0] if trans_b else b.shape[1]
    if k != kb or c.shape[0] != m or c.shape[1] != n:
        raise ValueError(f"gemm: shapes do not match: op(a) is ({m}, {k}), op(b) is ({kb}, {n}), "
                         f"c is ({c.shape[0]}, {c.shape[1]})")
    if m == 0 or n == 0:
        return
    cdef char ta = 84 if trans_a else 78  # 'T' or 'N'
    cdef char tb = 84 if trans_b else 78
    with nogil:
        gemm_rm(ta, tb, m, n, k, <floating>alpha,
                &a[0, 0], a.shape[1], &b[0, 0], b.shape[1], <floating>beta, &c[0, 0], c.shape[1])


cdef void _roof(floating* dummy, Py_ssize_t n, const Py_ssize_t[:, ::1] d,
                const Py_ssize_t[:, ::1] ptr, const double[::1] alpha,
                Py_ssize_t repeats) noexcept nogil:
    cdef Py_ssize_t r, i
    for r in range(repeats):
        for i in range(n):
            gemm_rm(<char>d[i, 0], <char>d[i, 1], <int>d[i, 2], <int>d[i, 3], <int>d[i, 4],
                    <floating>alpha[i], <floating*>ptr[i, 0], <int>d[i, 5],
                    <floating*>ptr[i, 1], <int>d[i, 6], <floating>0, <floating*>ptr[i, 2],
                    <int>d[i, 7])


def gemm_sequence(list mats, Py_ssize_t repeats):
    """Run a fixed sequence of GEMMs `repeats` times in one tight nogil loop (benchmark roof).

    mats: list of (a, b, c, trans_a, trans_b, alpha), C-contiguous 2-D arrays of one dtype,
    computing c = alpha * op(a) @ op(b) each time. Shapes are checked once, up front.
    """
    cdef Py_ssize_t n = len(mats), i
    d = np.zeros((n, 8), dtype=np.intp)
    ptr = np.zeros((n, 3), dtype=np.intp)
    alpha = np.zeros(n, dtype=np.float64)
    dtype = None
    for i, (a, b, c, ta, tb, al) in enumerate(mats):
        for x in (a, b, c):
            if not (isinstance(x, np.ndarray) and x.ndim == 2 and x.flags.c_contiguous):
                raise ValueError("gemm_sequence: every matrix must be a C-contiguous 2-D array")
            if dtype is None:
                dtype = x.dtype
            if x.dtype != dtype or dtype not in (np.float32, np.float64):
                raise TypeError("gemm_sequence: all matrices must share dtype float32 or float64")
        gemm(a, b, c, ta, tb, al, 0.0)  # checks shapes
        m = a.shape[1] if ta else a.shape[0]
        k = a.shape[0] if ta else a.shape[1]
        nn = b.shape[0] if tb else b.shape[1]
        d[i] = (ord('T') if ta else ord('N'), ord('T') if tb else ord('N'), m, nn, k,
                a.shape[1], b.shape[1], c.shape[1])
        ptr[i] = (a.ctypes.data, b.ctypes.data, c.ctypes.data)
        alpha[i] = al
    cdef Py_ssize_t[:, ::1] dv = d
    cdef Py_ssize_t[:, ::1] pv = ptr
    cdef double[::1] av = alpha
    if n == 0:
        return
    if dtype == np.float64:
        with nogil:
            _roof(<double*>NULL, n, dv, pv, av, repeats)
    else:
        with nogil:
            _roof(<float*>NULL, n, dv, pv, av, repeats)
