"""Checkpoints: a network (and optionally its optimiser, RNG and training state) in one file.

Format
------
A checkpoint is one uncompressed ``.npz`` archive (``numpy.savez``) holding only plain numeric
arrays, so it loads with ``allow_pickle=False``; nothing in it is ever executed:

``header``
    UTF-8 JSON (a uint8 array) with ``format = "vgfast-checkpoint"``, ``format_version``, the
    ``library_version`` that wrote it (``vgfast.__version__``), the network (sizes,
    activations, output, cost, dtype, leaky_slope, elu_alpha, init, batch_norm, bn_eps,
    bn_momentum, n_params), the optimiser (class name, hyper-parameters, step count ``t`` and
    epoch count; a learning-rate or momentum :class:`~vgfast.optim.Schedule` is stored as its
    class name and constructor numbers), the RNG state (``Generator.bit_generator.state``),
    ``epoch``, ``extra`` (any JSON value) and, for a training checkpoint, the dropout seed and
    counter, History scalars and early-stopping state.
``params``
    The flat parameter vector, in the network's dtype.
``bn_running``
    The running means and variances of the batch-normalised layers (the engine's buffer).
``optimizer_s1``, ``optimizer_s2``
    The optimiser's state buffers (when it has taken a step).
``history_<field>``, ``best_params``
    A training checkpoint's History arrays and early-stopping best parameters.

Files are written atomically: to a temporary file in the target's directory, flushed and
fsync'ed, then renamed over the target (``os.replace``) and the directory fsync'ed, so a crash
leaves either the old checkpoint or the new one, never a torn file; temporary files left by a
writer that was killed are removed by the next save to the same path. The path is used as given
(no ``.npz`` is appended). See :mod:`vgfast._archive`.

:func:`load` refuses anything that is not a complete, well-formed checkpoint of a supported
format version with a :class:`CheckpointError` (a ``ValueError``) naming the path. Before any
array is read, every entry of the archive is checked against the file (stored uncompressed,
declared sizes no larger than the file, a known name, the size the header implies), so a
zip bomb or a header claiming a huge array costs nothing. Everything is rebuilt through the
validating constructors (:class:`~vgfast.Network`, the optimiser's class), so a crafted header
cannot set a value the constructor would refuse. The network part of the format is also what
pickling a Network stores (see :mod:`vgfast._state`).

>>> vgfast.checkpoint.save(net, "run.ckpt", optimizer=opt, epoch=5)
>>> ck = vgfast.checkpoint.load("run.ckpt")
>>> ck.net, ck.optimizer, ck.epoch
"""
import json
import numbers
import re
import struct
import zipfile
import zlib

import numpy as np

from . import _archive, _state
from . import history as _history
from ._archive import check_path
from ._state import FORMAT, FORMAT_VERSION, StateError, optimizer_spec  # noqa: F401 (API)
from .history import EPOCH_FIELDS, HIST_BINS, PROBE_FIELDS, RECORD_FIELDS, History
from .network import Network

HISTORY_ARRAYS = EPOCH_FIELDS + RECORD_FIELDS + ("record_steps",) + PROBE_FIELDS
INT_ARRAYS = ("record_steps", "probe_steps")
#: History fields with one column per layer
PER_LAYER = getattr(_history, "PER_LAYER", ("grad_norms", "weight_grad_norms"))
#: the archive entries a checkpoint may hold
ENTRIES = re.compile(r"(header|params|bn_running|optimizer_s[12]|best_params|best_running|"
                     r"history_(" + "|".join(HISTORY_ARRAYS) + r"))\Z")

__all__ = ["save", "load", "Checkpoint", "CheckpointError", "save_training_state", "check_path",
           "load_training_state", "TrainingState", "FORMAT_VERSION"]


class CheckpointError(ValueError):
    """The file is not a (readable, complete, supported) vgfast checkpoint."""


# ---------------------------------------------------------------------------- public API


