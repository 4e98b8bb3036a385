"""The default run of a sweep: train one network from a plain config.

The config is plain data (it travels to the worker as JSON-able values); the network, the
optimiser and the data are built here, inside the worker, and only plain numbers travel back.

Config keys
-----------
data : str (required)
    A data set of :mod:`vgfast.datasets` by name (see :data:`DATASETS`): ``mnist``,
    ``fashion_mnist``, ``digits`` (scikit-learn's 8x8 digits), ``parity``, ``two_spirals``.
data_args : dict
    Keyword arguments of the loader, e.g. ``{"n_train": 1000}`` for ``mnist``,
    ``{"n": 2000, "n_bits": 8}`` for ``parity``.
validation_split : float in [0, 1), default 0.2
    For data sets without a validation part of their own (``digits`` and the synthetic ones):
    the fraction of rows held out, chosen by a fixed permutation (seed 0), the same for every
    run. ``0``: no validation.
sizes : list of int (required); activation, output, cost, init, dtype, leaky_slope, elu_alpha,
    bias_init, gain, batch_norm, bn_eps, bn_momentum
    :class:`vgfast.Network`'s parameters.
epochs, batch_size, lmbda, l1, clip, max_norm, dropout, record, record_every, shuffle, monitor
    :func:`vgfast.train`'s parameters (lists stand for tuples: ``clip = ["norm", 5.0]``).
    ``monitor`` defaults to False: the final costs are computed once, after training.
early_stopping : int
    Patience in epochs of :class:`vgfast.EarlyStopping` on the validation accuracy.
optimizer : str, default ``"sgd"``
    A name of :data:`vgfast.optim.OPTIMIZERS`; its hyper-parameters are config keys too:
    ``lr``, ``momentum``, ``nesterov``, ``rho``, ``beta1``, ``beta2``, ``eps``, ``lr_decay``,
    ``weight_decay`` (only those the optimiser takes).
seed : int
    Seeds the initialisation and the shuffling (and dropout).

Results
-------
train_cost, train_accuracy : float
    After training, on the whole training set: ``net.cost(X, y, lmbda, l1)`` (with the penalty,
    network2's total_cost) and ``net.accuracy(X, y)``.
validation_cost, validation_accuracy : float
    Likewise on the validation rows (the penalty with n = the training rows, as History's), when
    there is a validation part.
epochs_trained : int, seconds : float (wall time of train())
diverged : None or the message of the :class:`vgfast.DivergenceError` that stopped training;
    then the numbers above are those of the last finite parameters.
history : the :class:`vgfast.History` as a dict (``History.from_dict`` rebuilds it). JSON has no
    NaN or Infinity: a non-finite number (only in a diverged run's records) is stored as None.
"""
import functools
import inspect
import json
import math
import time

import numpy as np

NETWORK_KEYS = ("sizes", "activation", "output", "cost", "init", "dtype", "leaky_slope",
                "elu_alpha", "bias_init", "gain", "batch_norm", "bn_eps", "bn_momentum")
TRAIN_KEYS = ("epochs", "batch_size", "lmbda", "l1", "clip", "max_norm", "dropout", "record",
              "record_every", "shuffle", "monitor", "early_stopping")
OPTIMIZER_KEYS = ("lr", "momentum", "nesterov", "rho", "beta1", "beta2", "eps", "lr_decay",
                  "weight_decay")
DATA_KEYS = ("data", "data_args", "validation_split")
KEYS = frozenset(NETWORK_KEYS + TRAIN_KEYS + OPTIMIZER_KEYS + DATA_KEYS + ("optimizer", "seed"))

#: data set name -> the loader's name in :mod:`vgfast.datasets`. A loader this installation does
#: not have gives a clear error when the name is used.
DATASETS = {"mnist": "load_mnist", "fashion_mnist": "load_fashion_mnist",
            "digits": "load_digits_8x8", "parity": "parity", "two_spirals": "two_spirals"}
#: the data sets that come split into training and validation parts
OWN_VALIDATION = ("mnist", "fashion_mnist")


# ---------------------------------------------------------------------------- data


def _loader(name):
    from .. import datasets
    if not isinstance(name, str) or name not in DATASETS:
        raise ValueError(f"data must be one of {sorted(DATASETS)}; got {name!r}")
    loader = getattr(datasets, DATASETS[name], None)
    if loader is None:
        raise ValueError(f"data={name!r} needs vgfast.datasets.{DATASETS[name]}, which this "
                         f"installation of vgfast does not have")
    return loader


def _loader_args(config):
    """(loader, kwargs) after checking data_args against the loader's signature."""
    loader = _loader(config.get("data"))
    if not isinstance(config.get("data_args", {}), dict):
        raise TypeError(f"data_args must be a dict of the loader's arguments; got "
                        f"{config['data_args']!r}")
    args = dict(config.get("data_args", {}))
    params = inspect.signature(loader).parameters
    if "dtype" in params and "dtype" not in args:
        args["dtype"] = config.get("dtype", "float64")
    try:
        inspect.signature(loader).bind(**args)
    except TypeError as e:
        raise ValueError(f"data_args do not fit vgfast.datasets.{loader.__name__}"
                         f"{inspect.signature(loader)}: {e}") from None
    return loader, args


