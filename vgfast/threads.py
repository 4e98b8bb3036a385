"""BLAS thread control. scipy's BLAS (OpenBLAS) is limited through threadpoolctl when installed
(pip install threadpoolctl; it is in the [test] and [bench] extras)."""
from contextlib import contextmanager


@contextmanager
def blas_threads(n):
    """Limit the BLAS under numpy/scipy (and so the engine's GEMMs) to n threads in a block.

    >>> with vgfast.blas_threads(1):
    ...     vgfast.train(net, X, y)
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer number of threads; got {n!r}")
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        raise ImportError("blas_threads needs threadpoolctl: pip install threadpoolctl (or set "
                          "OPENBLAS_NUM_THREADS before starting Python)") from None
    with threadpool_limits(limits=n, user_api="blas"):
        yield