class Checkpoint:
    """What :func:`load` returns.

    Attributes
    ----------
    path : str
    net : Network, with the saved parameters (and batch-norm running statistics).
    optimizer : Optimizer or None; same class and hyper-parameters, state buffers, ``t`` and
        ``epoch`` restored (None when saved without one).
    epoch : int or None, as passed to :func:`save` (training checkpoints: epochs completed).
    rng_state : dict or None, a ``bit_generator.state``; :meth:`rng` rebuilds the Generator.
    extra : the JSON value passed as ``extra`` (None when not given).
    version : int, the file's format version.
    library_version : str, the vgfast version that wrote the file.
    header : dict, the raw JSON header.
    """

    def __init__(self, path, header, net, optimizer, arrays=None):
        # arrays: the file's arrays, used by TrainingState
        self.path = path
        self.header = header
        self.net = net
        self.optimizer = optimizer
        self.epoch = header.get("epoch")
        self.rng_state = header.get("rng_state")
        self.extra = header.get("extra")
        self.version = header["format_version"]
        self.library_version = header["library_version"]

    def rng(self):
        """A numpy Generator in the saved state (None when no RNG state was saved)."""
        if self.rng_state is None:
            return None
        return _checked(self.path, _state.generator_from_state, self.rng_state)

    def __repr__(self):
        opt = type(self.optimizer).__name__ if self.optimizer is not None else None
        return (f"Checkpoint({self.path!r}, net={self.net!r}, optimizer={opt}, "
                f"epoch={self.epoch}, version={self.version})")


def save(net, path, optimizer=None, rng_state=None, epoch=None, extra=None):
    """Write `net` (and optionally optimiser state, RNG state, epoch, extra) to `path` atomically.

    Parameters
    ----------
    net : Network
    path : str or os.PathLike; its directory must exist. Used as given (no suffix added).
    optimizer : vgfast optimiser (SGD, AdaGrad, RMSProp, Adam, AdamW) or None. Its learning
        rate / momentum may be numbers or vgfast.optim schedules; other Schedule subclasses
        cannot be saved (ValueError).
    rng_state : numpy Generator, BitGenerator, a ``bit_generator.state`` dict, or None.
    epoch : int >= 0 or None.
    extra : any JSON-serialisable value or None (TypeError otherwise).

    Returns
    -------
    str, the path written.
    """
    return _archive.write(path, _state.entries(_snapshot(net, optimizer, rng_state, epoch,
                                                         extra)))


def load(path):
    """Read a checkpoint written by :func:`save` or :func:`save_training_state`.

    Returns
    -------
    Checkpoint (``.net``, ``.optimizer``, ``.epoch``, ``.rng_state``, ``.extra``, ``.version``)

    Raises
    ------
    FileNotFoundError, IsADirectoryError, PermissionError
        The path cannot be opened.
    CheckpointError (a ValueError)
        Not a vgfast checkpoint, corrupt or truncated, or written by a newer format version;
        the message names the path.
    """
    path = check_path(path, "path", must_exist=True)
    header, arrays = _read(path)
    return _build(path, header, arrays)