@functools.lru_cache(maxsize=4)
def _load(name, args_json, validation_split):
    """(X, y, X_val, y_val) read-only, loaded once per worker process and shared by its runs."""
    loader = _loader(name)
    out = loader(**json.loads(args_json))
    if hasattr(out, "X_train"):  # MnistSplit and its kind carry their own validation part
        if validation_split is not None:
            raise ValueError(f"validation_split: data={name!r} has its own validation part")
        parts = (out.X_train, out.y_train, out.X_validation, out.y_validation)
    else:
        X, y = out
        frac = 0.2 if validation_split is None else validation_split
        n_val = int(round(frac * len(X)))
        order = np.random.default_rng(0).permutation(len(X))
        fit, val = order[:len(X) - n_val], order[len(X) - n_val:]
        parts = (X[fit], y[fit], X[val], y[val]) if n_val else (X, y, None, None)
    parts = tuple(None if a is None else np.ascontiguousarray(a) for a in parts)
    for a in parts:
        if a is not None:
            a.setflags(write=False)
    return parts


def _split_of(config):
    split = config.get("validation_split")
    if split is None:
        return None
    if not (isinstance(split, (int, float)) and not isinstance(split, bool) and 0 <= split < 1):
        raise ValueError(f"validation_split must be a fraction in [0, 1); got {split!r}")
    if config.get("data") in OWN_VALIDATION:
        raise ValueError(f"validation_split: data={config['data']!r} has its own validation "
                         f"part (use data_args to size it)")
    return split


def load_data(config):
    """(X, y, X_val, y_val) of a config's ``data``; X_val is None without validation rows."""
    loader, args = _loader_args(config)
    return _load(config["data"], json.dumps(args, sort_keys=True), _split_of(config))


# ---------------------------------------------------------------------------- objects


def _tuples(v):
    return tuple(v) if isinstance(v, list) else v


def build_network(config, seed=None):
    from ..network import Network
    kw = {k: config[k] for k in NETWORK_KEYS if k in config}
    return Network(**kw, seed=seed)


def build_optimizer(config):
    from ..optim import OPTIMIZERS
    name = config.get("optimizer", "sgd")
    if not isinstance(name, str) or name not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)}; got {name!r}")
    cls = OPTIMIZERS[name]
    takes = inspect.signature(cls).parameters
    given = {k: config[k] for k in OPTIMIZER_KEYS if k in config}
    wrong = sorted(set(given) - set(takes))
    if wrong:
        raise ValueError(f"config key(s) {wrong} are not parameters of optimizer {name!r} (it "
                         f"takes {sorted(takes)})")
    return cls(**given)


def check_config(config):
    """Refuse, before anything runs, a config the default run cannot use: unknown keys, a
    missing ``sizes`` or ``data``, an unknown data set, optimiser or loader argument, and
    anything :class:`vgfast.Network` or the optimiser refuses."""
    unknown = sorted(set(config) - KEYS)
    if unknown:
        raise ValueError(f"unknown config key(s) {unknown} for the default run (vgfast's "
                         f"training); known keys: {sorted(KEYS)}")
    for need in ("sizes", "data"):
        if need not in config:
            raise ValueError(f"config needs {need!r} (the default run trains "
                             f"Network(sizes) on a data set by name)")
    _loader_args(config)
    _split_of(config)
    _check_network(json.dumps({k: config[k] for k in NETWORK_KEYS if k in config},
                              sort_keys=True))
    build_optimizer(config)


@functools.lru_cache(maxsize=256)
def _check_network(network_json):
    build_network(json.loads(network_json), seed=0)


def _finite_or_none(v):
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, list):
        return [_finite_or_none(x) for x in v]
    return v


# ---------------------------------------------------------------------------- the run


def train_run(config):
    """Train the network a plain config describes and return its final numbers.

    See this module's docstring for the keys and the results. Builds everything inside the
    calling process (a sweep worker); returns plain JSON-able data.
    """
    from ..train import DivergenceError, EarlyStopping, train
    check_config(config)
    X, y, X_val, y_val = load_data(config)
    seed = config.get("seed")
    net = build_network(config, seed=seed)
    optimizer = build_optimizer(config)
    kw = {k: _tuples(config[k]) for k in TRAIN_KEYS if k in config}
    kw["monitor"] = kw.get("monitor", False)
    if "early_stopping" in kw:
        kw["early_stopping"] = EarlyStopping(patience=kw["early_stopping"])
    validation = None if X_val is None else (X_val, y_val)
    t0 = time.perf_counter()
    try:
        hist = train(net, X, y, optimizer=optimizer, validation=validation, seed=seed, **kw)
        diverged = None
    except DivergenceError as e:
        hist, diverged = e.history, str(e)
    seconds = time.perf_counter() - t0
    lmbda, l1 = kw.get("lmbda", 0.0), kw.get("l1", 0.0)

    def measured(f, *args, **kwargs):
        # a diverged network's cost or outputs may overflow: vgfast raises rather than return
        # Inf or NaN, and the run records None for that number
        try:
            return float(f(*args, **kwargs))
        except FloatingPointError:
            return None

    out = {"train_cost": measured(net.cost, X, y, lmbda, l1),
           "train_accuracy": measured(net.accuracy, X, y)}
    if validation is not None:
        out["validation_cost"] = measured(net.cost, X_val, y_val, lmbda, l1, n=len(X))
        out["validation_accuracy"] = measured(net.accuracy, X_val, y_val)
    out = {k: None if v is None else _finite_or_none(v) for k, v in out.items()}
    history = {k: _finite_or_none(v) for k, v in hist.to_dict().items()}
    out.update(epochs_trained=hist.epochs, seconds=seconds, diverged=diverged, history=history)
    return out
