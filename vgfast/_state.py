"""The state format: a network, its optimiser and an RNG as a JSON header and named arrays.

One format serves checkpoints (:mod:`vgfast.checkpoint` writes it to a file with
:mod:`vgfast._archive`), pickling and copies (a Network's ``__getstate__`` is its network part).
The header holds ``format``, ``format_version``, ``library_version``, the network's spec (see
``Network._spec``), the optimiser (class name, hyper-parameters, step and epoch counts; a
schedule as its class name and constructor numbers), the RNG's ``bit_generator.state``, the
epoch and a JSON ``extra``. Arrays: ``params``, ``bn_running``, ``optimizer_s1``/``_s2``.

Reading rebuilds everything through the validating constructors: an optimiser from a header is
made by ``cls(**hyper)``, so a crafted header cannot give it values its constructor refuses
(a negative weight decay, a momentum of 7, a step count beyond int64, NaN).
"""
import inspect
import json
import math
import numbers

import numpy as np

from .optim import (SGD, AdaGrad, Adam, AdamW, Constant, Cosine, Exponential, InverseTime,
                    LinearDecay, Optimizer, RMSProp, Schedule, StepDecay)

FORMAT = "vgfast-checkpoint"
#: the newest format version this module writes and reads
FORMAT_VERSION = 1
#: the largest header (JSON bytes) read back
MAX_HEADER_BYTES = 1 << 24

OPTIMIZERS = {c.__name__: c for c in (SGD, AdaGrad, RMSProp, Adam, AdamW)}
SCHEDULES = {c.__name__: c for c in (Constant, LinearDecay, StepDecay, Exponential,
                                     InverseTime, Cosine)}
BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")
#: step and epoch counters are int64 in the engine
MAX_COUNT = 2 ** 63 - 1


class StateError(ValueError):
    """A value in a header is not what the format allows (the message names it)."""


# ---------------------------------------------------------------------------- writing


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
        if k in ("state", "t", "epoch") or k.startswith("_"):  # state, saved with the buffers
            continue
        hyper[k] = _encode_hyper(v, f"optimizer.{k}")
    return {"class": cls, "hyper": hyper}


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


def rng_state_of(rng_state):
    """A Generator, BitGenerator or ``.state`` dict as JSON (None stays None)."""
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


