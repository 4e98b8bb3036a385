"""How the variance of activations and gradients changes from layer to layer.

Glorot & Bengio (2010, sec. 4.2) and He et al. (2015, sec. 2.2) follow the variance of the
pre-activations forward and of the back-propagated gradients backward, under the assumptions
that the weights are independent of the activations, zero-mean, with variance ``Var(w)``:

- forward (He et al. eq. 7; Glorot & Bengio eq. 5 in the linear regime, ``f'(0) = 1``)::

      Var(z^l) = n_{l-1} Var(w^l) E[(a^{l-1})^2]  (+ Var(b^l) with random biases)

- backward (He et al. eq. 13; Glorot & Bengio eq. 6 in the linear regime)::

      Var(delta^l) = n_{l+1} Var(w^{l+1}) Var(delta^{l+1}) E[f'(z^l)^2]

  with ``delta^l = dC/dz^l`` of one example (the book's delta, ch. 2 eq. BP2).

``n Var(w) = 1`` keeps the forward variance (LeCun), ``2 / (n_in + n_out)`` compromises between
forward and backward (Glorot, "Xavier"), ``2 / n_in`` compensates the ReLU halving
``E[relu(z)^2] = Var(z) / 2`` (He). The lecture (seed 002) derives the same product for
``y = w^T x + b``: ``Var(y) = n Var(w) Var(x)``.

All statistics are "pooled": over the examples and the units of a layer together, as in
Glorot & Bengio's figures. They are computed from :meth:`vgfast.Network.trace`, one engine call
per chunk of rows. Layer index ``l = 0..L-1`` is weight layer ``l + 1`` (``z^{l+1}``,
``a^{l+1}``); the output layer is last. Batch-normalised layers are evaluated with their
running statistics: ``z^l`` is then the activation's input (after the normalisation), as in
:meth:`vgfast.Network.trace`; the variance theory refuses them (it assumes ``z = W a + b``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import _reference as _ref
from .speed import _check_chunk, _check_net, _check_plain, _chunks, _rows

__all__ = ["LayerStatistics", "ForwardTheory", "BackwardTheory", "Saturation",
           "layer_statistics", "theory_forward", "theory_backward", "saturation",
           "variance_study", "plot_variance_study", "plot_histograms", "gaussian_mean_square",
           "SATURATION_LOW"]

#: default threshold of :func:`saturation`: a sigmoid unit is saturated when a < 0.05 or a > 0.95
SATURATION_LOW = 0.05


class _Moments:
    """Pooled count, mean and M2 (sum of squared deviations), merged chunk by chunk (Chan)."""

    def __init__(self):
        self.n, self.mean, self.m2 = 0, 0.0, 0.0

    def add(self, x):
        x = np.asarray(x, np.float64)
        k = x.size
        if k == 0:
            return
        mu = float(x.mean())
        m2 = float(np.sum((x - mu) ** 2))
        n = self.n + k
        d = mu - self.mean
        self.mean += d * k / n
        self.m2 += m2 + d * d * self.n * k / n
        self.n = n

    @property
    def var(self):
        return self.m2 / self.n if self.n else float("nan")

    @property
    def mean_sq(self):
        return self.var + self.mean ** 2


def _layer_acts(net):
    return _ref.layer_activations(net)


@dataclass(frozen=True, eq=False)
class LayerStatistics:
    """Pooled (over examples and units) moments of each layer; index 0 = first weight layer.

    Attributes
    ----------
    var_z, mean_z : ndarray (L,)
        Variance and mean of the pre-activations ``z^l = W^l a^{l-1} + b^l``.
    var_a, mean_a, mean_sq_a : ndarray (L,)
        Variance, mean and second moment ``E[(a^l)^2]`` of the activations.
    var_input, mean_sq_input : float
        The same for the input ``a^0 = x``.
    mean_sq_fprime : ndarray (L - 1,)
        ``E[f'(z^l)^2]`` of the hidden layers, the factor of the backward recursion.
    var_delta, mean_sq_delta : ndarray (L,) or None
        Variance and second moment of the per-example back-propagated gradient
        ``delta^l = dC/dz^l`` (Glorot & Bengio's "back-propagated gradients", fig. 7);
        None without targets.
    var_grad_w : ndarray (L,) or None
        Variance of the entries of ``dC/dW^l`` of the mean cost (Glorot & Bengio's weight
        gradients, whose variance their normalised initialisation keeps level).
    n : int
        Number of rows.
    """

    var_z: np.ndarray
    mean_z: np.ndarray
    var_a: np.ndarray
    mean_a: np.ndarray
    mean_sq_a: np.ndarray
    var_input: float
    mean_sq_input: float
    mean_sq_fprime: np.ndarray
    var_delta: np.ndarray | None
    mean_sq_delta: np.ndarray | None
    var_grad_w: np.ndarray | None
    n: int


def layer_statistics(net, X, Y=None, chunk=8192):
    """Per-layer variance of pre-activations, activations and (with ``Y``) gradients.

    Parameters
    ----------
    net : vgfast.Network
    X : array (n, n_in)
    Y : labels (n,) or targets (n, n_out), optional
        Needed for the gradient statistics.
    chunk : int
        Rows per :meth:`~vgfast.Network.trace` call.

    Returns
    -------
    LayerStatistics
        The measured side of the variance arguments of Glorot & Bengio (2010) and He et al.
        (2015); compare with :func:`theory_forward` and :func:`theory_backward`.
    """
    _check_net(net)
    chunk = _check_chunk(chunk)
    X = _rows(net, X)
    n = X.shape[0]
    if Y is not None:
        Y = np.asarray(Y)
        net._Y(Y, n)
    L = net.L
    acts_info = _layer_acts(net)
    mz = [_Moments() for _ in range(L)]
    ma = [_Moments() for _ in range(L)]
    mx = _Moments()
    mfp = [_Moments() for _ in range(L - 1)]
    md = [_Moments() for _ in range(L)] if Y is not None else None
    sum_dw = ([np.zeros((o, i)) for i, o in zip(net.sizes[:-1], net.sizes[1:])]
              if Y is not None else None)
    for s, e in _chunks(n, chunk):
        zs, acts, deltas = net.trace(X[s:e], None if Y is None else Y[s:e])
        mx.add(acts[0])
        for l in range(L):
            mz[l].add(zs[l])
            ma[l].add(acts[l + 1])
            if l < L - 1:
                name, alpha = acts_info[l]
                fp = _ref.derivative(np.asarray(zs[l], np.float64),
                                     np.asarray(acts[l + 1], np.float64), name, alpha)
                mfp[l].add(fp * fp)  # E[f'^2] is the mean of fp^2
            if md is not None:
                md[l].add(deltas[l])
                sum_dw[l] += np.asarray(deltas[l], np.float64).T @ np.asarray(acts[l], np.float64)

    def arr(ms, what):
        return np.array([getattr(m, what) for m in ms])

    return LayerStatistics(
        var_z=arr(mz, "var"), mean_z=arr(mz, "mean"),
        var_a=arr(ma, "var"), mean_a=arr(ma, "mean"), mean_sq_a=arr(ma, "mean_sq"),
        var_input=mx.var, mean_sq_input=mx.mean_sq,
        mean_sq_fprime=arr(mfp, "mean"),
        var_delta=None if md is None else arr(md, "var"),
        mean_sq_delta=None if md is None else arr(md, "mean_sq"),
        var_grad_w=None if sum_dw is None else np.array([np.var(w / n) for w in sum_dw]),
        n=n)


# ----------------------------------------------------------------------------- theory

_HERMITE = np.polynomial.hermite_e.hermegauss(121)


def _norm_cdf(x):
    from scipy.special import ndtr

    return ndtr(np.asarray(x, np.float64))


def _norm_pdf(x):
    return np.exp(-0.5 * np.asarray(x, np.float64) ** 2) / math.sqrt(2.0 * math.pi)


def gaussian_mean_square(name, mu, var, alpha=0.0):
    """``E[f(z)^2]`` for ``z ~ N(mu, var)``: the mean-field step from Var(z^l) to E[(a^l)^2].

    Closed forms for the piecewise-linear units (``linear``, ``abs``: ``mu^2 + var``; ``relu``:
    ``(mu^2 + var) Phi(mu/s) + mu s phi(mu/s)``, which is ``var / 2`` at ``mu = 0`` -- the
    factor 1/2 of He et al. sec. 2.2; ``leaky_relu`` likewise), 121-point Gauss-Hermite quadrature
    for the smooth ones (sigmoid, tanh, softplus, elu).

    Parameters
    ----------
    name : activation name; mu : array of means (one per unit); var : float >= 0; alpha : the
        leaky slope or ELU alpha.

    Returns
    -------
    ndarray, same shape as mu
    """
    mu = np.asarray(mu, np.float64)
    var = float(var)
    s = math.sqrt(max(var, 0.0))
    if name in ("linear", "abs"):
        return mu * mu + var
    if s == 0.0:
        a = _ref.activate(mu.reshape(1, -1), name, alpha).reshape(mu.shape)
        return a * a
    if name in ("relu", "leaky_relu"):
        t = mu / s
        pos = (mu * mu + var) * _norm_cdf(t) + mu * s * _norm_pdf(t)  # E[z^2 1{z>0}]
        neg = mu * mu + var - pos
        return pos + (alpha * alpha * neg if name == "leaky_relu" else 0.0)
    x, w = _HERMITE
    w = w / math.sqrt(2.0 * math.pi)
    z = mu[..., None] + s * x
    a = _ref.activate(z.reshape(-1, x.size), name, alpha).reshape(z.shape)
    return (a * a) @ w


@dataclass(frozen=True, eq=False)
class ForwardTheory:
    """Predicted and measured pooled ``Var(z^l)``; index 0 = first weight layer.

    Attributes
    ----------
    measured : ndarray (L,)
        ``Var(z^l)`` from the engine's forward pass.
    one_step : ndarray (L,)
        ``n_{l-1} Var(w^l) E[(a^{l-1})^2] + Var(b^l)`` with the *measured* ``E[(a^{l-1})^2]``
        (He et al. eq. 7, plus the spread of the biases): tests the single-layer formula.
    propagated : ndarray (L,)
        The same formula iterated from the input alone: ``E[(a^l)^2]`` is taken as
        ``E[f(z)^2]`` with ``z ~ N(b_j, n_{l-1} Var(w^l) E[(a^{l-1})^2])`` averaged over the
        units ``j`` (:func:`gaussian_mean_square`; the mean-field assumption). For linear units
        and zero biases it is Glorot & Bengio's eq. 5,
        ``Var(z^l) = E[x^2] prod_{k<=l} n_{k-1} Var(w^k)``.
    gain : ndarray (L,)
        ``n_{l-1} Var(w^l)``, the per-layer factor: 1 for LeCun, 2 for He, 1/3 for the
        lecture's ``U(-1/sqrt(n), 1/sqrt(n))``, ``n_{l-1}`` for ``large``.
    var_w, var_b, fan_in : ndarray (L,)
        The actual weights' variance ``np.var(W^l)``, the biases' ``np.var(b^l)``, ``n_{l-1}``.
    mean_sq_prev : ndarray (L,)
        The measured ``E[(a^{l-1})^2]`` used by ``one_step``.
    """

    measured: np.ndarray
    one_step: np.ndarray
    propagated: np.ndarray
    gain: np.ndarray
    var_w: np.ndarray
    var_b: np.ndarray
    fan_in: np.ndarray
    mean_sq_prev: np.ndarray


def theory_forward(net, X, stats=None):
    """The Glorot/He forward variance prediction from the network's actual weights.

    ``Var(z^l) = n_{l-1} Var(w^l) E[(a^{l-1})^2] + Var(b^l)`` (He et al. 2015, eq. 7; Glorot &
    Bengio 2010, eq. 5 for linear units), one step from the measured previous layer and
    propagated from the input (see :class:`ForwardTheory`). The assumptions are the weights'
    independence from the activations (exact for a random network, averaged over the draw of
    the weights) and zero-mean weights; the prediction is within sampling error of the measured
    value in that regime (see ``tests/test_analysis_engine.py`` for the error bound).

    Parameters
    ----------
    net : vgfast.Network
    X : array (n, n_in)
    stats : LayerStatistics, optional (computed when not given)

    Returns
    -------
    ForwardTheory
    """
    _check_net(net)
    _check_plain(net, "theory_forward")
    if stats is None:
        stats = layer_statistics(net, X)
    L = net.L
    var_w = np.array([np.var(np.asarray(w, np.float64)) for w in net.weights])
    var_b = np.array([np.var(np.asarray(b, np.float64)) for b in net.biases])
    fan_in = np.array(net.sizes[:-1], np.float64)
    gain = fan_in * var_w
    prev = np.concatenate([[stats.mean_sq_input], stats.mean_sq_a[:-1]])
    one_step = gain * prev + var_b
    prop = np.empty(L)
    m = stats.mean_sq_input
    acts_info = _layer_acts(net)
    for l in range(L):
        q = gain[l] * m  # variance of w.a for each unit; z_j ~ N(b_j, q)
        prop[l] = q + var_b[l]
        if l < L - 1:
            name, alpha = acts_info[l]
            m = float(np.mean(gaussian_mean_square(name, np.asarray(net.biases[l], np.float64),
                                                   q, alpha)))
    return ForwardTheory(measured=stats.var_z.copy(), one_step=one_step, propagated=prop,
                         gain=gain, var_w=var_w, var_b=var_b, fan_in=fan_in, mean_sq_prev=prev)


@dataclass(frozen=True, eq=False)
class BackwardTheory:
    """Predicted and measured second moment of ``delta^l = dC/dz^l`` (one example).

    Attributes
    ----------
    measured : ndarray (L,)
        ``E[(delta^l)^2]`` from the engine's backward pass (pooled over examples and units).
        Hidden-layer deltas have mean about 0 (sums of random-sign weights), so this is their
        variance; the output layer's is taken as given.
    one_step : ndarray (L,)
        ``n_{l+1} Var(w^{l+1}) E[(delta^{l+1})^2] E[f'(z^l)^2]`` with the measured
        ``delta^{l+1}`` (He et al. eq. 13); the last entry is the measured output value.
    propagated : ndarray (L,)
        The same recursion iterated from the measured output delta, with the measured
        ``E[f'(z^l)^2]``: Glorot & Bengio eq. 6 when ``f' = 1`` (the linear regime).
    gain : ndarray (L,)
        ``n_{l+1} Var(w^{l+1}) E[f'(z^l)^2]`` for the hidden layers (L - 1,), the factor by
        which the gradient grows (> 1) or vanishes (< 1) per layer going back.
    """

    measured: np.ndarray
    one_step: np.ndarray
    propagated: np.ndarray
    gain: np.ndarray


def theory_backward(net, X, Y, stats=None):
    """The Glorot/He backward variance prediction: ``Var(delta^l)`` from ``Var(delta^{l+1})``.

    ``Var(delta^l) = n_{l+1} Var(w^{l+1}) Var(delta^{l+1}) E[f'(z^l)^2]`` (He et al. 2015, eq.
    13; Glorot & Bengio 2010, eq. 6 with ``f' = 1``), using the actual weights' variance. See
    :class:`BackwardTheory`. The assumption that ``delta^{l+1}`` is independent of ``W^{l+1}``
    and of ``f'(z^l)`` holds only approximately (both depend on the forward pass).
    """
    _check_net(net)
    _check_plain(net, "theory_backward")
    if Y is None:
        raise ValueError("theory_backward needs targets Y")
    if stats is None or stats.mean_sq_delta is None:
        stats = layer_statistics(net, X, Y)
    L = net.L
    var_w = np.array([np.var(np.asarray(w, np.float64)) for w in net.weights])
    fan_out = np.array(net.sizes[2:], np.float64)  # n_{l+1} for the hidden layers
    gain = fan_out * var_w[1:] * stats.mean_sq_fprime
    meas = stats.mean_sq_delta.copy()
    one = meas.copy()
    one[:-1] = gain * meas[1:]
    prop = meas.copy()
    for l in range(L - 2, -1, -1):
        prop[l] = gain[l] * prop[l + 1]
    return BackwardTheory(measured=meas, one_step=one, propagated=prop, gain=gain)


# ------------------------------------------------------------------------- saturation

_MAX_FPRIME = {"sigmoid": 0.25, "tanh": 1.0, "relu": 1.0, "linear": 1.0, "abs": 1.0,
               "softplus": 1.0}


def _max_fprime(name, alpha):
    if name == "leaky_relu":
        return max(1.0, abs(alpha))
    if name == "elu":
        return max(1.0, alpha)
    return _MAX_FPRIME[name]


@dataclass(frozen=True, eq=False)
class Saturation:
    """Saturated and dead units of every hidden layer (index 0 = first hidden layer).

    Attributes
    ----------
    saturated : ndarray (L - 1,)
        Fraction of the (example, unit) pairs whose derivative is below ``threshold`` times the
        activation's largest derivative: ``f'(z) < 4 low (1 - low) max f'``. For sigmoid this is
        exactly ``a < low or a > 1 - low`` (default 0.05 / 0.95, where ``sigma'`` is below 19 %
        of its peak 1/4); for tanh ``|a| > 1 - 2 low`` (0.9), the same derivative ratio; for
        relu it counts ``z <= 0``; linear and abs never saturate.
    dead : ndarray (L - 1,)
        Fraction of units whose derivative is exactly 0 for every example: for relu, units
        with ``a == 0`` on all rows (dead ReLUs); for sigmoid/tanh, units saturated beyond
        float64 resolution.
    mean_fprime_ratio : ndarray (L - 1,)
        ``E[f'(z)] / max f'``: how much of the best-case gradient the layer passes on average.
    low : float
    threshold : float
        ``4 low (1 - low)`` (0.19 for low = 0.05).
    activations : tuple of str
    """

    saturated: np.ndarray
    dead: np.ndarray
    mean_fprime_ratio: np.ndarray
    low: float
    threshold: float
    activations: tuple


def saturation(net, X, low=SATURATION_LOW, chunk=8192):
    """Fraction of saturated (and dead) hidden units, the lecture's "насыщение" (seed 002).

    Parameters
    ----------
    net : vgfast.Network
    X : array (n, n_in)
    low : float in (0, 0.5)
        A sigmoid unit counts as saturated when ``a < low`` or ``a > 1 - low``; the other
        activations use the same derivative ratio (see :class:`Saturation`).
    chunk : int

    Returns
    -------
    Saturation
    """
    _check_net(net)
    if isinstance(low, bool) or not isinstance(low, (int, float)) or not 0 < low < 0.5:
        raise ValueError(f"low must be a number in (0, 0.5); got {low!r}")
    chunk = _check_chunk(chunk)
    X = _rows(net, X)
    n = X.shape[0]
    H = net.L - 1
    thr = 4.0 * low * (1.0 - low)
    acts_info = _layer_acts(net)[:H]
    sat = np.zeros(H)
    ratio = np.zeros(H)
    alive = [np.zeros(net.sizes[l + 1], bool) for l in range(H)]
    for s, e in _chunks(n, chunk):
        zs, acts, _ = net.trace(X[s:e])
        for l, (name, alpha) in enumerate(acts_info):
            fp = np.abs(_ref.derivative(np.asarray(zs[l], np.float64),
                                        np.asarray(acts[l + 1], np.float64), name, alpha))
            mx = _max_fprime(name, alpha)
            sat[l] += np.count_nonzero(fp < thr * mx)
            ratio[l] += fp.sum() / mx
            alive[l] |= (fp != 0).any(axis=0)
    units = np.array(net.sizes[1:-1], np.float64)
    return Saturation(saturated=sat / (n * units), dead=np.array([1 - a.mean() for a in alive]),
                      mean_fprime_ratio=ratio / (n * units), low=float(low), threshold=thr,
                      activations=tuple(net.activations))


# ---------------------------------------------------------------------- variance study

def variance_study(depth=10, width=100, activations=("sigmoid", "tanh", "relu"),
                   inits=("large", "nielsen", "lecun_uniform", "glorot_uniform", "he_normal"),
                   n=1000, seed=0, X=None, Y=None, n_out=10):
    """Per-layer activation and gradient variance at initialisation, for every activation x init.

    The experiment behind Glorot & Bengio's figs. 3-7 and the lecture's slides: a stack of
    ``depth`` hidden layers of ``width`` units, a softmax output of ``n_out`` classes with the
    log-likelihood cost, each initialiser of :mod:`vgfast.init` (with its default biases:
    N(0, 1) for ``large``/``nielsen``, zeros for the rest), the statistics of
    :func:`layer_statistics` and :func:`saturation` at initialisation.

    Parameters
    ----------
    depth, width : int
        Number and size of hidden layers.
    activations, inits : sequences of names.
    n : int
        Rows of the default input.
    seed : int
        Seeds the input, the labels and every network (the same seed for every combination).
    X : array (m, d), optional
        Input rows (default: ``n`` rows of standard normal noise, ``d = width``).
    Y : labels (m,), optional (default: uniform random labels in 0..n_out-1).
    n_out : int

    Returns
    -------
    dict of ndarray
        One row per (activation, init) combination, one column per hidden layer:
        ``activation``, ``init`` (k,) names; ``layer`` (depth,) 1..depth; ``var_z``, ``var_a``,
        ``var_delta`` (variance of the per-example dC/dz), ``var_grad_w`` (variance of the
        entries of dC/dW of the mean cost), ``theory_var_z`` (the propagated forward theory of
        :func:`theory_forward`), ``saturated`` (fraction of saturated activations,
        :func:`saturation`) -- each (k, depth) -- and ``gain`` (k, depth), ``n Var(w)``.
    """
    from ..network import Network

    for v, nm in ((depth, "depth"), (width, "width"), (n, "n"), (n_out, "n_out")):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{nm} must be a positive integer; got {v!r}")
    rng = np.random.default_rng(seed)
    if X is None:
        X = rng.standard_normal((n, width))
    X = np.asarray(X, np.float64)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (rows of inputs); got shape {X.shape}")
    if Y is None:
        Y = rng.integers(0, n_out, X.shape[0])
    sizes = [X.shape[1]] + [width] * depth + [n_out]
    keys = ("var_z", "var_a", "var_delta", "var_grad_w", "theory_var_z", "saturated", "gain")
    rows = {k: [] for k in keys}
    names_a, names_i = [], []
    for act in activations:
        for init in inits:
            net = Network(sizes, activation=act, output="softmax", cost="log_likelihood",
                          init=init, seed=seed)
            st = layer_statistics(net, X, Y)
            th = theory_forward(net, X, stats=st)
            sa = saturation(net, X)
            rows["var_z"].append(st.var_z[:depth])
            rows["var_a"].append(st.var_a[:depth])
            rows["var_delta"].append(st.var_delta[:depth])
            rows["var_grad_w"].append(st.var_grad_w[:depth])
            rows["theory_var_z"].append(th.propagated[:depth])
            rows["saturated"].append(sa.saturated)
            rows["gain"].append(th.gain[:depth])
            names_a.append(act)
            names_i.append(init)
    out = {"activation": np.array(names_a), "init": np.array(names_i),
           "layer": np.arange(1, depth + 1)}
    out.update({k: np.array(v, np.float64) for k, v in rows.items()})
    return out


def plot_variance_study(table, quantity="var_a", figsize=None):
    """One panel per activation, one line per initialiser: ``quantity`` against layer (log y).

    Flat lines are what the Glorot/He initialisations aim for (the lecture's slides "После
    инициализации"; Glorot & Bengio figs. 3-5).

    Parameters
    ----------
    table : dict, the result of :func:`variance_study`.
    quantity : str
        A per-layer key of the table: ``var_a``, ``var_z``, ``var_delta``, ``var_grad_w``,
        ``theory_var_z``, ``saturated`` (linear y axis) or ``gain``.
    figsize : (width, height), optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    from vgfast._plot import plt_axes

    if quantity not in table or np.ndim(table[quantity]) != 2:
        raise ValueError(f"quantity must be a per-layer key of the table, e.g. 'var_a', "
                         f"'var_delta'; got {quantity!r}")
    acts = list(dict.fromkeys(table["activation"].tolist()))
    fig, ax0 = plt_axes(figsize=figsize or (4.2 * len(acts), 3.8))
    ax0.remove()
    axes = fig.subplots(1, len(acts), squeeze=False)[0]
    layer = table["layer"]
    for ax, act in zip(axes, acts):
        for i in np.flatnonzero(table["activation"] == act):
            y = table[quantity][i]
            ax.plot(layer, np.where(y > 0, y, np.nan), marker="o", ms=3, label=table["init"][i])
        if quantity != "saturated":
            ax.set_yscale("log")
        ax.set_title(act)
        ax.set_xlabel("hidden layer")
    axes[0].set_ylabel(quantity)
    axes[-1].legend(fontsize="small")
    fig.tight_layout()
    return fig


def plot_histograms(net, X, Y=None, bins=60, figsize=(10, 3.8)):
    """Per-hidden-layer histograms of activations and back-propagated gradients.

    Glorot & Bengio (2010) figs. 6 and 7: normalised histograms of the activation values and of
    ``dC/dz^l`` (per example) of each hidden layer; with a good initialisation the gradient
    histograms of all layers overlap. Without ``Y`` only the activations are drawn.

    Parameters
    ----------
    net : vgfast.Network
    X : array (n, n_in); Y : labels or targets, optional
    bins : int
    figsize : (width, height)

    Returns
    -------
    matplotlib.figure.Figure
    """
    from vgfast._plot import plt_axes

    _check_net(net)
    zs, acts, deltas = net.trace(X, Y)
    H = net.L - 1
    k = 1 if deltas is None else 2
    fig, ax0 = plt_axes(figsize=figsize)
    ax0.remove()
    axes = fig.subplots(1, k, squeeze=False)[0]
    for l in range(H):
        h, edges = np.histogram(np.asarray(acts[l + 1], np.float64), bins=bins, density=True)
        axes[0].step(edges[:-1], h, where="post", label=f"layer {l + 1}")
    axes[0].set_title("activation values")
    axes[0].set_xlabel("a")
    axes[0].legend(fontsize="small")
    if deltas is not None:
        for l in range(H):
            d = np.asarray(deltas[l], np.float64).ravel()
            h, edges = np.histogram(d, bins=bins, density=True)
            axes[1].step(edges[:-1], h, where="post", label=f"layer {l + 1}")
        axes[1].set_title("back-propagated gradients dC/dz")
        axes[1].set_xlabel(r"$\delta$")
        axes[1].set_yscale("log")
        axes[1].legend(fontsize="small")
    fig.tight_layout()
    return fig
