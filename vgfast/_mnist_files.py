"""Readers of the files MNIST comes in: Nielsen's pickle (through a restricted unpickler) and
the IDX format (MNIST, Fashion-MNIST). Used by :mod:`vgfast.datasets`; every error names the
file.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import zlib

import numpy as np

N_PIXELS = 784
"""Pixels in one MNIST image (28 x 28)."""

N_CLASSES = 10
"""Digits 0 to 9."""

_PIXEL_SCALE = 1.0 / 256.0  # exact in binary, so pixel * _PIXEL_SCALE == pixel / 256

_IDX_IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions
_IDX_LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension

_GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path: str) -> bytes:
    """Read a file, gunzipping it when its content is gzip; corrupt gzip -> ValueError."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == _GZIP_MAGIC:
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise ValueError(f"{path!r} is a corrupt or truncated gzip file: {exc}") from None
    if path.endswith(".gz"):
        raise ValueError(f"{path!r} ends in .gz but is not a gzip file (no 1f 8b header)")
    return raw


# The only globals a pickle of numpy arrays (and tuples of them) needs: rebuild an ndarray,
# its dtype, and (protocol 5) an array from a buffer. Each only allocates and fills an array.
_PICKLE_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
}


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle names a global that reading arrays does not need (it could run code)."""


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles tuples, lists, numbers, strings and numpy arrays, and nothing else.

    ``find_class`` is the only way a pickle reaches code; it admits the few numpy callables in
    ``_PICKLE_ALLOWED`` and refuses every other name before importing anything. Persistent ids
    (``persistent_load``) are refused by the base class.
    """

    def find_class(self, module, name):
        if (module, name) == ("_codecs", "encode"):
            return _latin1_bytes  # how protocols 0-2 of Python 3 write bytes
        if (module, name) not in _PICKLE_ALLOWED:
            raise UnsafePickleError(
                f"the pickle asks for {module}.{name}, which is not needed to read numpy "
                f"arrays; refusing it (it could run arbitrary code)"
            )
        return super().find_class(module, name)


