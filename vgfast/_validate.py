"""Argument checks at the Python boundary: every message names the argument and what was expected.

Nothing reaches the compiled engine before passing through here, so the engine can trust its
inputs (dtype, C-contiguity, shapes, finiteness, label range).
"""
import math
import numbers

import numpy as np

DTYPES = {"float64": np.float64, "float32": np.float32}


def dtype_of(dtype, name="dtype"):
    """np.float64 or np.float32 from a name, numpy dtype or type."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt is None or dt not in (np.float64, np.float32):
        raise ValueError(f"{name} must be 'float64' or 'float32'; got {dtype!r}")
    return dt.type


def check_choice(value, choices, name):
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {sorted(choices)}; got {value!r}")
    return value


def check_number(value, name, *, low=None, high=None, low_open=False, high_open=False,
                 integer=False):
    """A finite real number (an int when integer=True) in [low, high] (open ends as asked)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a {'integer' if integer else 'number'}; "
                        f"got {type(value).__name__} {value!r}")
    if integer and not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer; got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite; got {value!r}")
    if low is not None and (value < low or (low_open and value == low)):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}; got {value!r}")
    if high is not None and (value > high or (high_open and value == high)):
        raise ValueError(f"{name} must be {'<' if high_open else '<='} {high}; got {value!r}")
    return int(value) if integer else float(value)


def as_matrix(X, name, dtype, n_cols=None, *, allow_1d=False, check_finite=True):
    """X as a C-contiguous finite 2-D array of dtype (copied only when needed).

    Returns (array, was_1d). Integer, boolean, complex and object arrays are refused: integer
    pixels are usually unscaled (divide by 256 as the book does) and silent conversion hides that.
    check_finite=False leaves the NaN/Inf check to the caller (train() does it in the same pass
    that measures max |X|, see check_finite_rows).
    """
    if isinstance(X, np.ndarray):
        arr = X
    else:
        try:
            arr = np.asarray(X)
        except (ValueError, TypeError) as e:
            raise TypeError(f"{name} must be an array of floats; could not convert: {e}") from None
    if arr.dtype.kind not in "f":
        raise TypeError(f"{name} must be a floating-point array (float64 or float32); got dtype "
                        f"{arr.dtype}" + (" (integer pixels? scale them, e.g. X / 256)"
                                          if arr.dtype.kind in "iu" else ""))
    was_1d = False
    if arr.ndim == 1 and allow_1d:
        arr = arr.reshape(1, -1)
        was_1d = True
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D with examples as rows, shape (n, {n_cols or 'd'}); "
                         f"got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty: need at least one row")
    if n_cols is not None and arr.shape[1] != n_cols:
        raise ValueError(f"{name} must have {n_cols} columns (the network's input size); got "
                         f"shape {arr.shape}")
    src = arr
    with np.errstate(over="ignore"):  # checked below: a float64 beyond float32 becomes Inf
        arr = np.ascontiguousarray(arr, dtype=dtype)
    if check_finite or src.dtype != arr.dtype:  # a cast: tell overflow from bad input now
        check_finite_rows(arr, name, src=src)
    return arr, was_1d


def check_finite_rows(arr, name, bad=None, src=None):
    """Raise naming the first row and column of arr holding NaN or Inf (bad: that row, if known;
    src: the array before a cast to arr's dtype, to tell an overflowing cast from bad input)."""
    bad = first_nonfinite_row(arr) if bad is None else bad
    if bad is not None:
        col = int(np.argmax(~np.isfinite(arr[bad])))
        if src is not None and src.dtype != arr.dtype and np.isfinite(src[bad, col]):
            raise ValueError(f"{name} holds a value too large for {arr.dtype.name} "
                             f"({src[bad, col]!r} at row {bad}, column {col})")
        raise ValueError(f"{name} contains NaN or Inf (first at row {bad}, column {col})")


def first_nonfinite_row(arr, chunk_bytes=1 << 22):
    """Index of the first row holding NaN or Inf, or None.

    Fast path: the row sums ``arr @ ones`` (one BLAS pass, no temporary beyond a vector) are all
    finite only if every element is (NaN and Inf propagate through a sum); a sum can also
    overflow with finite elements, so when any row sum is not finite the rows are scanned
    exactly, in chunks of ~4 MB so that a large data set needs no full-size temporary.
    """
    if arr.ndim == 2 and arr.shape[0] and arr.shape[1]:
        with np.errstate(all="ignore"):
            if np.isfinite(arr @ np.ones(arr.shape[1], arr.dtype)).all():
                return None
    rows = max(1, chunk_bytes // max(1, arr.itemsize * arr.shape[1]))
    for start in range(0, arr.shape[0], rows):
        block = arr[start:start + rows]
        ok = np.isfinite(block)
        if not ok.all():
            return start + int(np.argmin(ok.all(axis=1)))
    return None


def as_targets(Y, name, n_rows, n_out, dtype):
    """Y as (labels int64 (n,), None) or (None, targets (n, n_out) of dtype)."""
    if isinstance(Y, np.ndarray):
        arr = Y
    else:
        try:
            arr = np.asarray(Y)
        except (ValueError, TypeError) as e:
            raise TypeError(f"{name} must be integer labels or a target matrix: {e}") from None
    if arr.ndim == 1:
        if arr.dtype.kind not in "iu":
            raise TypeError(f"{name}: a 1-D {name} must hold integer class labels; got dtype "
                            f"{arr.dtype} (pass a ({n_rows}, {n_out}) target matrix for "
                            f"real-valued targets)")
        if arr.shape[0] != n_rows:
            raise ValueError(f"{name} must have one label per row of X ({n_rows}); got "
                             f"{arr.shape[0]}")
        if n_rows and (arr.min() < 0 or arr.max() >= n_out):
            raise ValueError(f"{name}: labels must be in 0..{n_out - 1} (the output layer has "
                             f"{n_out} units); got values in {arr.min()}..{arr.max()}")
        return np.ascontiguousarray(arr, dtype=np.int64), None
    if arr.ndim == 2:
        if arr.dtype.kind not in "fiu" or arr.dtype.kind == "b":
            raise TypeError(f"{name} target matrix must be real-valued; got dtype {arr.dtype}")
        if arr.shape != (n_rows, n_out):
            raise ValueError(f"{name} target matrix must have shape ({n_rows}, {n_out}); got "
                             f"{arr.shape}")
        with np.errstate(over="ignore"):  # checked below, as for X
            arr = np.ascontiguousarray(arr, dtype=dtype)
        bad = first_nonfinite_row(arr)
        if bad is not None:
            raise ValueError(f"{name} contains NaN or Inf (first at row {bad}; in "
                             f"{np.dtype(dtype).name})")
        return None, arr
    raise ValueError(f"{name} must be 1-D integer labels (n,) or a target matrix (n, {n_out}); "
                     f"got shape {arr.shape}")
