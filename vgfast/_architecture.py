"""A Network's architecture: the names the engine knows, and the checks that turn arguments (or
a saved spec) into the architecture the engine is built from.

The same checks serve ``Network(...)`` and a network rebuilt from its state (a checkpoint
header's ``"network"``, a pickle), so a saved file cannot describe a network the constructor
would refuse.
"""
import numpy as np

from . import init as _init
from ._validate import check_choice, check_number, dtype_of

#: hidden-layer activations and their engine codes
HIDDEN = {"sigmoid": 0, "tanh": 1, "relu": 2, "leaky_relu": 3, "linear": 4, "abs": 6, "elu": 7,
          "softplus": 8}
#: output-layer activations
OUTPUT = {"sigmoid": 0, "softmax": 5, "linear": 4}
COSTS = {"cross_entropy": 0, "log_likelihood": 1, "quadratic": 2}
#: the (output, cost) pairs whose gradient and cost are defined and stable
VALID_PAIRS = {("sigmoid", "cross_entropy"), ("softmax", "log_likelihood"),
               ("sigmoid", "quadratic"), ("softmax", "quadratic"), ("linear", "quadratic")}


def check_sizes(sizes):
    """sizes as a list of ints; ValueError unless at least two positive integers (no 2.5, no
    strings or bools, no Inf or NaN) of at most 2**24."""
    try:
        raw = list(sizes)
        sizes = [int(s) for s in raw]
        ok = all(float(s) == float(t) and not isinstance(t, (str, bytes, bool, np.bool_))
                 for s, t in zip(sizes, raw))
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok or len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"sizes must be a sequence of at least two positive integers (input "
                         f"first, e.g. [784, 30, 10]); got {sizes!r}")
    if max(sizes) > 2 ** 24:
        raise ValueError(f"sizes: a layer of {max(sizes)} units is larger than supported "
                         f"(2**24)")
    return sizes


def architecture(sizes, activation, output, cost, dtype, leaky_slope, elu_alpha, batch_norm,
                 bn_eps, bn_momentum):
    """The validated architecture as the keyword arguments of ``Network._build``."""
    sizes = check_sizes(sizes)
    L = len(sizes) - 1
    if isinstance(activation, str):
        activations = [activation] * (L - 1)
    else:
        try:
            activations = list(activation)
        except TypeError:
            raise TypeError(f"activation must be a name or one name per hidden layer; got "
                            f"{activation!r}") from None
        if len(activations) != L - 1:
            raise ValueError(f"activation must be one name or one per hidden layer "
                             f"({L - 1}); got {len(activations)} names")
    for a in activations:
        check_choice(a, HIDDEN, "activation")
    check_choice(output, OUTPUT, "output")
    check_choice(cost, COSTS, "cost")
    if (output, cost) not in VALID_PAIRS:
        hint = " (for softmax use cost='log_likelihood')" if output == "softmax" else ""
        raise ValueError(f"cost={cost!r} does not go with output={output!r}{hint}; valid "
                         f"(output, cost) pairs: {sorted(VALID_PAIRS)}")
    if isinstance(batch_norm, (bool, np.bool_)):
        bn = [bool(batch_norm)] * (L - 1)
    else:
        try:
            bn = list(batch_norm)
        except TypeError:
            bn = None
        if bn is None or len(bn) != L - 1 or not all(isinstance(b, bool) for b in bn):
            raise ValueError(f"batch_norm must be True/False or one bool per hidden layer "
                             f"({L - 1}); got {batch_norm!r}")
    return dict(sizes=sizes, activations=activations, output=output, cost_name=cost,
                dtype=dtype_of(dtype), leaky_slope=check_number(leaky_slope, "leaky_slope"),
                elu_alpha=check_number(elu_alpha, "elu_alpha", low=0), batch_norm=bn,
                bn_eps=check_number(bn_eps, "bn_eps", low=0, low_open=True),
                bn_momentum=check_number(bn_momentum, "bn_momentum", low=0, high=1))


def from_spec(spec, params, running, where="state"):
    """(architecture kwargs, init name) from a spec of JSON values (``Network._spec()``) and
    its arrays, every value checked: ValueError naming ``where`` for anything that is not a
    network this vgfast builds. The arrays are checked before anything is allocated."""
    if not isinstance(spec, dict):
        raise ValueError(f"{where}: the network spec must be a dict; got "
                         f"{type(spec).__name__}")

    def need(key, types, default=None, required=True):
        if key not in spec:
            if required:
                raise ValueError(f"{where}: the network spec has no {key!r}")
            return default
        v = spec[key]
        if not isinstance(v, types) or (isinstance(v, bool) and bool not in types):
            raise ValueError(f"{where}: network.{key} = {v!r}")
        return v

    sizes = need("sizes", (list, tuple))
    if len(sizes) < 2 or not all(isinstance(s, int) and not isinstance(s, bool) and
                                 1 <= s <= 2 ** 24 for s in sizes):
        raise ValueError(f"{where}: network.sizes = {sizes!r}")
    acts = need("activations", (list, tuple))
    if len(acts) != len(sizes) - 2 or not all(isinstance(a, str) and a in HIDDEN
                                              for a in acts):
        raise ValueError(f"{where}: network.activations = {acts!r}")
    output, cost = need("output", (str,)), need("cost", (str,))
    if output not in OUTPUT or cost not in COSTS:
        raise ValueError(f"{where}: network output {output!r}, cost {cost!r}")
    dtype = need("dtype", (str,))
    if dtype not in ("float64", "float32"):
        raise ValueError(f"{where}: network.dtype = {dtype!r}")
    bn = need("batch_norm", (list, tuple), [False] * len(acts), required=False)
    if len(bn) != len(acts) or not all(isinstance(b, bool) for b in bn):
        raise ValueError(f"{where}: network.batch_norm = {bn!r}")
    real = (int, float)
    arch = architecture(sizes, list(acts), output, cost, dtype,
                        need("leaky_slope", real), need("elu_alpha", real), list(bn),
                        need("bn_eps", real, 1e-5, required=any(bn)),
                        need("bn_momentum", real, 0.1, required=any(bn)))
    init = spec.get("init", "nielsen")
    n_params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    n_params += sum(2 * s for s, on in zip(sizes[1:-1], bn) if on)
    n_running = 2 * sum(s for s, on in zip(sizes[1:-1], bn) if on)
    # the arrays are checked before anything sized by the spec is allocated
    for key, a, n in (("params", params, n_params), ("bn_running", running, n_running)):
        if not isinstance(a, np.ndarray) or a.shape != (n,) or a.dtype != np.dtype(dtype):
            raise ValueError(f"{where}: {key} must be a ({n},) array of {dtype}; got "
                             f"{getattr(a, 'shape', None)} of "
                             f"{getattr(a, 'dtype', type(a).__name__)}")
        if not np.isfinite(a).all():
            raise ValueError(f"{where}: {key} contains NaN or Inf")
    return arch, (init if isinstance(init, str) and init in _init.WEIGHT_INITS else "nielsen")
