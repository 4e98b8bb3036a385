"""Validation of the estimators' parameters at fit time (scikit-learn's rules, vgfast's messages).

scikit-learn checks the parameters of its MLPs against ``_parameter_constraints`` when ``fit``
starts; these are the same constraints, written out so that nothing here depends on
scikit-learn's private validation module. Each failure names the parameter and what was expected.
"""
import numbers

import numpy as np

from .. import init as _init
from ..train import RECORDABLE

#: scikit-learn's hidden activation names -> vgfast's
ACTIVATIONS = {"identity": "linear", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}
SOLVERS = ("lbfgs", "sgd", "adam")
LEARNING_RATES = ("constant", "invscaling", "adaptive")
#: what the engine can record per step into ``history_`` ("cost" is always recorded)
RECORD_NAMES = tuple(r for r in RECORDABLE if r != "grad_norm_preclip")
INITS = ("sklearn",) + tuple(sorted(_init.WEIGHT_INITS))


class InvalidParameterError(ValueError, TypeError):
    """A parameter of the estimator has a wrong type or value (as scikit-learn's error of the
    same name, it is both a ValueError and a TypeError)."""


def _real(est, name, low=None, high=None, low_open=False, high_open=False):
    v = getattr(est, name)
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real) or not np.isfinite(v):
        raise InvalidParameterError(f"{name} must be a finite real number; got {v!r}")
    if low is not None and (v < low or (low_open and v == low)):
        raise InvalidParameterError(f"{name} must be {'>' if low_open else '>='} {low}; got {v!r}")
    if high is not None and (v > high or (high_open and v == high)):
        raise InvalidParameterError(f"{name} must be {'<' if high_open else '<='} {high}; "
                                    f"got {v!r}")


def _integer(est, name, low=1):
    v = getattr(est, name)
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral) or v < low:
        raise InvalidParameterError(f"{name} must be an integer >= {low}; got {v!r}")


def _boolean(est, name):
    v = getattr(est, name)
    if not isinstance(v, (bool, np.bool_)):
        raise InvalidParameterError(f"{name} must be True or False; got {v!r}")


def _choice(est, name, choices):
    v = getattr(est, name)
    if not isinstance(v, str) or v not in choices:
        raise InvalidParameterError(f"{name} must be one of {list(choices)}; got {v!r}")


def hidden_sizes(value):
    """hidden_layer_sizes as a list of positive ints (an int is one hidden layer)."""
    raw = [value] if not hasattr(value, "__iter__") or isinstance(value, str) else list(value)
    if not all(isinstance(s, numbers.Integral) and not isinstance(s, (bool, np.bool_))
               and s >= 1 for s in raw):
        raise InvalidParameterError(f"hidden_layer_sizes must be a positive integer or a sequence "
                                    f"of positive integers (units per hidden layer); got "
                                    f"{value!r}")
    return [int(s) for s in raw]


def check_params(est):
    """Raise InvalidParameterError naming the first parameter outside its valid set."""
    hidden_sizes(est.hidden_layer_sizes)
    _choice(est, "activation", ACTIVATIONS)
    _choice(est, "solver", SOLVERS)
    _real(est, "alpha", low=0)
    if not (isinstance(est.batch_size, str) and est.batch_size == "auto"):
        if isinstance(est.batch_size, str):
            raise InvalidParameterError(f"batch_size must be 'auto' or an integer >= 1; got "
                                        f"{est.batch_size!r}")
        _integer(est, "batch_size")
    _choice(est, "learning_rate", LEARNING_RATES)
    _real(est, "learning_rate_init", low=0, low_open=True)
    _real(est, "power_t", low=0)
    _integer(est, "max_iter")
    _boolean(est, "shuffle")
    rs = est.random_state
    if not (rs is None or isinstance(rs, np.random.RandomState) or
            (isinstance(rs, numbers.Integral) and not isinstance(rs, (bool, np.bool_))
             and 0 <= rs < 2 ** 32)):
        raise InvalidParameterError(f"random_state must be None, an integer in [0, 2**32 - 1] or "
                                    f"a numpy.random.RandomState; got {rs!r}")
    _real(est, "tol", low=0)
    v = est.verbose
    if not (isinstance(v, (bool, np.bool_)) or (isinstance(v, numbers.Integral) and v >= 0)):
        raise InvalidParameterError(f"verbose must be a bool or an integer >= 0; got {v!r}")
    _boolean(est, "warm_start")
    _real(est, "momentum", low=0, high=1)
    _boolean(est, "nesterovs_momentum")
    _boolean(est, "early_stopping")
    _real(est, "validation_fraction", low=0, high=1, high_open=True)
    _real(est, "beta_1", low=0, high=1, high_open=True)
    _real(est, "beta_2", low=0, high=1, high_open=True)
    _real(est, "epsilon", low=0, low_open=True)
    if not (isinstance(est.n_iter_no_change, float) and est.n_iter_no_change == np.inf):
        if (isinstance(est.n_iter_no_change, (bool, np.bool_)) or
                not isinstance(est.n_iter_no_change, numbers.Integral) or
                est.n_iter_no_change < 1):
            raise InvalidParameterError(f"n_iter_no_change must be an integer >= 1 or numpy.inf; "
                                        f"got {est.n_iter_no_change!r}")
    _integer(est, "max_fun")
    if est.dtype is not None and (not isinstance(est.dtype, str) or
                                  est.dtype not in ("float64", "float32")):
        try:
            ok = np.dtype(est.dtype) in (np.float64, np.float32)
        except TypeError:
            ok = False
        if not ok:
            raise InvalidParameterError(f"dtype must be None (follow X, as scikit-learn does), "
                                        f"'float64' or 'float32'; got {est.dtype!r}")
    record = (est.record,) if isinstance(est.record, str) else est.record
    try:
        bad = [r for r in record if r not in RECORD_NAMES]
    except TypeError:
        bad = [record]
    if bad:
        raise InvalidParameterError(f"record must be a sequence of names from "
                                    f"{list(RECORD_NAMES)}; got {est.record!r}")
    _choice(est, "init", INITS)
