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
leaves either the old checkpoint or the new one, never a torn file. The path is used as given
(no ``.npz`` is appended).

:func:`load` refuses anything that is not a complete, well-formed checkpoint of a supported
format version with a :class:`CheckpointError` (a ``ValueError``) naming the path.

>>> vgfast.checkpoint.save(net, "run.ckpt", optimizer=opt, epoch=5)
>>> ck = vgfast.checkpoint.load("run.ckpt")
>>> ck.net, ck.optimizer, ck.epoch
"""
import inspect
import json
import math
import numbers
import os
import struct
import tempfile
import zipfile
import zlib

import numpy as np

from . import history as _history
from .history import EPOCH_FIELDS, RECORD_FIELDS, History
from .network import COSTS, HIDDEN, OUTPUT, Network
from .optim import (SGD, AdaGrad, Adam, AdamW, Constant, Cosine, Exponential, InverseTime,
                    LinearDecay, Optimizer, RMSProp, Schedule, StepDecay)

FORMAT = "vgfast-checkpoint"
#: the newest format version this module writes and reads
FORMAT_VERSION = 1

OPTIMIZERS = {c.__name__: c for c in (SGD, AdaGrad, RMSProp, Adam, AdamW)}
SCHEDULES = {c.__name__: c for c in (Constant, LinearDecay, StepDecay, Exponential,
                                     InverseTime, Cosine)}
BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")
HISTORY_ARRAYS = EPOCH_FIELDS + RECORD_FIELDS + ("record_steps",)
#: History fields with one column per layer
PER_LAYER = getattr(_history, "PER_LAYER", ("grad_norms", "weight_grad_norms"))

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
        return _generator_from_state(self.rng_state, self.path)

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
    return _write(path, _snapshot(net, optimizer, rng_state, epoch, extra))


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
        want, got = _net_spec(self.net), _net_spec(net)
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
                 "stopped_early": bool(history.stopped_early)}
    for f in HISTORY_ARRAYS:
        v = getattr(history, f)
        if f in PER_LAYER:
            a = np.asarray(v, np.float64).reshape(-1, net.L) if len(v) else np.zeros((0, net.L))
        else:
            a = np.asarray(v, np.int64 if f == "record_steps" else np.float64).reshape(-1)
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
    return _write(path, (header, arrays))


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


def optimizer_spec(optimizer):
    """The optimiser's class and hyper-parameters as JSON; ValueError if it cannot be saved."""
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer must be a vgfast optimizer (SGD, Adam, ...); got "
                        f"{type(optimizer).__name__}")
    cls = type(optimizer).__name__
    if OPTIMIZERS.get(cls) is not type(optimizer):
        raise ValueError(f"optimizer: {cls} cannot be checkpointed; only {sorted(OPTIMIZERS)} "
                         f"can")
    hyper = {}
    for k, v in vars(optimizer).items():
        if k in ("state", "t", "epoch"):  # state, saved with the buffers
            continue
        hyper[k] = _encode_hyper(v, f"optimizer.{k}")
    return {"class": cls, "hyper": hyper}


# ---------------------------------------------------------------------------- writing


def check_path(path, name, must_exist=False):
    if isinstance(path, bytes) or not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be a file path (str or os.PathLike); got "
                        f"{type(path).__name__}")
    path = os.fspath(path)
    if isinstance(path, bytes) or path == "":
        raise ValueError(f"{name} must be a non-empty str path; got {path!r}")
    if not must_exist:
        d = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(d):
            raise ValueError(f"{name}: the directory {d!r} of {path!r} does not exist")
        if os.path.isdir(path):
            raise ValueError(f"{name}: {path!r} is a directory; give a file path")
    return path


def _net_spec(net):
    L = len(net.sizes) - 1
    return {"sizes": [int(s) for s in net.sizes], "activations": list(net.activations),
            "output": net.output, "cost": net.cost_name, "dtype": np.dtype(net.dtype).name,
            "leaky_slope": float(net.leaky_slope), "elu_alpha": float(net.elu_alpha),
            "init": net.init_name,
            "batch_norm": [bool(b) for b in getattr(net, "batch_norm", [False] * (L - 1))],
            "bn_eps": float(getattr(net, "bn_eps", 1e-5)),
            "bn_momentum": float(getattr(net, "bn_momentum", 0.1)),
            "n_params": int(net.n_params)}