class TrainingState(Checkpoint):
    """What :func:`load_training_state` returns: a Checkpoint plus what train() needs to resume.

    Attributes (besides Checkpoint's)
    ---------------------------------
    epoch : int, the number of epochs completed; the next epoch to run.
    generator : numpy Generator, the shuffling RNG in its saved state.
    drop_seed, counter : int, the dropout stream's seed and position.
    history : History in its in-progress form (fields are Python lists train() extends).
    best : (value, epoch, params, running statistics or None) of early stopping, or None.
    bad_epochs : int, early stopping's epochs without improvement.
    n_rows, batch_size : int or None, the run's data size and batch size (checked on resume).
    """

    def __init__(self, path, header, net, optimizer, arrays):
        super().__init__(path, header, net, optimizer, arrays)
        tr = header["training"]
        self.generator = self.rng()
        self.drop_seed = tr["drop_seed"]
        self.counter = tr["counter"]
        self.n_rows = tr.get("n_rows")
        self.batch_size = tr.get("batch_size")
        self.history = _history_from(tr["history"], arrays, net.L)
        es = tr.get("early_stopping")
        self.best = None
        self.bad_epochs = 0
        if es is not None:
            self.bad_epochs = es["bad_epochs"]
            if es.get("best_epoch") is not None:
                self.best = (es["best_value"], es["best_epoch"], arrays["best_params"],
                             arrays.get("best_running"))

    def check_compatible(self, net, n_rows=None, batch_size=None):
        """Raise ValueError unless `net` has the saved architecture (and the run's data size and
        batch size match, when given): resuming continues the same run."""
        want, got = self.net._spec(), net._spec()
        for k in ("sizes", "activations", "output", "cost", "dtype", "leaky_slope", "elu_alpha",
                  "batch_norm", "bn_eps", "bn_momentum"):
            if want[k] != got[k]:
                raise ValueError(f"resume: the checkpoint {self.path!r} holds a network with "
                                 f"{k}={want[k]!r}, but net has {k}={got[k]!r}")
        for name, saved, given in (("batch_size", self.batch_size, batch_size),
                                   ("number of training rows", self.n_rows, n_rows)):
            if saved is not None and given is not None and saved != given:
                raise ValueError(f"resume: the checkpoint {self.path!r} was trained with "
                                 f"{name} {saved}; got {given}. Resuming continues the same run "
                                 f"(same X, Y, batch_size); to fine-tune instead, load it with "
                                 f"vgfast.checkpoint.load and call train() without resume")

    def restore(self, net, optimizer=None):
        """Copy the saved parameters into `net` and the saved optimiser state into `optimizer`.

        optimizer None: the saved optimiser is returned. Otherwise it must be of the saved
        class; its own hyper-parameters are kept (so a resumed run may change them), its state
        buffers and step count are replaced. Returns the optimiser to train with.
        """
        self.check_compatible(net)
        if optimizer is None:
            optimizer = self.optimizer
            if optimizer is None:
                raise ValueError(f"resume: the checkpoint {self.path!r} has no optimiser "
                                 f"state; pass optimizer=")
        elif self.optimizer is not None:
            if type(optimizer) is not type(self.optimizer):
                raise ValueError(f"resume: the checkpoint {self.path!r} was trained with "
                                 f"{type(self.optimizer).__name__}; got optimizer "
                                 f"{type(optimizer).__name__}")
            optimizer.load_state_dict(self.optimizer.state_dict())
        with net._using() as eng:
            net.params[...] = self.net.params
            eng.running[...] = self.net._engine.running
        return optimizer


