"""Jacobians and products of layer Jacobians: where a gradient is multiplied on its way back.

Nielsen ch. 5, "Unstable gradients in more complex networks", eq. (124): for a network of
sigmoid layers

    delta^l = Sigma'(z^l) (W^{l+1})^T Sigma'(z^{l+1}) (W^{l+2})^T ... Sigma'(z^L) grad_a C,

with ``Sigma'(z)`` the diagonal matrix of ``sigma'(z_j)``. Each pair ``Sigma'(z^j) (W^{j+1})^T``
is (the transpose of) the Jacobian ``dz^{j+1}/dz^j = W^{j+1} Sigma'(z^j)`` of one layer; the
gradient of an early layer is a product of many of them, and it vanishes or explodes as the
product's singular values do. Goodfellow et al. (sec. 8.2.5, "Long-term dependencies") make the
same point for one matrix applied ``t`` times: ``W^t = Q diag(lambda)^t Q^T`` scales each
eigen-direction by ``lambda^t`` (:func:`power_illustration`).

Everything is vectorised over examples with numpy; the activations and pre-activations come
from one :meth:`vgfast.Network.trace` call and the derivatives from
:func:`vgfast._reference.derivative` (computed from the stored activations, as the engine does).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _reference as _ref
from .speed import _check_net, _check_plain

__all__ = ["BackpropProduct", "PowerIllustration", "input_output_jacobian",
           "jacobian_singular_values", "backprop_product", "power_illustration",
           "plot_power_illustration"]


def _fprimes(net, zs, acts):
    """Per-example diagonal of Sigma'(z^l) for the hidden layers, float64, (n, n_l) each."""
    info = _ref.layer_activations(net)
    return [_ref.derivative(np.asarray(zs[l], np.float64), np.asarray(acts[l + 1], np.float64),
                            *info[l]) for l in range(net.L - 1)]


def _effective_weights(net):
    """dz^l / da^{l-1} per layer: W^l, or diag(gamma / sqrt(running_var + eps)) W^l for a
    batch-normalised layer evaluated with its running statistics (inference mode)."""
    Ws = [np.asarray(w, np.float64) for w in net.weights]
    bn = list(getattr(net, "batch_norm", ())) + [False]
    if any(bn):
        gam, var = net.bn_gamma, net.bn_running_var
        for l in range(net.L - 1):
            if bn[l]:
                s = np.asarray(gam[l], np.float64) / np.sqrt(np.asarray(var[l], np.float64) +
                                                            net.bn_eps)
                Ws[l] = s[:, None] * Ws[l]
    return Ws


def _output_jacobian(net, z, a):
    """da^L/dz^L per example, (n, n_out, n_out): diagonal for sigmoid/linear, softmax's
    ``diag(a) - a a^T`` otherwise."""
    a = np.asarray(a, np.float64)
    n, k = a.shape
    if net.output == "softmax":
        return a[:, :, None] * np.eye(k) - a[:, :, None] * a[:, None, :]
    d = _ref.derivative(np.asarray(z, np.float64), a, net.output)
    return d[:, :, None] * np.eye(k)