def _latin1_bytes(text, encoding="latin1"):
    """``_codecs.encode(text, "latin1")`` for a str, and nothing else (no codec lookup)."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafePickleError(
            f"the pickle asks for _codecs.encode with {type(text).__name__} and encoding "
            f"{encoding!r}; only latin1 text (bytes in protocols 0-2) is admitted"
        )
    return text.encode("latin1")


_MD5_CACHE: dict[tuple[str, int, int], str] = {}


def _md5(path: str) -> str:
    stat = os.stat(path)
    key = (os.path.abspath(path), stat.st_mtime_ns, stat.st_size)
    if key not in _MD5_CACHE:
        digest = hashlib.md5(usedforsecurity=False)
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        _MD5_CACHE[key] = digest.hexdigest()
    return _MD5_CACHE[key]


def _read_pickle(path: str):
    """Load Nielsen's mnist.pkl.gz: ((X_train, y_train), (X_val, y_val), (X_test, y_test)).

    Returns the three validated (X, y) pairs, X as stored (already pixel / 256), y as int64.
    """
    with open(path, "rb") as f:
        compressed = f.read(2) == _GZIP_MAGIC
        f.seek(0)
        if not compressed and path.endswith(".gz"):
            raise ValueError(f"{path!r} ends in .gz but is not a gzip file (no 1f 8b header)")
        # Stream through gzip rather than decompress first: mnist.pkl.gz unpacks to ~220 MB.
        stream = gzip.GzipFile(fileobj=f, mode="rb") if compressed else f
        try:
            # encoding="latin1": the file was pickled by Python 2 and holds numpy arrays.
            data = _ArrayUnpickler(stream, encoding="latin1").load()
        except UnsafePickleError as exc:
            raise ValueError(f"{path!r} is not a plain pickle of arrays: {exc}") from None
        except pickle.UnpicklingError as exc:  # e.g. a persistent id, refused by the base class
            raise ValueError(f"{path!r} is not a readable pickle of arrays ({exc})") from None
        except (OSError, EOFError, zlib.error) as exc:
            if not compressed:
                raise ValueError(f"{path!r} is a truncated or unreadable pickle ({exc})") from None
            raise ValueError(f"{path!r} is a corrupt or truncated gzip file ({exc})") from None
        except MemoryError:
            raise
        except Exception as exc:  # unpickling garbage can raise almost anything
            raise ValueError(
                f"{path!r} is not a readable pickle ({type(exc).__name__}: {exc})"
            ) from None

    expected = "a 3-tuple ((X_train, y_train), (X_validation, y_validation), (X_test, y_test))"
    if not isinstance(data, (tuple, list)) or len(data) != 3:
        raise ValueError(f"{path!r} should hold {expected}, not {type(data).__name__}")
    parts = []
    for name, part in zip(("training", "validation", "test"), data):
        if not isinstance(part, (tuple, list)) or len(part) != 2:
            raise ValueError(
                f"{path!r}: the {name} part should be a pair (X, y); {expected} expected"
            )
        X, y = np.asarray(part[0]), np.asarray(part[1])
        if X.ndim != 2 or X.shape[1] != N_PIXELS or X.dtype.kind != "f":
            raise ValueError(
                f"{path!r}: the {name} images should be a floating (n, {N_PIXELS}) array, "
                f"got {X.dtype} of shape {X.shape}"
            )
        if y.ndim != 1 or y.shape[0] != X.shape[0] or y.dtype.kind not in "iu":
            raise ValueError(
                f"{path!r}: the {name} labels should be integers of shape ({X.shape[0]},), "
                f"got {y.dtype} of shape {y.shape}"
            )
        if X.size and not (np.isfinite(X).all() and X.min() >= 0 and X.max() <= 1):
            raise ValueError(f"{path!r}: the {name} images should lie in [0, 1] (pixel / 256)")
        if y.size and (y.min() < 0 or y.max() >= N_CLASSES):
            raise ValueError(
                f"{path!r}: the {name} labels should be in 0..9, found {y.min()}..{y.max()}"
            )
        parts.append((X, y.astype(np.int64)))
    return parts


_IDX_NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def _find_idx(directory: str, name: str) -> str:
    """The path of one IDX file in ``directory``, under any of its usual spellings."""
    dotted = name.replace("-idx", ".idx")  # train-images.idx3-ubyte, as some mirrors spell it
    spellings = [name, dotted, name + ".gz", dotted + ".gz"]
    for spelling in spellings:
        candidate = os.path.join(directory, spelling)
        if os.path.isfile(candidate):
            return candidate
    raise FileNotFoundError(
        f"MNIST directory {directory!r} has no {name} file (looked for {', '.join(spellings)})"
    )


def _read_idx(path: str, magic: int) -> np.ndarray:
    """Read an IDX file of unsigned bytes: images as uint8 (n, 784), labels as int64 (n,)."""
    data = _read_bytes(path)
    kind = "image" if magic == _IDX_IMAGES_MAGIC else "label"
    n_dims = 3 if magic == _IDX_IMAGES_MAGIC else 1
    header_size = 4 + 4 * n_dims
    if len(data) < 4:
        raise ValueError(
            f"{path!r} is truncated: {len(data)} bytes, too short for an IDX magic number"
        )
    found = int.from_bytes(data[:4], "big")
    if found != magic:
        known = {
            _IDX_IMAGES_MAGIC: " (that of an IDX image file)",
            _IDX_LABELS_MAGIC: " (that of an IDX label file)",
        }
        raise ValueError(
            f"{path!r} is not an IDX {kind} file: "
            f"magic number {found}{known.get(found, '')}, expected {magic}"
        )
    if len(data) < header_size:
        raise ValueError(
            f"{path!r} is truncated: {len(data)} bytes, "
            f"shorter than the {header_size}-byte IDX {kind} header"
        )
    dims = [int.from_bytes(data[4 * i : 4 * i + 4], "big") for i in range(1, n_dims + 1)]
    if n_dims == 3 and dims[1:] != [28, 28]:
        raise ValueError(f"{path!r}: images are {dims[1]}x{dims[2]}, expected 28x28")
    expected = header_size + int(np.prod(dims))
    if len(data) != expected:
        raise ValueError(
            f"{path!r} has {len(data)} bytes but its header ({' x '.join(map(str, dims))}) "
            f"needs {expected}: the file is {'truncated' if len(data) < expected else 'too long'}"
        )
    values = np.frombuffer(data, dtype=np.uint8, offset=header_size)
    if n_dims == 3:
        return values.reshape(dims[0], N_PIXELS)
    if values.size and values.max() >= N_CLASSES:
        raise ValueError(f"{path!r} has label {int(values.max())}; labels must be in 0..9")
    return values.astype(np.int64)


def _read_idx_pair(directory: str, stem: str):
    """Images and labels of one IDX pair, checking that they have the same count."""
    images_path = _find_idx(directory, _IDX_NAMES[stem + "_images"])
    labels_path = _find_idx(directory, _IDX_NAMES[stem + "_labels"])
    images = _read_idx(images_path, _IDX_IMAGES_MAGIC)
    labels = _read_idx(labels_path, _IDX_LABELS_MAGIC)
    if images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"{images_path!r} has {images.shape[0]} images "
            f"but {labels_path!r} has {labels.shape[0]} labels"
        )
    return images, labels


def _scaled(pixels: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """uint8 pixels -> C-contiguous pixel / 256 in ``dtype`` (exact in float32 and float64)."""
    X = np.ascontiguousarray(pixels, dtype=dtype)
    X *= _PIXEL_SCALE
    return X