def save_training_state(path, net, optimizer, rng, drop_seed, counter, epoch, history, *,
                        best=None, bad_epochs=0, n_rows=None, batch_size=None, extra=None):
    """What train(checkpoint=...) writes after an epoch; everything a bitwise resume needs.

    rng : the shuffling Generator (its state after the epoch's permutation).
    drop_seed, counter : the dropout stream's seed and counter after the epoch.
    epoch : int, the number of epochs completed.
    history : the History so far (in-progress lists or finished arrays).
    best, bad_epochs : early stopping's (value, epoch, params[, batch-norm running statistics])
        or None, and its patience count.
    n_rows, batch_size : the run's data size and batch size, checked on resume.
    """
    if optimizer is None:
        raise ValueError("optimizer: a training checkpoint needs the optimiser")
    snap = _snapshot(net, optimizer, rng, epoch, extra)
    header, arrays = snap
    if epoch is None:
        raise ValueError("epoch: a training checkpoint needs the number of epochs completed")
    for name, v in (("drop_seed", drop_seed), ("counter", counter)):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or not 0 <= v < 2 ** 64:
            raise ValueError(f"{name} must be an integer in [0, 2**64); got {v!r}")
    if not isinstance(history, History):
        raise TypeError(f"history must be a vgfast.History; got {type(history).__name__}")
    hist_meta = {"steps_per_epoch": int(history.steps_per_epoch),
                 "best_epoch": None if history.best_epoch is None else int(history.best_epoch),
                 "stopped_early": bool(history.stopped_early),
                 "gns_state": [float(x) for x in history.gns_state]}
    for f in HISTORY_ARRAYS:
        v = getattr(history, f)
        if f in PER_LAYER:
            a = np.asarray(v, np.float64).reshape(-1, net.L) if len(v) else np.zeros((0, net.L))
        elif f == "grad_hist":
            a = np.asarray(v, np.float64).reshape(-1, net.L, HIST_BINS)
        else:
            a = np.asarray(v, np.int64 if f in INT_ARRAYS else np.float64).reshape(-1)
        arrays["history_" + f] = a
    es = None
    if best is not None or bad_epochs:
        es = {"bad_epochs": int(bad_epochs), "best_value": None, "best_epoch": None}
        if best is not None:
            value, best_epoch, best_params = best[:3]
            if len(best) > 3 and best[3] is not None and np.asarray(best[3]).size:
                br = np.asarray(best[3])
                if br.shape != net._engine.running.shape:
                    raise ValueError(f"best: running statistics of shape {br.shape}; the network "
                                     f"has {net._engine.running.shape}")
                arrays["best_running"] = np.ascontiguousarray(br, net.dtype)
            es["best_value"] = float(value)
            es["best_epoch"] = int(best_epoch)
            bp = np.asarray(best_params)
            if bp.shape != net.params.shape:
                raise ValueError(f"best: parameters of shape {bp.shape}; the network has "
                                 f"{net.params.shape}")
            arrays["best_params"] = np.ascontiguousarray(bp, net.dtype)
    header["training"] = {"drop_seed": int(drop_seed), "counter": int(counter),
                          "history": hist_meta, "early_stopping": es,
                          "n_rows": None if n_rows is None else int(n_rows),
                          "batch_size": None if batch_size is None else int(batch_size)}
    return _archive.write(path, _state.entries((header, arrays)))


def load_training_state(path):
    """Read a checkpoint written by :func:`save_training_state` (train(checkpoint=...)).

    Returns a :class:`TrainingState`; CheckpointError (ValueError) for a file that is not a
    training checkpoint.
    """
    path = check_path(path, "resume", must_exist=True)
    header, arrays = _read(path)
    if header.get("training") is None:
        raise CheckpointError(f"{path}: a network checkpoint without training state (written "
                              f"by save(), not train(checkpoint=...)); it cannot be resumed. "
                              f"Load it with vgfast.checkpoint.load instead")
    return _build(path, header, arrays, TrainingState)


def _snapshot(net, optimizer, rng_state, epoch, extra):
    if not isinstance(net, Network):
        raise TypeError(f"net must be a vgfast.Network; got {type(net).__name__}")
    return _state.snapshot(net._state(), optimizer, rng_state, epoch, extra)


# ---------------------------------------------------------------------------- reading


def _checked(path, f, *args):
    """f(*args), a StateError from it as a CheckpointError naming the path."""
    try:
        return f(*args)
    except StateError as e:
        raise CheckpointError(f"{path}: corrupt checkpoint header: {e}") from None


def _expected_bytes(header):
    """The data size each fixed-shape entry must have by the header (None where unknown)."""
    spec = header.get("network")
    try:
        sizes, bn = spec["sizes"], spec.get("batch_norm", [False] * (len(spec["sizes"]) - 2))
        item = np.dtype(spec["dtype"]).itemsize
        n_params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
        n_params += sum(2 * s for s, on in zip(sizes[1:-1], bn) if on)
        n_running = 2 * sum(s for s, on in zip(sizes[1:-1], bn) if on)
        if not (isinstance(n_params, int) and isinstance(n_running, int)):
            return {}
    except (TypeError, KeyError, ValueError, AttributeError):
        return {}  # the spec is checked (and refused) when the network is built
    return {"params": n_params * item, "bn_running": n_running * item,
            "optimizer_s1": n_params * item, "optimizer_s2": n_params * item,
            "best_params": n_params * item, "best_running": n_running * item}