def snapshot(net_state, optimizer=None, rng_state=None, epoch=None, extra=None):
    """(header, arrays) of a checkpoint of a network given as ``net._state()``, i.e. (spec,
    params, batch-norm running statistics); everything is validated before anything is built."""
    spec, params, running = net_state
    opt = None if optimizer is None else optimizer_spec(optimizer)
    rng = rng_state_of(rng_state)
    if epoch is not None:
        if isinstance(epoch, bool) or not isinstance(epoch, numbers.Integral) or \
                not 0 <= epoch <= MAX_COUNT:
            raise ValueError(f"epoch must be a non-negative integer or None; got {epoch!r}")
        epoch = int(epoch)
    if extra is not None:
        try:
            json.dumps(extra, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise TypeError(f"extra must be JSON-serialisable (dicts, lists, str, finite "
                            f"numbers, bools, None): {e}") from None
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
    from . import __version__
    header = {"format": FORMAT, "format_version": FORMAT_VERSION,
              "library_version": __version__, "network": spec,
              "optimizer": opt, "rng_state": rng, "epoch": epoch, "extra": extra,
              "training": None}
    return header, arrays


def entries(snap):
    """The archive entries of a (header, arrays) snapshot: the header as UTF-8 JSON bytes."""
    header, arrays = snap
    blob = json.dumps(header, allow_nan=True).encode("utf-8")
    return {"header": np.frombuffer(blob, dtype=np.uint8), **arrays}


# ---------------------------------------------------------------------------- reading


def need(d, key, types, where):
    """d[key] if it is of ``types`` (bool only when asked for); StateError otherwise."""
    if not isinstance(d, dict) or key not in d:
        raise StateError(f"{where} has no {key!r}")
    v = d[key]
    types = types if isinstance(types, tuple) else (types,)
    if not isinstance(v, types) or (isinstance(v, bool) and bool not in types):
        raise StateError(f"{where}.{key} = {v!r}")
    return v


def count(v, name):
    """A step or epoch counter: an int in [0, 2**63)."""
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= MAX_COUNT:
        raise StateError(f"{name} = {v!r} (expected an integer in [0, 2**63))")
    return v


def _decode_hyper(v, name):
    if isinstance(v, dict):
        cls = SCHEDULES.get(need(v, "schedule", str, name))
        if cls is None:
            raise StateError(f"unknown schedule {v['schedule']!r} in {name}")
        args = need(v, "args", dict, name)
        params = inspect.signature(cls).parameters
        unknown = sorted(set(args) - set(params))
        if unknown:
            raise StateError(f"{name}: {cls.__name__} has no parameter {unknown[0]!r}")
        return cls(**args)  # its constructor validates every value
    return v


def build_optimizer(ospec, arrays, n_params, dtype, where="optimizer"):
    """An optimiser from its header spec and state arrays, through its validating constructor.

    Every hyper-parameter must be a constructor parameter of the class, or an attribute the
    class sets itself left at its value (e.g. Adam's ``weight_decay`` 0); the counters must
    fit int64 and the state buffers have the network's shape and dtype, finite (and
    non-negative where they hold squares).
    """
    name = need(ospec, "class", str, where)
    cls = OPTIMIZERS.get(name)
    if cls is None:
        raise StateError(f"unknown optimizer class {name!r} (known: {sorted(OPTIMIZERS)})")
    hyper = need(ospec, "hyper", dict, where)
    params = inspect.signature(cls).parameters
    reference = vars(cls())  # the attributes the class sets, at their defaults
    kwargs = {}
    for k, v in hyper.items():
        if k in params:
            kwargs[k] = _decode_hyper(v, f"{where}.{k}")
        elif k in reference and not k.startswith("_") and k not in ("state", "t", "epoch"):
            if v != _encode_hyper(reference[k], k):
                raise StateError(f"{where}.{k} = {v!r}: {name} does not take {k!r} (it is "
                                 f"{reference[k]!r} for every {name})")
        else:
            raise StateError(f"{where}: {name} has no hyper-parameter {k!r}")
    opt = cls(**kwargs)  # validates lr, momentum, betas, eps, weight_decay, ...
    t = count(need(ospec, "t", int, where), f"{where}.t")
    epoch = count(ospec.get("epoch", 0), f"{where}.epoch")
    state = {}
    for k in need(ospec, "state", list, where):
        if k not in ("s1", "s2") or k in state:
            raise StateError(f"{where}: state buffer {k!r}")
        key = "optimizer_" + k
        a = arrays.get(key)
        if a is None:
            raise StateError(f"no {key!r} array")
        if a.shape != (n_params,) or a.dtype != dtype:
            raise StateError(f"{key!r} has shape {a.shape} and dtype {a.dtype}; expected "
                             f"({n_params},) of {np.dtype(dtype).name}")
        state[k] = a
    opt.load_state_dict({"t": t, "epoch": epoch, **state})  # checks finiteness and signs
    return opt


def _decode_state(obj):
    if isinstance(obj, dict):
        if set(obj) == {"__ndarray__", "dtype"}:
            if obj["dtype"] not in ("uint32", "uint64", "int32", "int64"):
                raise ValueError(f"bad array dtype {obj['dtype']!r}")
            return np.array(obj["__ndarray__"], dtype=obj["dtype"])
        return {k: _decode_state(v) for k, v in obj.items()}
    return obj


def generator_from_state(state):
    """A numpy Generator in a saved state; StateError if the state is not one."""
    name = state.get("bit_generator") if isinstance(state, dict) else None
    if name not in BIT_GENERATORS:
        raise StateError(f"corrupt RNG state: bit_generator {name!r} is not one of "
                         f"{list(BIT_GENERATORS)}")
    bg = getattr(np.random, name)()
    try:
        bg.state = _decode_state(state)
    except (ValueError, TypeError, KeyError, OverflowError, IndexError) as e:
        raise StateError(f"corrupt RNG state: numpy's {name} does not accept the saved state "
                         f"({type(e).__name__})") from None
    return np.random.Generator(bg)