def input_output_jacobian(net, X, mode="forward"):
    """The Jacobian ``da^L/dx`` of the network's output with respect to its input, per example.

    ``J(x) = Sigma'(z^L) W^L Sigma'(z^{L-1}) W^{L-1} ... Sigma'(z^1) W^1`` (the chain rule; the
    transpose of the product in Nielsen's eq. 124 with ``W^1`` appended). Its singular values
    (:func:`jacobian_singular_values`) tell how much the network stretches or shrinks input
    perturbations -- and, transposed, output gradients on their way back.

    Parameters
    ----------
    net : vgfast.Network
    X : array (n, n_in)
    mode : ``"forward"`` or ``"reverse"``
        ``forward`` multiplies from the input side, ``J^l = Sigma'(z^l) W^l J^{l-1}``, carrying
        (n, n_l, n_in) arrays; ``reverse`` multiplies from the output side, carrying
        (n, n_out, n_l). Same result to rounding; reverse is cheaper when ``n_out < n_in``
        (e.g. MNIST: 10 outputs, 784 inputs).

    Batch-normalised layers are evaluated with their running statistics (as ``feedforward``
    does): they multiply the rows of ``W^l`` by ``gamma / sqrt(running_var + eps)``.

    Returns
    -------
    ndarray (n, n_out, n_in), float64
        ``J[i, j, k] = d a^L_j / d x_k`` at row ``X[i]``.
    """
    _check_net(net)
    if mode not in ("forward", "reverse"):
        raise ValueError(f"mode must be 'forward' or 'reverse'; got {mode!r}")
    zs, acts, _ = net.trace(X)
    L = net.L
    fps = _fprimes(net, zs, acts)
    Ws = _effective_weights(net)
    Jout = _output_jacobian(net, zs[-1], acts[-1])
    n = acts[0].shape[0]
    if mode == "forward":
        J = np.broadcast_to(Ws[0], (n,) + Ws[0].shape)
        for l in range(1, L):
            J = fps[l - 1][:, :, None] * J  # Sigma'(z^l) W^l ... (row scaling)
            J = np.matmul(Ws[l], J)
        return np.matmul(Jout, J)
    G = Jout
    for l in range(L - 1, 0, -1):
        G = np.matmul(G, Ws[l]) * fps[l - 1][:, None, :]
    return np.matmul(G, Ws[0])


def jacobian_singular_values(net, X, mode="forward"):
    """Singular values of the input-output Jacobian of every row, largest first.

    Returns
    -------
    ndarray (n, min(n_out, n_in))
        ``s[i]`` are the singular values of ``da^L/dx`` at ``X[i]``
        (:func:`input_output_jacobian`): the gains of the network along its principal
        directions. Values far below 1 mean vanishing, far above 1 exploding sensitivity
        (dynamical isometry -- all near 1 -- is the ideal of Saxe et al. 2014).
    """
    return np.linalg.svd(input_output_jacobian(net, X, mode), compute_uv=False)


@dataclass(frozen=True, eq=False)
class BackpropProduct:
    """Nielsen's eq. (124) for one example, factor by factor.

    With ``G_j = Sigma'(z^j) (W^{j+1})^T`` for the hidden layers ``j = 1..L-1`` and
    ``G_L = Sigma'(z^L)^T`` (``da^L/dz^L``; full for softmax), eq. (124) is
    ``delta^1 = G_1 G_2 ... G_{L-1} G_L grad_a C`` and every partial product from the right is
    a ``delta^j``.

    Attributes
    ----------
    factors : tuple of ndarray
        ``G_1, ..., G_L``; ``G_j`` is (n_j, n_{j+1}), ``G_L`` is (n_L, n_L). ``G_j^T`` is the
        layer Jacobian ``dz^{j+1}/dz^j = W^{j+1} Sigma'(z^j)``.
    grad_a : ndarray (n_L,)
        ``grad_a C``, dC/da^L of this example: ``(a - y) / (a (1 - a))`` (cross-entropy),
        ``-y / a`` (log-likelihood), ``a - y`` (quadratic). Infinite when the output saturates
        to exactly 0 or 1; the chain then starts from the engine's stable ``delta^L``.
    deltas : tuple of ndarray
        ``delta^j = G_j ... G_L grad_a C`` for ``j = 1..L`` (index ``j - 1``).
    delta1 : ndarray (n_1,)
        ``deltas[0]``, the gradient of the first layer's biases (eq. 124).
    backprop : ndarray (n_1,)
        ``dC/db^1`` from the compiled engine's backward pass, for comparison.
    product : ndarray (n_1, n_L)
        ``G_1 ... G_{L-1} = (dz^L/dz^1)^T``, the product of the layer Jacobians, which maps
        ``delta^L`` to ``delta^1``.
    singular_values : ndarray
        Of ``product``, largest first: how much the product can amplify (> 1) or must shrink
        (< 1) the output error on its way to layer 1.
    factor_norms : ndarray (L,)
        Spectral norm ``||G_j||_2`` of every factor (at most ``||W^{j+1}||_2 / 4`` for
        sigmoid); their product bounds ``singular_values[0]``.
    """

    factors: tuple
    grad_a: np.ndarray
    deltas: tuple
    delta1: np.ndarray
    backprop: np.ndarray
    product: np.ndarray
    singular_values: np.ndarray
    factor_norms: np.ndarray


