"""Cockpit's costlier instruments of one mini-batch: curvature, the step's alpha, histograms.

These are measured every k steps during training (``vgfast.train(..., record=("hessian_max",
"hessian_trace", "alpha", "grad_hist"), probe_every=k)``) and are usable on their own:

- :func:`hessian_trace` -- Hutchinson's estimator ``tr H ~ mean_j v_j^T H v_j`` with Rademacher
  probes ``v_j`` (entries +-1, so ``E[v v^T] = I``), on the exact Hessian-vector products of
  :class:`~vgfast.analysis.curvature.HessianOperator` (Cockpit's ``HessTrace`` takes BackPACK's
  exact diagonal instead);
- :func:`hessian_max_eigenvalue` -- the largest eigenvalue of the Hessian by Lanczos iteration
  with full re-orthogonalisation (Cockpit's ``HessMaxEV`` uses power iteration in autograd);
- :func:`step_alpha` -- Cockpit's normalised step length ``alpha`` of a step: a quadratic fitted
  along the step to the mini-batch loss and its slope at both ends, weighted by their noise;
  ``alpha = 0`` means the step landed in the fitted parabola's minimum, ``-1`` that it stayed at
  the start (or the fit is concave: still going downhill), ``+1`` that it jumped to the opposite
  side at equal height, ``> 1`` uphill beyond it;
- :func:`gradient_histogram` -- per layer, the histogram of the individual gradient elements
  ``(g_i)_j`` (example ``i``'s own gradient, weights and biases) on fixed logarithmic bins of
  ``|g|`` (:data:`HIST_EDGES`): the vanishing gradient as a distribution, layer by layer.

The numpy work runs with one BLAS thread (its operands are small; see
:func:`vgfast.threads.one_blas_thread`). All of them describe the mini-batch cost without
regularisation (the mean cost over the rows;
as Cockpit and :func:`~vgfast.analysis.gradient_statistics`), at ``net.params``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _reference as _ref
from .._validate import check_number
from ..history import HIST_BINS, HIST_EDGES
from ..threads import one_blas_thread
from .curvature import HessianOperator

__all__ = ["HIST_BINS", "HIST_EDGES", "HIST_LABELS", "HessianTrace", "HessianEigenvalue", "StepAlpha",
           "gradient_histogram", "hessian_max_eigenvalue", "hessian_trace", "step_alpha"]

# HIST_EDGES, HIST_BINS (imported above) are defined beside History.grad_hist, whose shape they
# fix: log10 |g| edges of 48 half-decade bins from 1e-20 to 1e4, plus bin 0 (|g| < 1e-20,
# zeros) and bin 49 (|g| >= 1e4)
#: a label per bin (for plots and tables)
HIST_LABELS = tuple(["<1e-20"] + [f"[1e{a:g},1e{b:g})" for a, b in zip(HIST_EDGES[:-1],
                                                                        HIST_EDGES[1:])]
                    + [">=1e4"])


def _network(net):
    from ..network import Network

    if not isinstance(net, Network):
        raise TypeError(f"net must be a vgfast.Network; got {type(net).__name__}")
    if any(net.batch_norm):
        raise ValueError("net is batch-normalised: each example's gradient then depends on the "
                         "whole batch, so the per-example quantities here are not defined; use a "
                         "network without batch normalisation")
    return net


def _rng(seed):
    if seed is not None:
        check_number(seed, "seed", low=0, integer=True)
    return np.random.default_rng(seed)


def _on_hessian(method, net, X, Y, count, name, seed):
    """method(HessianOperator on the rows, count, rng), the count checked, on one BLAS thread."""
    count = check_number(count, name, low=1, integer=True)
    rng = _rng(seed)
    with one_blas_thread():
        return method(HessianOperator(_network(net), X, Y), count, rng)


# ----------------------------------------------------------------------- Hessian trace
@dataclass(frozen=True, eq=False)
class HessianTrace:
    """Hutchinson's estimate of ``tr H``.

    Attributes
    ----------
    value : float, ``mean_j v_j^T H v_j`` over the probes.
    std_error : float, the standard error of that mean (sample sd / sqrt(samples)); NaN for
        one probe.
    samples : int, the number of Rademacher probes.
    """

    value: float
    std_error: float
    samples: int


def _hutchinson(op, samples, rng):
    P = op.shape[0]
    q = np.empty(samples)
    for j in range(samples):
        v = rng.integers(0, 2, P).astype(np.float64) * 2.0 - 1.0
        q[j] = v @ op.matvec(v)
    se = q.std(ddof=1) / np.sqrt(samples) if samples > 1 else np.nan
    return HessianTrace(value=float(q.mean()), std_error=float(se), samples=samples)


def hessian_trace(net, X, Y, samples=16, seed=0):
    """Hutchinson's estimate of the trace of the mini-batch cost's Hessian.

    ``tr H = E[v^T H v]`` for any random ``v`` with ``E[v v^T] = I``; Rademacher ``v`` (entries
    +-1) give the smallest variance among such distributions (Hutchinson 1990). Each probe is one
    exact Hessian-vector product (Pearlmutter's R-operator, about two gradients' work).

    Parameters
    ----------
    net : vgfast.Network (activations with a second derivative; no batch normalisation)
    X : (m, n_in) rows; Y : labels (m,) or targets (m, n_out)
    samples : int >= 1, probes; seed : seeds them.

    Returns
    -------
    HessianTrace
    """
    return _on_hessian(_hutchinson, net, X, Y, samples, "samples", seed)


# ----------------------------------------------------------------------- Lanczos
@dataclass(frozen=True, eq=False)
class HessianEigenvalue:
    """The Hessian's largest eigenvalue by Lanczos.

    Attributes
    ----------
    value : float, the largest Ritz value (a lower bound on the largest eigenvalue, exact when
        ``steps`` reaches the number of parameters).
    vector : ndarray (n_params,), its unit Ritz vector.
    residual : float, ``||H y - value y||`` for that vector (in exact arithmetic; an eigenvalue of
        H lies within ``residual`` of ``value``).
    steps : int, Lanczos steps taken (fewer than asked when an invariant subspace was found).
    """

    value: float
    vector: np.ndarray
    residual: float
    steps: int


def _lanczos_max(op, steps, rng):
    P = op.shape[0]
    k = min(steps, P)
    Q = np.zeros((k, P))
    alphas, betas = [], []
    q = rng.standard_normal(P)
    q /= np.linalg.norm(q)
    b = 0.0
    for j in range(k):
        Q[j] = q
        w = op.matvec(q)
        if not np.isfinite(w).all():
            raise FloatingPointError("the Hessian-vector product overflowed (Inf or NaN) at "
                                     "these parameters")
        a = float(q @ w)
        alphas.append(a)
        # full re-orthogonalisation (twice is enough, Parlett): keeps the Ritz values honest
        for _ in range(2):
            w -= Q[:j + 1].T @ (Q[:j + 1] @ w)
        b = float(np.linalg.norm(w))
        if j == k - 1 or b <= 1e-12 * max(abs(x) for x in alphas + [1e-300]):
            break
        betas.append(b)
        q = w / b
    n = len(alphas)
    T = np.diag(alphas) + np.diag(betas[:n - 1], 1) + np.diag(betas[:n - 1], -1)
    evals, evecs = np.linalg.eigh(T)
    s = evecs[:, -1]
    y = Q[:n].T @ s
    return HessianEigenvalue(value=float(evals[-1]), vector=y / np.linalg.norm(y),
                             residual=float(abs(b * s[-1])), steps=n)


def hessian_max_eigenvalue(net, X, Y, steps=20, seed=0):
    """The largest eigenvalue of the mini-batch cost's Hessian, by Lanczos.

    ``steps`` Hessian-vector products build an orthonormal Krylov basis (re-orthogonalised
    fully, so rounding does not produce spurious copies); the largest eigenvalue of the
    projected tridiagonal matrix converges to H's largest from below, much faster than power
    iteration (:func:`~vgfast.analysis.top_eigenvalue`) when the top of the spectrum is
    crowded. Near a minimum ``2 / value`` is the largest stable learning rate of gradient
    descent.

    Parameters
    ----------
    net, X, Y : as :func:`hessian_trace`
    steps : int >= 1, Lanczos steps (capped at the number of parameters); seed : start vector.

    Returns
    -------
    HessianEigenvalue
    """
    return _on_hessian(_lanczos_max, net, X, Y, steps, "steps", seed)


# ----------------------------------------------------------------------- alpha
@dataclass(frozen=True, eq=False)
class StepAlpha:
    """Cockpit's normalised step length of one step and the observations it is fitted to.

    Attributes
    ----------
    alpha : float, ``2 t / xbar - 1`` with ``xbar = -mu_1 / mu_2`` the far point of the fitted
        parabola ``mu_0 + mu_1 x + mu_2 x^2`` at the start's height; -1 when the fit is concave
        (``mu_2 < 0``) or the step has length 0 (Cockpit's conventions); NaN for one row.
    t : float, ``||step||``.
    f : (2,) mean cost at the start and the end; df : (2,) its slope along the step there.
    var_f, var_df : (2,) the sample variances (ddof 1) over the rows of the per-example costs
        and slopes: the noise the fit weights by (values of 0 replaced by 1e-10, as Cockpit).
    """

    alpha: float
    t: float
    f: np.ndarray
    df: np.ndarray
    var_f: np.ndarray
    var_df: np.ndarray


def _point(net, params, X, Y, dirs):
    """Per-example cost and slope along the unit direction (dW, db) at params, on the rows."""
    old = net.params.copy()
    net.params[...] = params
    try:
        zs, acts, deltas = net.trace(X, Y)
    finally:
        net.params[...] = old
    lab, T = net._Y(Y, X.shape[0])
    T = _ref.targets(lab, net.sizes[-1], np.float64) if T is None else np.asarray(T, np.float64)
    cost = _ref.cost_per_example(net, np.asarray(zs[-1], np.float64),
                                 np.asarray(acts[-1], np.float64), T)
    dW, db = dirs
    slope = np.zeros(X.shape[0])
    for l in range(net.L):
        D = np.asarray(deltas[l], np.float64)
        A = np.asarray(acts[l], np.float64)
        slope += np.einsum("ij,ij->i", D, A @ dW[l].T) + D @ db[l]
    return cost, slope


def _alpha_fit(t, f, df, var_f, var_df):
    """Cockpit's noise-weighted least-squares parabola through (0, f0, df0), (t, f1, df1)."""
    if not (np.isfinite(var_f).all() and np.isfinite(var_df).all()):
        return np.nan
    if t == 0:
        return -1.0
    var = np.concatenate([var_f, var_df])
    var = np.where(var == 0, 1e-10, var)
    Phi = np.array([[1, 0, 0], [1, t, t * t], [0, 1, 0], [0, 1, 2 * t]], np.float64)
    Wt = Phi.T / var  # Phi^T Lambda^-1
    try:
        mu = np.linalg.solve(Wt @ Phi, Wt @ np.concatenate([f, df]))
    except np.linalg.LinAlgError:
        return np.nan
    if mu[2] < 0:
        return -1.0
    return float(2 * t / (-mu[1] / mu[2]) - 1)


def step_alpha(net, X, Y, step):
    """Cockpit's normalised step length ``alpha`` of the step ``step`` from ``net.params``.

    At the start ``theta`` (``net.params``) and the end ``theta + step`` the per-example costs
    ``c_i`` and their slopes along the step ``g_i . step / ||step||`` are measured on the same
    rows; a parabola in the distance ``x`` along the step is fitted to the two mean costs and two
    mean slopes by least squares weighted by the inverse sample variances (Cockpit's
    ``Alpha``, Schneider et al. 2021, sec. 3), and ``alpha = 2 ||step|| / xbar - 1`` places the
    end on the parabola scaled so that its minimum is 0 and the start's height on the far side
    is +1. Unlike Cockpit, which measures the end point on the next step's mini-batch, both ends
    use the same rows: alpha then reflects the step alone, not batch-to-batch noise, for one
    extra forward and backward pass. The network's parameters are left as they were.

    Parameters
    ----------
    net : vgfast.Network (no batch normalisation); X, Y : the rows
    step : (n_params,) the parameter change, in the flat layout.

    Returns
    -------
    StepAlpha
    """
    _network(net)
    step = np.asarray(step)
    if step.dtype.kind not in "fiu" or step.shape != (net.n_params,):
        raise ValueError(f"step must be a real vector of shape ({net.n_params},) (the flat "
                         f"parameter layout); got dtype {step.dtype}, shape {step.shape}")
    if not np.isfinite(step).all():
        raise ValueError("step contains NaN or Inf")
    start = net.params.copy()
    return _step_alpha(net, X, Y, start, start + step.astype(net.dtype))


def _step_alpha(net, X, Y, start, end):
    d = np.asarray(end, np.float64) - np.asarray(start, np.float64)
    t = float(np.linalg.norm(d))
    dW, db = net._split(d / t if t > 0 else d)
    c0, s0 = _point(net, start, X, Y, (dW, db))
    c1, s1 = _point(net, end, X, Y, (dW, db))
    f = np.array([c0.mean(), c1.mean()])
    df = np.array([s0.mean(), s1.mean()])
    m = c0.size
    var_f = np.array([c0.var(ddof=1), c1.var(ddof=1)]) if m > 1 else np.full(2, np.nan)
    var_df = np.array([s0.var(ddof=1), s1.var(ddof=1)]) if m > 1 else np.full(2, np.nan)
    return StepAlpha(alpha=_alpha_fit(t, f, df, var_f, var_df), t=t, f=f, df=df, var_f=var_f,
                     var_df=var_df)


# ----------------------------------------------------------------------- histograms
def _bin_index(g):
    with np.errstate(divide="ignore"):
        x = np.log10(np.abs(g))
    k = np.floor(np.clip((x - HIST_EDGES[0]) * 2.0, -1.0, HIST_EDGES.size - 1.0))
    return k.astype(np.int64) + 1


def gradient_histogram(net, X, Y):
    """Per layer, the fractions of individual gradient elements in each bin of ``log10 |g|``.

    The elements are those of every example's own gradient (no regularisation): for layer ``l``
    the ``m n_l n_{l-1}`` weight entries ``delta_i^l[j] a_i^{l-1}[k]`` and the ``m n_l`` bias
    entries ``delta_i^l[j]`` (Cockpit's ``GradHist1d`` histograms the same elements on a linear
    scale; a log scale shows the layers' orders of magnitude apart). Bins: :data:`HIST_EDGES`
    (``HIST_BINS`` = 50, bin 0 below 1e-20 including exact zeros, bin 49 from 1e4 up).

    Returns
    -------
    ndarray (L, 50), float64: each row sums to 1.
    """
    _network(net)
    _, acts, deltas = net.trace(X, Y)
    out = np.zeros((net.L, HIST_BINS))
    for l in range(net.L):
        counts = _layer_counts(np.asarray(deltas[l], np.float64),
                               np.asarray(acts[l], np.float64))
        out[l] = counts / counts.sum()
    return out


def _layer_counts(D, A):
    """Bin counts of the elements delta_ij (biases) and delta_ij a_ik (weights) of every row i.

    No weight element is formed: log10 |delta_ij a_ik| = log10 |delta_ij| + log10 |a_ik|, so with
    row i's log10 |a| sorted, the number of its elements below edge e is a binary search for
    e - log10 |delta_ij| (zeros are -inf logs and land in bin 0, as their products do). That is
    m n_out 49 searches instead of m n_out n_in logarithms.
    """
    counts = np.bincount(_bin_index(D).ravel(), minlength=HIST_BINS).astype(np.int64)
    with np.errstate(divide="ignore"):
        LD = np.log10(np.abs(D))
        LA = np.sort(np.log10(np.abs(A)), axis=1)
    m, nout = D.shape
    nin = A.shape[1]
    below = np.empty((m, nout, HIST_EDGES.size), np.int64)  # elements below each edge
    with np.errstate(invalid="ignore"):
        for i in range(m):
            below[i] = np.searchsorted(LA[i], HIST_EDGES[None, :] - LD[i][:, None])
    tot = below.sum(axis=(0, 1))
    counts[0] += tot[0]
    counts[1:-1] += np.diff(tot)
    counts[-1] += m * nout * nin - tot[-1]
    return counts