def _read(path):
    """(header, arrays) of a checkpoint file; CheckpointError for anything that is not one.

    Every entry is checked against the file before it is read (see :mod:`vgfast._archive`):
    names, sizes, and for the entries whose shape the header fixes, the size it implies."""
    try:
        reader = _archive.Reader(path)
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except _archive.ArchiveError as e:
        raise CheckpointError(f"{path}: not a vgfast checkpoint ({e})") from None
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{path}: not a vgfast checkpoint (not a readable .npz archive: "
                              f"{e})") from None
    with reader:
        try:
            if "header" not in reader.names:
                raise CheckpointError(f"{path}: not a vgfast checkpoint (an .npz archive "
                                      f"without a 'header' entry)")
            raw = reader.array("header", max_bytes=_state.MAX_HEADER_BYTES)
            if raw.dtype != np.uint8 or raw.ndim != 1:
                raise CheckpointError(f"{path}: not a vgfast checkpoint (its header is not "
                                      f"JSON bytes)")
            try:
                header = json.loads(raw.tobytes().decode("utf-8"))
            except ValueError as e:
                raise CheckpointError(f"{path}: corrupt checkpoint header (not JSON: "
                                      f"{e})") from None
            fmt = header.get("format") if isinstance(header, dict) else None
            if fmt != FORMAT:
                raise CheckpointError(f"{path}: not a vgfast checkpoint (header format {fmt!r}, "
                                      f"expected {FORMAT!r})")
            version = header.get("format_version")
            if isinstance(version, bool) or not isinstance(version, int) or version < 1:
                raise CheckpointError(f"{path}: corrupt checkpoint header (format_version "
                                      f"{version!r})")
            if version > FORMAT_VERSION:
                import vgfast
                raise CheckpointError(
                    f"{path}: checkpoint format version {version} (written by vgfast "
                    f"{header.get('library_version')}) is newer than this vgfast "
                    f"({vgfast.__version__}) reads (<= {FORMAT_VERSION}); upgrade vgfast")
            unknown = sorted(k for k in reader.names if not ENTRIES.match(k))
            if unknown:
                raise CheckpointError(f"{path}: corrupt checkpoint: unexpected entry "
                                      f"{unknown[0]!r}")
            expect = _expected_bytes(header)
            arrays = {k: reader.array(k, max_bytes=expect.get(k))
                      for k in sorted(reader.names) if k != "header"}
        except CheckpointError:
            raise
        except _archive.ArchiveError as e:
            raise CheckpointError(f"{path}: corrupt checkpoint ({e})") from None
        except _READ_ERRORS as e:
            raise CheckpointError(f"{path}: corrupt or truncated checkpoint "
                                  f"({type(e).__name__}: {e})") from None
    return header, arrays


_READ_ERRORS = (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile, zlib.error,
                struct.error, TypeError, OverflowError, NotImplementedError, RuntimeError,
                MemoryError)


def _array(arrays, key, path, shape, dtype):
    if key not in arrays:
        raise CheckpointError(f"{path}: corrupt checkpoint: no {key!r} array")
    a = arrays[key]
    if a.shape != shape or a.dtype != dtype:
        raise CheckpointError(f"{path}: corrupt checkpoint: {key!r} has shape {a.shape} and "
                              f"dtype {a.dtype}; expected {shape} of {np.dtype(dtype).name}")
    return np.ascontiguousarray(a)


def _need(d, key, types, path, where):
    return _checked(path, _state.need, d, key, types, where)


def _build(path, header, arrays, cls=Checkpoint):
    try:
        return _build_unchecked(path, header, arrays, cls)
    except CheckpointError:
        raise
    except (ValueError, TypeError, KeyError, OverflowError, AttributeError) as e:
        raise CheckpointError(f"{path}: corrupt checkpoint ({type(e).__name__}: {e})") from None