def _encode_hyper(v, name):
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, numbers.Integral):
        return int(v)
    if isinstance(v, numbers.Real):
        if not math.isfinite(v):
            raise ValueError(f"{name} is not finite ({v!r}); it cannot be checkpointed")
        return float(v)
    if isinstance(v, Schedule):
        cls = type(v).__name__
        if SCHEDULES.get(cls) is not type(v):
            raise ValueError(f"{name}: a {cls} schedule cannot be checkpointed; only the "
                             f"schedules of vgfast.optim ({sorted(SCHEDULES)}) can. Use one of "
                             f"them or save the network alone (optimizer=None)")
        return {"schedule": cls,
                "args": {k: _encode_hyper(a, f"{name}.{k}") for k, a in vars(v).items()}}
    raise ValueError(f"{name} = {v!r} ({type(v).__name__}) cannot be checkpointed: "
                     f"hyper-parameters must be numbers, strings or vgfast.optim schedules")


def _encode_state(obj, name):
    """A bit_generator.state dict as JSON (numpy arrays as {"__ndarray__": list, "dtype"})."""
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind not in "iu":
            raise ValueError(f"{name}: unexpected array of dtype {obj.dtype} in the RNG state")
        return {"__ndarray__": obj.tolist(), "dtype": obj.dtype.name}
    if isinstance(obj, dict):
        return {str(k): _encode_state(v, name) for k, v in obj.items()}
    if isinstance(obj, (bool, str)) or obj is None:
        return obj
    if isinstance(obj, numbers.Integral):
        return int(obj)
    raise ValueError(f"{name}: cannot store {type(obj).__name__} {obj!r} from the RNG state")


def _decode_state(obj):
    if isinstance(obj, dict):
        if set(obj) == {"__ndarray__", "dtype"}:
            if obj["dtype"] not in ("uint32", "uint64", "int32", "int64"):
                raise ValueError(f"bad array dtype {obj['dtype']!r}")
            return np.array(obj["__ndarray__"], dtype=obj["dtype"])
        return {k: _decode_state(v) for k, v in obj.items()}
    return obj


def _rng_state_of(rng_state):
    if rng_state is None:
        return None
    if isinstance(rng_state, np.random.Generator):
        rng_state = rng_state.bit_generator.state
    elif isinstance(rng_state, np.random.BitGenerator):
        rng_state = rng_state.state
    if not isinstance(rng_state, dict) or rng_state.get("bit_generator") not in BIT_GENERATORS:
        raise ValueError(f"rng_state must be a numpy Generator, a BitGenerator "
                         f"({', '.join(BIT_GENERATORS)}) or its .state dict; got "
                         f"{type(rng_state).__name__}")
    return _encode_state(rng_state, "rng_state")


def _generator_from_state(state, path):
    try:
        name = state["bit_generator"]
        if name not in BIT_GENERATORS:
            raise ValueError(f"unknown bit generator {name!r}")
        bg = getattr(np.random, name)()
        bg.state = _decode_state(state)
    except (ValueError, TypeError, KeyError, OverflowError) as e:
        raise CheckpointError(f"{path}: corrupt RNG state in the checkpoint: {e}") from None
    return np.random.Generator(bg)


def _snapshot(net, optimizer, rng_state, epoch, extra):
    """(header dict, arrays dict) for a checkpoint; validates everything first."""
    if not isinstance(net, Network):
        raise TypeError(f"net must be a vgfast.Network; got {type(net).__name__}")
    opt = None if optimizer is None else optimizer_spec(optimizer)
    rng = _rng_state_of(rng_state)
    if epoch is not None:
        if isinstance(epoch, bool) or not isinstance(epoch, numbers.Integral) or epoch < 0:
            raise ValueError(f"epoch must be a non-negative integer or None; got {epoch!r}")
        epoch = int(epoch)
    if extra is not None:
        try:
            json.dumps(extra, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise TypeError(f"extra must be JSON-serialisable (dicts, lists, str, finite "
                            f"numbers, bools, None): {e}") from None
    with net._using() as eng:
        params = net.params.copy()
        running = np.array(getattr(eng, "running", np.zeros(0, net.dtype)))
    if not np.isfinite(params).all() or not np.isfinite(running).all():
        raise ValueError("net.params contains NaN or Inf (a diverged network?); refusing to "
                         "write a checkpoint that could not be loaded")
    arrays = {"params": params, "bn_running": running}
    if optimizer is not None:
        opt["t"] = int(optimizer.t)
        opt["epoch"] = int(getattr(optimizer, "epoch", 0))
        opt["state"] = []
        for k in ("s1", "s2"):
            buf = optimizer.state.get(k)
            if buf is None:
                continue
            if buf.shape != params.shape or buf.dtype != params.dtype:
                raise ValueError(f"optimizer state {k} has shape {buf.shape} and dtype "
                                 f"{buf.dtype}, but the network has {params.shape} of dtype "
                                 f"{params.dtype}: it is not this network's optimiser")
            arrays["optimizer_" + k] = buf.copy()
            opt["state"].append(k)
    import vgfast
    header = {"format": FORMAT, "format_version": FORMAT_VERSION,
              "library_version": vgfast.__version__, "network": _net_spec(net),
              "optimizer": opt, "rng_state": rng, "epoch": epoch, "extra": extra,
              "training": None}
    return header, arrays


def _umask():
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _umask()


def _write(path, snapshot):
    header, arrays = snapshot
    path = check_path(path, "path")
    blob = json.dumps(header, allow_nan=True).encode("utf-8")
    entries = {"header": np.frombuffer(blob, dtype=np.uint8)}
    entries.update(arrays)
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=d, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **entries)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.chmod(tmp, 0o666 & ~_UMASK)
        except OSError:
            pass
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(d)
    return path