def _grad_a(net, a, t):
    with np.errstate(divide="ignore", invalid="ignore"):
        if net.cost_name == "cross_entropy":
            return (a - t) / (a * (1 - a))
        if net.cost_name == "log_likelihood":
            return -t / a
    return a - t


def backprop_product(net, x, y):
    """Eq. (124) of Nielsen ch. 5 evaluated factor by factor for one example.

    Parameters
    ----------
    net : vgfast.Network
    x : array (n_in,)
        One input.
    y : int label or array (n_out,) target

    Returns
    -------
    BackpropProduct
        The factors ``Sigma'(z^j) (W^{j+1})^T``, ``grad_a C``, the deltas of every layer, the
        resulting ``delta^1`` (equal to backpropagation's ``dC/db^1`` to rounding), the product
        of the layer Jacobians and its singular values.
    """
    _check_net(net)
    _check_plain(net, "backprop_product (eq. 124)")
    x = np.asarray(x)
    if x.ndim == 2 and x.shape[0] == 1:
        x = x[0]
    if x.ndim != 1:
        raise ValueError(f"x must be one input of shape ({net.sizes[0]},); got {x.shape}")
    y = np.asarray(y)
    if y.ndim == 0 and y.dtype.kind == "f" and net.sizes[-1] == 1:
        Y = y.reshape(1, 1)
    elif y.ndim == 0:
        Y = y.reshape(1)
    elif y.ndim == 1 and y.shape[0] == net.sizes[-1] and y.dtype.kind == "f":
        Y = y.reshape(1, -1)
    else:
        raise ValueError(f"y must be an integer label or a target vector ({net.sizes[-1]},); "
                         f"got shape {y.shape}")
    zs, acts, eng_deltas = net.trace(x.reshape(1, -1), Y)
    lab, T = net._Y(Y, 1)
    if T is None:
        T = _ref.targets(lab, net.sizes[-1], np.float64)
    t = np.asarray(T, np.float64)[0]
    L = net.L
    fps = [f[0] for f in _fprimes(net, zs, acts)]
    Ws = [np.asarray(w, np.float64) for w in net.weights]
    a_out = np.asarray(acts[-1], np.float64)[0]
    G_L = _output_jacobian(net, zs[-1], acts[-1])[0].T
    factors = [fps[j][:, None] * Ws[j + 1].T for j in range(L - 1)] + [G_L]
    grad_a = _grad_a(net, a_out, t)
    dL = G_L @ grad_a if np.all(np.isfinite(grad_a)) else np.asarray(eng_deltas[-1][0],
                                                                      np.float64)
    deltas = [None] * L
    deltas[L - 1] = dL
    product = np.eye(net.sizes[-1])
    for j in range(L - 2, -1, -1):
        deltas[j] = factors[j] @ deltas[j + 1]
        product = factors[j] @ product
    return BackpropProduct(
        factors=tuple(factors), grad_a=grad_a, deltas=tuple(deltas), delta1=deltas[0],
        backprop=np.asarray(eng_deltas[0][0], np.float64), product=product,
        singular_values=np.linalg.svd(product, compute_uv=False),
        factor_norms=np.array([np.linalg.norm(F, 2) for F in factors]))