def _build_unchecked(path, header, arrays, cls):
    _need(header, "library_version", str, path, "header")
    spec = _need(header, "network", dict, path, "header")
    for key in ("params", "bn_running"):
        if key not in arrays:
            raise CheckpointError(f"{path}: corrupt checkpoint: no {key!r} array")
    try:
        net = Network._from_state(spec, arrays["params"], arrays["bn_running"], "network")
    except (ValueError, TypeError) as e:
        raise CheckpointError(f"{path}: corrupt checkpoint: {e}") from None
    opt = None
    ospec = header.get("optimizer")
    if ospec is not None:
        try:
            opt = _state.build_optimizer(ospec, arrays, net.n_params, np.dtype(net.dtype))
        except (ValueError, TypeError) as e:
            raise CheckpointError(f"{path}: corrupt checkpoint header: optimizer: {e}") from None
    if header.get("rng_state") is not None:
        _checked(path, _state.generator_from_state, header["rng_state"])  # validate now
    epoch = header.get("epoch")
    if epoch is not None:
        _checked(path, _state.count, epoch, "epoch")
    if cls is TrainingState:
        _check_training(path, header, arrays, net)
    return cls(path, header, net, opt, arrays)


def _check_training(path, header, arrays, net):
    tr = _need(header, "training", dict, path, "header")
    for k in ("drop_seed", "counter"):
        v = _need(tr, k, int, path, "training")
        if not 0 <= v < 2 ** 64:
            raise CheckpointError(f"{path}: corrupt checkpoint header: training.{k} = {v}")
    if header.get("epoch") is None:
        raise CheckpointError(f"{path}: corrupt training checkpoint: no epoch")
    if header.get("optimizer") is None:
        raise CheckpointError(f"{path}: corrupt training checkpoint: no optimizer")
    if header.get("rng_state") is None:
        raise CheckpointError(f"{path}: corrupt training checkpoint: no RNG state")
    hm = _need(tr, "history", dict, path, "training")
    _need(hm, "steps_per_epoch", int, path, "training.history")
    gs = hm.get("gns_state", [0.0, 0.0])
    if not (isinstance(gs, list) and len(gs) == 2 and all(
            isinstance(x, (int, float)) and not isinstance(x, bool) and np.isfinite(x)
            for x in gs)):
        raise CheckpointError(f"{path}: corrupt training checkpoint: training.history.gns_state "
                              f"must be two finite numbers; got {gs!r}")
    for f in HISTORY_ARRAYS:
        a = arrays.get("history_" + f)
        if a is None:  # a field History gained after the file was written
            continue
        ndim = 2 if f in PER_LAYER else 3 if f == "grad_hist" else 1
        if a.dtype.kind not in "fi" or a.ndim != ndim or \
                (a.ndim >= 2 and a.shape[1] != net.L) or \
                (a.ndim == 3 and a.shape[2] != HIST_BINS):
            raise CheckpointError(f"{path}: corrupt training checkpoint: history {f!r}")
    es = tr.get("early_stopping")
    if es is not None:
        _checked(path, _state.count, _need(es, "bad_epochs", int, path,
                                           "training.early_stopping"), "bad_epochs")
        if es.get("best_epoch") is not None:
            _checked(path, _state.count, es["best_epoch"], "training.early_stopping.best_epoch")
            _need(es, "best_value", (int, float), path, "training.early_stopping")
            keys = ("best_params", "best_running") if "best_running" in arrays else \
                ("best_params",)
            for key, shape in zip(keys, (net.params.shape, net._engine.running.shape)):
                if not np.isfinite(_array(arrays, key, path, shape, net.params.dtype)).all():
                    raise CheckpointError(f"{path}: corrupt training checkpoint: {key} "
                                          f"contains NaN or Inf")


def _history_from(meta, arrays, L):
    h = History()
    for f in HISTORY_ARRAYS:
        a = arrays.get("history_" + f)
        setattr(h, f, [] if a is None else a.tolist())
    h.steps_per_epoch = meta["steps_per_epoch"]
    h.best_epoch = meta.get("best_epoch")
    h.stopped_early = bool(meta.get("stopped_early", False))
    h.gns_state = [float(x) for x in meta.get("gns_state", [0.0, 0.0])]
    return h