def _fsync_dir(d):
    if os.name != "posix":
        return
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------- reading

_READ_ERRORS = (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile, zlib.error,
                struct.error, TypeError, OverflowError, NotImplementedError, RuntimeError,
                MemoryError)


def _read(path):
    """(header, arrays) of a checkpoint file; CheckpointError for anything that is not one."""
    try:
        obj = np.load(path, allow_pickle=False)
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except _READ_ERRORS as e:
        raise CheckpointError(f"{path}: not a vgfast checkpoint (not a readable .npz archive: "
                              f"{e})") from None
    if not isinstance(obj, np.lib.npyio.NpzFile):
        raise CheckpointError(f"{path}: not a vgfast checkpoint (a single .npy array, not an "
                              f".npz archive)")
    with obj as f:
        try:
            names = set(f.files)
            if "header" not in names:
                raise CheckpointError(f"{path}: not a vgfast checkpoint (an .npz archive "
                                      f"without a 'header' entry)")
            raw = f["header"]
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
            arrays = {k: f[k] for k in names if k != "header"}
        except CheckpointError:
            raise
        except _READ_ERRORS as e:
            raise CheckpointError(f"{path}: corrupt or truncated checkpoint "
                                  f"({type(e).__name__}: {e})") from None
    return header, arrays


def _need(d, key, types, path, where):
    if not isinstance(d, dict) or key not in d:
        raise CheckpointError(f"{path}: corrupt checkpoint header: {where} has no {key!r}")
    v = d[key]
    if not isinstance(v, types) or (isinstance(v, bool) and bool not in _as_tuple(types)):
        raise CheckpointError(f"{path}: corrupt checkpoint header: {where}.{key} = {v!r}")
    return v


def _as_tuple(t):
    return t if isinstance(t, tuple) else (t,)


def _array(arrays, key, path, shape, dtype):
    if key not in arrays:
        raise CheckpointError(f"{path}: corrupt checkpoint: no {key!r} array")
    a = arrays[key]
    if a.shape != shape or a.dtype != dtype:
        raise CheckpointError(f"{path}: corrupt checkpoint: {key!r} has shape {a.shape} and "
                              f"dtype {a.dtype}; expected {shape} of {np.dtype(dtype).name}")
    return np.ascontiguousarray(a)


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
    sizes = _need(spec, "sizes", list, path, "network")
    if len(sizes) < 2 or not all(isinstance(s, int) and not isinstance(s, bool) and
                                 1 <= s <= 2 ** 24 for s in sizes):
        raise CheckpointError(f"{path}: corrupt checkpoint header: network.sizes = {sizes!r}")
    acts = _need(spec, "activations", list, path, "network")
    if len(acts) != len(sizes) - 2 or not all(a in HIDDEN for a in acts):
        raise CheckpointError(f"{path}: corrupt checkpoint header: network.activations = "
                              f"{acts!r}")
    output = _need(spec, "output", str, path, "network")
    cost = _need(spec, "cost", str, path, "network")
    if output not in OUTPUT or cost not in COSTS:
        raise CheckpointError(f"{path}: corrupt checkpoint header: output {output!r}, cost "
                              f"{cost!r}")
    dtype = _need(spec, "dtype", str, path, "network")
    if dtype not in ("float64", "float32"):
        raise CheckpointError(f"{path}: corrupt checkpoint header: network.dtype = {dtype!r}")
    bn = spec.get("batch_norm", [False] * len(acts))
    if not isinstance(bn, list) or len(bn) != len(acts) or \
            not all(isinstance(b, bool) for b in bn):
        raise CheckpointError(f"{path}: corrupt checkpoint header: network.batch_norm = {bn!r}")
    n_params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    n_params += sum(2 * s for s, on in zip(sizes[1:-1], bn) if on)
    # the parameters are checked before any allocation sized by the header
    params = _array(arrays, "params", path, (n_params,), np.dtype(dtype))
    n_running = 2 * sum(s for s, on in zip(sizes[1:-1], bn) if on)
    running = _array(arrays, "bn_running", path, (n_running,), np.dtype(dtype))
    if not np.isfinite(params).all() or not np.isfinite(running).all():
        raise CheckpointError(f"{path}: corrupt checkpoint: params contains NaN or Inf")
    slope = _need(spec, "leaky_slope", (int, float), path, "network")
    alpha = _need(spec, "elu_alpha", (int, float), path, "network")
    init = spec.get("init", "nielsen")
    kw = {}
    if any(bn):
        kw = dict(batch_norm=bn, bn_eps=_need(spec, "bn_eps", (int, float), path, "network"),
                  bn_momentum=_need(spec, "bn_momentum", (int, float), path, "network"))
    net = Network(sizes, activation=acts, output=output, cost=cost, dtype=dtype, seed=0,
                  leaky_slope=slope, elu_alpha=alpha, **kw)
    net.init_name = init if isinstance(init, str) else "nielsen"
    if net.params.shape != params.shape or net._engine.running.shape != running.shape:
        raise CheckpointError(f"{path}: corrupt checkpoint: the parameters do not fit the "
                              f"network it describes")
    net.params[...] = params
    net._engine.running[...] = running

    opt = None
    ospec = header.get("optimizer")
    if ospec is not None:
        opt = _build_optimizer(path, ospec, arrays, n_params, np.dtype(dtype))
    if header.get("rng_state") is not None:
        _generator_from_state(header["rng_state"], path)  # validate now
    epoch = header.get("epoch")
    if epoch is not None and (isinstance(epoch, bool) or not isinstance(epoch, int) or
                              epoch < 0):
        raise CheckpointError(f"{path}: corrupt checkpoint header: epoch = {epoch!r}")
    if cls is TrainingState:
        _check_training(path, header, arrays, net)
    return cls(path, header, net, opt, arrays)


