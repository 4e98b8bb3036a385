# One fused-type BLAS shim over scipy.linalg.cython_blas. Row-major is handled here only:
# a row-major matrix is the column-major storage of its transpose, so
# C = op(A) op(B) (row-major) is computed as C^T = op(B)^T op(A)^T (column-major).
from cython cimport floating
from scipy.linalg.cython_blas cimport dgemm, sgemm, daxpy, saxpy


cdef inline void gemm_rm(char transa, char transb, int m, int n, int k, floating alpha,
                         const floating* a, int lda, const floating* b, int ldb,
                         floating beta, floating* c, int ldc) noexcept nogil:
    # c[:m, :n] = alpha * op(a) @ op(b) + beta * c  (all row-major, op(x) = x or x.T)
    if floating is double:
        dgemm(&transb, &transa, &n, &m, &k, &alpha, <double*>b, &ldb, <double*>a, &lda,
              &beta, c, &ldc)
    else:
        sgemm(&transb, &transa, &n, &m, &k, &alpha, <float*>b, &ldb, <float*>a, &lda,
              &beta, c, &ldc)


cdef inline void axpy(int n, floating alpha, const floating* x, floating* y) noexcept nogil:
    # y += alpha * x
    cdef int one = 1
    if floating is double:
        daxpy(&n, &alpha, <double*>x, &one, y, &one)
    else:
        saxpy(&n, &alpha, <float*>x, &one, y, &one)
