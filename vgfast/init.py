"""Weight and bias initialisers.

Each weight initialiser is ``f(rng, n_out, n_in, gain=1.0) -> (n_out, n_in) float64`` drawn from
a ``numpy.random.Generator``. ``Network(init=name)`` applies one to every layer; they can also be
called on their own. Variances (for a layer with fan-in n_in and fan-out n_out):

=============== ============================== ==============================================
name            distribution                   source
=============== ============================== ==============================================
nielsen         N(0, 1/n_in), biases N(0, 1)   network2.default_weight_initializer
large           N(0, 1), biases N(0, 1)        network2.large_weight_initializer
lecun_uniform   U(-1/sqrt(n_in), 1/sqrt(n_in))  the lecture's baseline; Var = 1/(3 n_in)
lecun_normal    N(0, 1/n_in)                   LeCun et al. 1998
glorot_uniform  U(+-sqrt(6/(n_in+n_out)))      Glorot & Bengio 2010, eq. 16; Var = 2/(n_in+n_out)
glorot_normal   N(0, 2/(n_in+n_out))           Glorot & Bengio 2010
he_normal       N(0, 2/n_in)                   He et al. 2015
he_uniform      U(+-sqrt(6/n_in))              He et al. 2015; Var = 2/n_in
orthogonal      gain * Q, Q orthogonal         Saxe et al. 2014
=============== ============================== ==============================================

Every weight draw is multiplied by ``gain`` (default 1; see :func:`gain` for torch's per-activation
values). Bias options: ``"normal"`` (N(0, 1)), ``"zeros"``, a number (e.g. 0.1 for ReLU units), and
:func:`output_bias_from_frequencies` for softmax(b) = class frequencies.
"""
import numbers

import numpy as np


def nielsen(rng, n_out, n_in, gain=1.0):
    return gain * rng.standard_normal((n_out, n_in)) / np.sqrt(n_in)


def large(rng, n_out, n_in, gain=1.0):
    return gain * rng.standard_normal((n_out, n_in))


def lecun_uniform(rng, n_out, n_in, gain=1.0):
    r = 1.0 / np.sqrt(n_in)
    return gain * rng.uniform(-r, r, (n_out, n_in))


def lecun_normal(rng, n_out, n_in, gain=1.0):
    return gain * rng.standard_normal((n_out, n_in)) * np.sqrt(1.0 / n_in)


def glorot_uniform(rng, n_out, n_in, gain=1.0):
    r = np.sqrt(6.0 / (n_in + n_out))
    return gain * rng.uniform(-r, r, (n_out, n_in))


def glorot_normal(rng, n_out, n_in, gain=1.0):
    return gain * rng.standard_normal((n_out, n_in)) * np.sqrt(2.0 / (n_in + n_out))


def he_normal(rng, n_out, n_in, gain=1.0):
    return gain * rng.standard_normal((n_out, n_in)) * np.sqrt(2.0 / n_in)


def he_uniform(rng, n_out, n_in, gain=1.0):
    r = np.sqrt(6.0 / n_in)
    return gain * rng.uniform(-r, r, (n_out, n_in))


def orthogonal(rng, n_out, n_in, gain=1.0):
    """gain * a matrix with orthonormal rows (n_out <= n_in) or columns (n_out > n_in)."""
    a = rng.standard_normal((max(n_out, n_in), min(n_out, n_in)))
    q, r = np.linalg.qr(a)
    q = q * np.sign(np.diag(r))  # make the distribution uniform (Haar)
    return gain * (q if n_out >= n_in else q.T)[:n_out, :n_in]


WEIGHT_INITS = {f.__name__: f for f in (nielsen, large, lecun_uniform, lecun_normal, glorot_uniform,
                                         glorot_normal, he_normal, he_uniform, orthogonal)}

#: the variance each initialiser gives a weight, for the tests and the variance study
WEIGHT_VARIANCE = {
    "nielsen": lambda n_in, n_out: 1.0 / n_in,
    "large": lambda n_in, n_out: 1.0,
    "lecun_uniform": lambda n_in, n_out: 1.0 / (3.0 * n_in),
    "lecun_normal": lambda n_in, n_out: 1.0 / n_in,
    "glorot_uniform": lambda n_in, n_out: 2.0 / (n_in + n_out),
    "glorot_normal": lambda n_in, n_out: 2.0 / (n_in + n_out),
    "he_normal": lambda n_in, n_out: 2.0 / n_in,
    "he_uniform": lambda n_in, n_out: 2.0 / n_in,
}

DEFAULT_BIAS = {"nielsen": "normal", "large": "normal"}  # the rest: zeros


def gain(activation, slope=0.01):
    """torch.nn.init.calculate_gain: the factor that keeps activation variance steady."""
    g = {"sigmoid": 1.0, "linear": 1.0, "softmax": 1.0, "tanh": 5.0 / 3.0, "relu": np.sqrt(2.0),
         "abs": np.sqrt(2.0), "elu": 1.0, "softplus": 1.0,
         "leaky_relu": np.sqrt(2.0 / (1.0 + slope ** 2))}
    if activation not in g:
        raise ValueError(f"activation must be one of {sorted(g)}; got {activation!r}")
    return float(g[activation])


def biases(rng, n_out, how):
    """Bias vector: 'normal' N(0, 1), 'zeros', or a constant number."""
    if isinstance(how, str):
        if how == "normal":
            return rng.standard_normal(n_out)
        if how == "zeros":
            return np.zeros(n_out)
        raise ValueError(f"bias_init must be 'normal', 'zeros' or a number; got {how!r}")
    if isinstance(how, numbers.Real) and not isinstance(how, bool) and np.isfinite(how):
        return np.full(n_out, float(how))
    raise ValueError(f"bias_init must be 'normal', 'zeros' or a finite number; got {how!r}")


def output_bias_from_frequencies(net, labels):
    """Set the output biases so the untrained output matches the class frequencies c.

    Softmax output: b = log c - mean(log c), so softmax(b) = c. Sigmoid output: b = logit(c).
    Classes that never occur get frequency 1/(2n) rather than 0 (log 0 is -inf).
    """
    labels = np.asarray(labels)
    k = net.sizes[-1]
    if labels.ndim != 1 or labels.dtype.kind not in "iu" or labels.size == 0:
        raise ValueError("labels must be a non-empty 1-D integer array")
    if labels.min() < 0 or labels.max() >= k:
        raise ValueError(f"labels must be in 0..{k - 1}")
    c = np.bincount(labels, minlength=k).astype(np.float64)
    c = np.maximum(c, 0.5) / len(labels)
    if net.output == "softmax":
        b = np.log(c) - np.log(c).mean()
    elif net.output == "sigmoid":
        c = np.minimum(c, 1 - 0.5 / len(labels))
        b = np.log(c) - np.log1p(-c)
    else:
        b = c.copy()
    net.biases[-1][...] = b
    return b