@dataclass(frozen=True, eq=False)
class PowerIllustration:
    """``W^t v`` for a symmetric ``W = Q diag(lambda) Q^T`` (Goodfellow et al., sec. 8.2.5).

    Attributes
    ----------
    eigenvalues : ndarray (k,)
    Q : ndarray (k, k), orthogonal; W : ndarray (k, k)
    v : ndarray (k,), the starting vector
    steps : ndarray (t + 1,), 0..t
    components : ndarray (t + 1, k)
        ``Q^T W^s v``: the components of ``W^s v`` along the eigenvectors, computed by
        multiplying by ``W`` ``s`` times.
    predicted : ndarray (t + 1, k)
        ``lambda^s (Q^T v)``: the closed form ``W^s = Q diag(lambda)^s Q^T``.
    norms : ndarray (t + 1,)
        ``||W^s v||``, dominated by the largest ``|lambda|`` for large ``s``.
    scale : ndarray (k,)
        ``|lambda|^t``: how much each component has been scaled after ``t`` steps -- towards 0
        for ``|lambda| < 1`` (vanishing), without bound for ``|lambda| > 1`` (exploding).
    """

    eigenvalues: np.ndarray
    Q: np.ndarray
    W: np.ndarray
    v: np.ndarray
    steps: np.ndarray
    components: np.ndarray
    predicted: np.ndarray
    norms: np.ndarray
    scale: np.ndarray


def power_illustration(eigenvalues, t, v=None, seed=0):
    """Apply ``W = Q diag(lambda) Q^T`` to ``v`` ``t`` times: eigenvalues to the power ``t``.

    Goodfellow, Bengio & Courville, *Deep Learning*, sec. 8.2.5: repeated multiplication by the
    same matrix gives ``W^t = Q diag(lambda)^t Q^T``, so the component of ``v`` along an
    eigenvector with ``|lambda| < 1`` vanishes and one with ``|lambda| > 1`` explodes -- the
    reason very deep (and recurrent) networks have unstable gradients.

    Parameters
    ----------
    eigenvalues : sequence of float
    t : int >= 0
    v : array (k,), optional (default: a random unit vector)
    seed : int, seeds Q (Haar-random orthogonal) and the default v

    Returns
    -------
    PowerIllustration
    """
    lam = np.asarray(eigenvalues, np.float64)
    if lam.ndim != 1 or lam.size == 0 or not np.isfinite(lam).all():
        raise ValueError("eigenvalues must be a non-empty 1-D array of finite numbers")
    if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or t < 0:
        raise ValueError(f"t must be a non-negative integer; got {t!r}")
    k = lam.size
    rng = np.random.default_rng(seed)
    q, r = np.linalg.qr(rng.standard_normal((k, k)))
    Q = q * np.sign(np.diag(r))
    W = (Q * lam) @ Q.T
    if v is None:
        v = rng.standard_normal(k)
        v /= np.linalg.norm(v)
    v = np.asarray(v, np.float64)
    if v.shape != (k,):
        raise ValueError(f"v must have shape ({k},); got {v.shape}")
    xs = np.empty((t + 1, k))
    xs[0] = v
    for s in range(t):
        xs[s + 1] = W @ xs[s]
    steps = np.arange(t + 1)
    c0 = Q.T @ v
    with np.errstate(over="ignore"):
        predicted = lam[None, :] ** steps[:, None] * c0
        scale = np.abs(lam) ** t
    return PowerIllustration(eigenvalues=lam, Q=Q, W=W, v=v, steps=steps, components=xs @ Q,
                             predicted=predicted, norms=np.linalg.norm(xs, axis=1), scale=scale)


def plot_power_illustration(result, ax=None, title=r"Components of $W^t v$"):
    """``|component|`` of ``W^s v`` along each eigenvector against ``s`` (log scale).

    Solid: by repeated multiplication; dashed: ``|lambda|^s |Q^T v|``.

    Parameters
    ----------
    result : PowerIllustration
    ax : matplotlib Axes, optional
    title : str

    Returns
    -------
    matplotlib.figure.Figure
    """
    from vgfast._plot import plt_axes

    fig, ax = plt_axes(ax)
    for i, lam in enumerate(result.eigenvalues):
        line, = ax.plot(result.steps, np.abs(result.components[:, i]),
                        label=rf"$\lambda = {lam:g}$")
        ax.plot(result.steps, np.abs(result.predicted[:, i]), ls="--", color=line.get_color(),
                lw=0.8)
    ax.set_yscale("log")
    ax.set_xlabel("t")
    ax.set_ylabel("|component|")
    ax.set_title(title)
    ax.legend(fontsize="small")
    return fig
