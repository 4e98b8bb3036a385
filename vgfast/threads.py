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


_CONTROLLER = None


def one_blas_thread():
    """A context holding BLAS to one thread, if threadpoolctl is installed (else no limit).

    For numpy work on small operands (network2's book-sized products, the probes' Hessian-vector
    products and Lanczos vectors of a few ten thousand entries): BLAS threads cost more to wake,
    and spin on a busy machine, than they save there (measured on 2 busy cores: a full-batch
    network2 step of 1000 rows, 15 ms of CPU with one thread against 98 ms with two; 20 Lanczos
    steps on 26,000 parameters, 17 ms against 260 ms). The limit is process-wide while it lasts,
    as with :func:`blas_threads`. The controller is built once (about 20 ms); each use costs
    microseconds.
    """
    global _CONTROLLER
    if _CONTROLLER is None:
        try:
            from threadpoolctl import ThreadpoolController
            _CONTROLLER = ThreadpoolController()
        except ImportError:
            _CONTROLLER = False
    if not _CONTROLLER:
        from contextlib import nullcontext
        return nullcontext()
    return _CONTROLLER.limit(limits=1, user_api="blas")