def _decode_hyper(v, path, name):
    if isinstance(v, dict):
        cls = SCHEDULES.get(_need(v, "schedule", str, path, name))
        if cls is None:
            raise CheckpointError(f"{path}: unknown schedule {v['schedule']!r} in {name}")
        args = _need(v, "args", dict, path, name)
        params = inspect.signature(cls).parameters
        return cls(**{k: a for k, a in args.items() if k in params})
    return v


def _build_optimizer(path, ospec, arrays, n_params, dtype):
    name = _need(ospec, "class", str, path, "optimizer")
    cls = OPTIMIZERS.get(name)
    if cls is None:
        raise CheckpointError(f"{path}: unknown optimizer class {name!r} (known: "
                              f"{sorted(OPTIMIZERS)})")
    hyper = _need(ospec, "hyper", dict, path, "optimizer")
    values = {k: _decode_hyper(v, path, f"optimizer.{k}") for k, v in hyper.items()}
    params = inspect.signature(cls).parameters
    opt = cls(**{k: v for k, v in values.items() if k in params})
    for k, v in values.items():  # attributes outside the constructor (e.g. weight_decay)
        if k not in params and k in vars(opt):
            setattr(opt, k, v)
    t = _need(ospec, "t", int, path, "optimizer")
    epoch = ospec.get("epoch", 0)
    if t < 0 or isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
        raise CheckpointError(f"{path}: corrupt checkpoint header: optimizer.t = {t}, "
                              f"optimizer.epoch = {epoch!r}")
    state = {}
    for k in _need(ospec, "state", list, path, "optimizer"):
        if k not in ("s1", "s2"):
            raise CheckpointError(f"{path}: corrupt checkpoint header: optimizer state {k!r}")
        state[k] = _array(arrays, "optimizer_" + k, path, (n_params,), dtype).copy()
    opt.load_state_dict({"t": t, "epoch": epoch, **state})
    return opt


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
    for f in HISTORY_ARRAYS:
        a = arrays.get("history_" + f)
        if a is None:  # a field History gained after the file was written
            continue
        if a.dtype.kind not in "fi" or a.ndim != (2 if f in PER_LAYER else 1) or \
                (a.ndim == 2 and a.shape[1] != net.L):
            raise CheckpointError(f"{path}: corrupt training checkpoint: history {f!r}")
    es = tr.get("early_stopping")
    if es is not None:
        _need(es, "bad_epochs", int, path, "training.early_stopping")
        if es.get("best_epoch") is not None:
            _array(arrays, "best_params", path, net.params.shape, net.params.dtype)
            if "best_running" in arrays:
                _array(arrays, "best_running", path, net._engine.running.shape,
                       net.params.dtype)


def _history_from(meta, arrays, L):
    h = History()
    for f in HISTORY_ARRAYS:
        a = arrays.get("history_" + f)
        setattr(h, f, [] if a is None else a.tolist())
    h.steps_per_epoch = meta["steps_per_epoch"]
    h.best_epoch = meta.get("best_epoch")
    h.stopped_early = bool(meta.get("stopped_early", False))
    return h
