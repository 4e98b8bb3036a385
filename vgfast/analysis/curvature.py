"""Curvature of the cost: exact Hessian-vector products, the Hessian, its top eigenvalue,
the ill-conditioning monitor and damped Newton's method.

The objective is the network's training objective on the rows ``X``::

    J(theta) = (1/m) sum_x C_x(theta) + (lmbda / 2n) sum_l ||W^l||^2,

(``m`` rows; ``n`` defaults to ``m``, network2's ``total_cost`` convention; biases are not
penalised), so ``H = d^2 J / d theta^2`` and ``H v`` adds ``(lmbda / n) v_W``.

Hessian-vector products use Pearlmutter's R-operator (Pearlmutter 1994, "Fast exact
multiplication by the Hessian"): ``R{f} = d/dr f(theta + r v)|_{r=0}`` applied to every line of
the forward and backward pass. With ``delta^l = dC/dz^l`` per example (the book's delta, row
layout)::

    forward   R{z^l} = R{a^{l-1}} W^T + a^{l-1} V_W^T + V_b,      R{a^0} = 0
              R{a^l} = f'(z^l) * R{z^l}
    output    R{delta^L} from delta^L = a - y  (sigmoid + cross-entropy, softmax + log-lik.)
                              delta^L = (a - y) f'(z^L)        (quadratic; softmax's J^T e)
    backward  R{delta^l} = (R{delta^{l+1}} W + delta^{l+1} V_W) * f'(z^l)
                           + (delta^{l+1} W) * f''(z^l) * R{z^l}
    gradient  R{dJ/dW^l} = (1/m) (R{delta^l}^T a^{l-1} + delta^l^T R{a^{l-1}}) + (lmbda/n) V_W
              R{dJ/db^l} = (1/m) sum_x R{delta^l}

It costs about two gradient evaluations, is exact (no finite-difference step), and is
vectorised over the examples in float64. The forward/backward quantities ``z, a, delta`` come
from one :meth:`vgfast.Network.trace` call, reused for every product at the same parameters
(:class:`HessianOperator`).

Goodfellow et al. (ch. 8) use the curvature for: ill-conditioning (sec. 8.2.1, eq. 8.10: a
gradient step ``-eps g`` changes the cost by ``-eps g^T g + eps^2/2 g^T H g``, so learning
stalls or diverges when ``g^T H g`` outgrows ``g^T g``; :func:`curvature_along`), and Newton's
method with Levenberg-Marquardt damping ``(H + alpha I)^{-1}`` (sec. 8.6.1; :func:`newton`).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import numpy as np

from .. import _reference as _ref
from .speed import _check_net, _check_plain, _rows

__all__ = ["HessianOperator", "TopEigenvalue", "CurvatureAlong", "NewtonResult", "hvp",
           "hessian", "top_eigenvalue", "curvature_along", "newton", "SUPPORTED_HIDDEN",
           "SUPPORTED_OUTPUT"]

#: hidden activations with an exact R-operator (f'' is 0 almost everywhere for the
#: piecewise-linear ones; at the kinks the Hessian does not exist)
SUPPORTED_HIDDEN = ("sigmoid", "tanh", "relu", "leaky_relu", "linear", "softplus", "elu", "abs")
#: (output, cost) pairs with an exact R-operator
SUPPORTED_OUTPUT = (("sigmoid", "cross_entropy"), ("softmax", "log_likelihood"),
                    ("sigmoid", "quadratic"), ("linear", "quadratic"), ("softmax", "quadratic"))


def _sigmoid_slope(z):
    """sigma'(z) = e^{-|z|} / (1 + e^{-|z|})^2 from z: no cancellation for large |z| (a(1-a)
    from the stored activation is exactly 0 once a rounds to 1, z >= 37 in float64)."""
    e = np.exp(-np.abs(z))
    return e / ((1 + e) * (1 + e))


def _second_derivative(z, a, name, alpha):
    """f''(z) from z and the stored activation a."""
    if name == "sigmoid":
        # sigma'' = sigma' (1 - 2 sigma) = -sigma'(z) tanh(z / 2), both factors from z
        return -_sigmoid_slope(z) * np.tanh(z / 2)
    if name == "tanh":
        return -2.0 * a * (1 - a * a)
    if name in ("relu", "leaky_relu", "linear", "abs"):
        return np.zeros_like(z)
    if name == "softplus":
        s = _ref.sigmoid(z)
        return s * (1 - s)
    if name == "elu":
        return np.where(z > 0, 0.0, a + alpha)
    raise NotImplementedError(f"no second derivative for activation {name!r}")


def _check_supported(net):
    _check_plain(net, "the Hessian (R-operator)")
    bad = [a for a in net.activations if a not in SUPPORTED_HIDDEN]
    if bad:
        raise NotImplementedError(
            f"Hessian-vector products are not implemented for hidden activation(s) "
            f"{sorted(set(bad))}; supported: {list(SUPPORTED_HIDDEN)}")
    if (net.output, net.cost_name) not in SUPPORTED_OUTPUT:
        raise NotImplementedError(
            f"Hessian-vector products are not implemented for output={net.output!r} with "
            f"cost={net.cost_name!r}; supported (output, cost) pairs: {list(SUPPORTED_OUTPUT)}")


def _check_lmbda_n(lmbda, n, m):
    from .._validate import check_number

    lmbda = check_number(lmbda, "lmbda", low=0)
    n = m if n is None else check_number(n, "n", low=1, integer=True)
    return lmbda, n


class HessianOperator:
    """The Hessian of the objective on fixed rows at the network's current parameters.

    One :meth:`vgfast.Network.trace` call at construction; every :meth:`matvec` after that is
    the R-operator pass in numpy (see the module docstring). The parameters are copied at
    construction: later changes to ``net.params`` are not seen.

    Parameters
    ----------
    net : vgfast.Network
    X : array (m, n_in); Y : labels (m,) or targets (m, n_out)
    lmbda : float, L2 strength; n : int, the n of ``lmbda / 2n`` (default m)

    Attributes
    ----------
    shape : (n_params, n_params)
    grad : ndarray (n_params,), ``dJ/dtheta`` (float64)
    cost : float, ``J`` (mean cost + L2 term)
    """

    def __init__(self, net, X, Y, lmbda=0.0, n=None):
        _check_net(net)
        _check_supported(net)
        X = _rows(net, X)
        m = X.shape[0]
        lab, T = net._Y(Y, m)
        if T is None:
            T = _ref.targets(lab, net.sizes[-1], np.float64)
        self.lmbda, self.n = _check_lmbda_n(lmbda, n, m)
        self.net = net
        self.m = m
        self.T = np.asarray(T, np.float64)
        zs, acts, deltas = net.trace(X, Y)
        f64 = lambda xs: [np.asarray(x, np.float64) for x in xs]  # noqa: E731
        self.zs, self.acts, self.deltas = f64(zs), f64(acts), f64(deltas)
        self.params = np.asarray(net.params, np.float64).copy()
        self.W, self.b = net._split(self.params)
        info = _ref.layer_activations(net)
        L = net.L
        self.L = L
        self.fp = [_ref.derivative(self.zs[l], self.acts[l + 1], *info[l]) for l in range(L - 1)]
        self.fpp = [_second_derivative(self.zs[l], self.acts[l + 1], *info[l])
                    for l in range(L - 1)]
        # delta^{l+1} W^{l+1}: the back-propagated error before the f'(z^l) factor
        self.back = [self.deltas[l + 1] @ self.W[l + 1] for l in range(L - 1)]
        g = np.zeros_like(self.params)
        gw, gb = net._split(g)
        for l in range(L):
            gw[l][...] = self.deltas[l].T @ self.acts[l] / m + (self.lmbda / self.n) * self.W[l]
            gb[l][...] = self.deltas[l].mean(axis=0)
        self.grad = g
        # the engine's cost, so that newton() compares like with like
        self.cost = float(net.cost(X, Y, lmbda=self.lmbda, n=self.n))
        self.shape = (self.params.size, self.params.size)

    # ----------------------------------------------------------------- R-operator
    def _output_R(self, Rz):
        """R{delta^L} from R{z^L}, per example."""
        net, a, T = self.net, self.acts[-1], self.T
        if net.output == "softmax":
            Ra = a * (Rz - np.sum(a * Rz, axis=1, keepdims=True))  # (diag(a) - a a^T) Rz
            if net.cost_name == "log_likelihood":
                return T.sum(axis=1, keepdims=True) * Ra  # delta = (sum y) a - y
            e = a - T  # quadratic: delta = a * (e - a.e)
            s = np.sum(a * e, axis=1, keepdims=True)
            return Ra * (e - s) + a * (Ra - np.sum(Ra * e + a * Ra, axis=1, keepdims=True))
        if net.output == "linear":  # quadratic, delta = a - y
            return Rz.copy()
        d1 = _sigmoid_slope(self.zs[-1])  # sigma'(z^L), from z
        if net.cost_name == "cross_entropy":  # delta = a - y
            return d1 * Rz
        d2 = -d1 * np.tanh(self.zs[-1] / 2)  # quadratic + sigmoid, delta = (a - y) sigma'(z)
        return (d1 * d1 + (a - T) * d2) * Rz

    def matvec(self, v):
        """``H v`` (float64, the parameters' flat layout) by Pearlmutter's R-operator."""
        v = np.asarray(v, np.float64)
        if v.shape != (self.params.size,):
            raise ValueError(f"v must have shape ({self.params.size},) (the flat parameter "
                             f"layout); got {v.shape}")
        net, L, m = self.net, self.L, self.m
        VW, Vb = net._split(v)
        Rzs, Ras = [], [None]
        Ra = None
        for l in range(L):
            Rz = self.acts[l] @ VW[l].T + Vb[l]
            if Ra is not None:
                Rz += Ra @ self.W[l].T
            Rzs.append(Rz)
            if l < L - 1:
                Ra = self.fp[l] * Rz
                Ras.append(Ra)
        Rd = self._output_R(Rzs[-1])
        out = np.zeros_like(self.params)
        oW, ob = net._split(out)
        for l in range(L - 1, -1, -1):
            gw = Rd.T @ self.acts[l]
            if l > 0:
                gw += self.deltas[l].T @ Ras[l]
            oW[l][...] = gw / m + (self.lmbda / self.n) * VW[l]
            ob[l][...] = Rd.mean(axis=0)
            if l > 0:
                Rd = (Rd @ self.W[l] + self.deltas[l] @ VW[l]) * self.fp[l - 1] + \
                    self.back[l - 1] * self.fpp[l - 1] * Rzs[l - 1]
        return out

    __matmul__ = matvec

    def dense(self):
        """The dense Hessian, one :meth:`matvec` per unit vector (column)."""
        P = self.params.size
        H = np.empty((P, P))
        e = np.zeros(P)
        for i in range(P):
            e[i] = 1.0
            H[:, i] = self.matvec(e)
            e[i] = 0.0
        return H

    def as_linear_operator(self, shift=0.0):
        """``H + shift I`` as a :class:`scipy.sparse.linalg.LinearOperator`."""
        from scipy.sparse.linalg import LinearOperator

        if shift:
            return LinearOperator(self.shape, matvec=lambda v: self.matvec(v.ravel()) +
                                  shift * v.ravel(), dtype=np.float64)
        return LinearOperator(self.shape, matvec=lambda v: self.matvec(v.ravel()),
                              dtype=np.float64)


def hvp(net, X, Y, v, lmbda=0.0, n=None):
    """Exact Hessian-vector product ``H v`` of the objective on the rows ``X``.

    ``H = d^2/dtheta^2 [ (1/m) sum_x C_x + (lmbda/2n) sum ||W||^2 ]`` at ``net.params``, by
    Pearlmutter's R-operator (exact to rounding; about the cost of two gradients).

    Parameters
    ----------
    net : vgfast.Network
        Hidden activations in :data:`SUPPORTED_HIDDEN`, (output, cost) in
        :data:`SUPPORTED_OUTPUT` (every pair the Network accepts).
    X : array (m, n_in); Y : labels (m,) or targets (m, n_out)
    v : array (n_params,), a direction in the flat parameter layout.
    lmbda : float, L2 strength (adds ``(lmbda / n) v_W``); n : int, default m

    Returns
    -------
    ndarray (n_params,), float64

    Raises
    ------
    NotImplementedError
        For an activation or (output, cost) pair without an R-operator, naming it.

    Notes
    -----
    For many products at the same parameters build a :class:`HessianOperator` once.
    """
    return HessianOperator(net, X, Y, lmbda, n).matvec(v)


def hessian(net, X, Y, lmbda=0.0, n=None, max_params=5000):
    """The dense Hessian ``d^2 J / d theta^2`` (n_params, n_params) of the objective.

    Column ``i`` is ``H e_i`` from :func:`hvp`; symmetric to rounding (not symmetrised here).
    ``n_params`` Hessian-vector products: meant for small networks (refuses more than
    ``max_params`` parameters).
    """
    _check_net(net)
    if net.n_params > max_params:
        raise ValueError(f"the network has {net.n_params} parameters; a dense Hessian needs "
                         f"{net.n_params}**2 entries. Raise max_params (now {max_params}) to "
                         f"force it, or use hvp / top_eigenvalue")
    return HessianOperator(net, X, Y, lmbda, n).dense()


@dataclass(frozen=True, eq=False)
class TopEigenvalue:
    """Result of power iteration on the Hessian.

    Attributes
    ----------
    value : float
        The eigenvalue of largest magnitude (the Rayleigh quotient ``v^T H v``); positive at a
        minimum. ``2 / value`` is the largest stable learning rate of gradient descent near
        here (Goodfellow et al. sec. 8.2.1; LeCun et al. 1998).
    vector : ndarray (n_params,), the unit eigenvector estimate.
    iterations : int
    residual : float, ``||H v - value v||``
    converged : bool, ``residual <= tol |value|``
    """

    value: float
    vector: np.ndarray
    iterations: int
    residual: float
    converged: bool


def top_eigenvalue(net, X, Y, iters=100, tol=1e-6, lmbda=0.0, n=None, seed=0, v0=None):
    """The Hessian's eigenvalue of largest magnitude, by power iteration with :func:`hvp`.

    ``v <- H v / ||H v||`` until ``||H v - (v^T H v) v|| <= tol |v^T H v|``; converges at the
    rate ``|lambda_2 / lambda_1|`` per iteration. The result is the eigenvalue largest in
    absolute value -- at a saddle point it can be negative.

    Parameters
    ----------
    iters : int, maximum iterations; tol : float, relative residual.
    seed : seeds the random start; v0 : optional start vector (n_params,).

    Returns
    -------
    TopEigenvalue
    """
    from .._validate import check_number

    iters = check_number(iters, "iters", low=1, integer=True)
    tol = check_number(tol, "tol", low=0)
    op = HessianOperator(net, X, Y, lmbda, n)
    if v0 is None:
        if seed is not None:
            check_number(seed, "seed", low=0, integer=True)
        v = np.random.default_rng(seed).standard_normal(op.shape[0])
    else:
        v = np.asarray(v0)
        if v.dtype.kind not in "fiu":
            raise TypeError(f"v0 must be a real vector; got dtype {v.dtype}")
        v = v.astype(np.float64)
        if v.shape != (op.shape[0],):
            raise ValueError(f"v0 must have shape ({op.shape[0]},); got {v.shape}")
        if not np.isfinite(v).all():
            raise ValueError("v0 contains NaN or Inf")
        scale = np.abs(v).max()
        if scale == 0:
            raise ValueError("v0 is the zero vector; power iteration needs a non-zero start")
        v = v / scale  # scaled first, so that the norm below cannot overflow
    v /= np.linalg.norm(v)
    lam, res, it = 0.0, np.inf, 0
    for it in range(1, iters + 1):
        w = op.matvec(v)
        if not np.isfinite(w).all():
            raise FloatingPointError("top_eigenvalue: the Hessian-vector product overflowed "
                                     "(Inf or NaN) at these parameters; no eigenvalue is "
                                     "returned rather than NaN")
        lam = float(v @ w)
        res = float(np.linalg.norm(w - lam * v))
        if res <= tol * abs(lam):
            break
        nw = np.linalg.norm(w)
        if nw == 0:
            break
        v = w / nw
    return TopEigenvalue(value=lam, vector=v, iterations=it, residual=res,
                         converged=bool(res <= tol * abs(lam)))


@dataclass(frozen=True, eq=False)
class CurvatureAlong:
    """The second-order model of one gradient step (Goodfellow et al., eq. 8.10).

    ``J(theta - eps g) ~ J(theta) - eps g^T g + eps^2 / 2 g^T H g``.

    Attributes
    ----------
    gTg : float, ``g^T g``, the first-order decrease per unit step.
    gHg : float, ``g^T H g``, the curvature along g times ``||g||^2``.
    rayleigh : float, ``g^T H g / g^T g``, the curvature along the unit vector ``g/||g||``.
    best_step : float
        ``g^T g / g^T H g``, the step minimising the model (inf when ``g^T H g <= 0``).
        Ill-conditioning shows as ``best_step`` far below the learning rate in use: then
        ``eps^2/2 g^T H g > eps g^T g`` and the step raises the cost although ``g`` is large.
    eps : ndarray or None, the steps asked for.
    predicted : ndarray or None, ``-eps g^T g + eps^2/2 g^T H g`` for each eps.
    actual : ndarray or None, ``J(theta - eps g) - J(theta)`` evaluated by the engine.
    """

    gTg: float
    gHg: float
    rayleigh: float
    best_step: float
    eps: np.ndarray | None
    predicted: np.ndarray | None
    actual: np.ndarray | None

    def predicted_change(self, eps):
        """``-eps g^T g + eps^2/2 g^T H g`` (eq. 8.10) for a scalar or array eps."""
        eps = np.asarray(eps, np.float64)
        return -eps * self.gTg + 0.5 * eps * eps * self.gHg


def curvature_along(net, X, Y, g=None, eps=None, lmbda=0.0, n=None):
    """``g^T g``, ``g^T H g`` and the predicted change of cost of the step ``-eps g``.

    Goodfellow et al., sec. 8.2.1 "Ill-conditioning", eq. 8.10: ``-eps g^T g + eps^2/2 g^T H g``
    -- the ill-conditioning monitor: track ``g^T g`` and ``g^T H g`` during training; when
    the second term outgrows the first, gradient descent stalls however large ``g`` is.

    Parameters
    ----------
    net, X, Y : the network and the rows defining ``J`` and ``H``.
    g : array (n_params,), optional
        The step direction; default the gradient of ``J`` at the current parameters (as in
        eq. 8.10; with another ``g``, ``predicted`` still uses ``g^T g`` literally).
    eps : float or array, optional
        Steps for which to also evaluate ``predicted`` and the ``actual`` change
        ``J(theta - eps g) - J(theta)`` (on a copy of the network).
    lmbda, n : L2 strength and its n (default m).

    Returns
    -------
    CurvatureAlong
    """
    op = HessianOperator(net, X, Y, lmbda, n)
    g = op.grad if g is None else np.asarray(g, np.float64)
    if g.shape != (op.shape[0],):
        raise ValueError(f"g must have shape ({op.shape[0]},); got {g.shape}")
    gTg = float(g @ g)
    gHg = float(g @ op.matvec(g))
    ray = gHg / gTg if gTg > 0 else float("nan")
    best = gTg / gHg if gHg > 0 else float("inf")
    pred = act = None
    if eps is not None:
        eps = np.atleast_1d(np.asarray(eps, np.float64))
        pred = -eps * gTg + 0.5 * eps * eps * gHg
        other = net.copy()
        nn = op.n
        act = np.empty_like(eps)
        for i, e in enumerate(eps):
            other.params[...] = op.params - e * g
            act[i] = other.cost(X, Y, lmbda=op.lmbda, n=nn) - op.cost
    return CurvatureAlong(gTg=gTg, gHg=gHg, rayleigh=ray, best_step=best, eps=eps,
                          predicted=pred, actual=act)


# --------------------------------------------------------------------------- Newton

@dataclass(frozen=True, eq=False)
class NewtonResult:
    """History of :func:`newton`; index 0 is the starting point.

    Attributes
    ----------
    cost : ndarray (k + 1,), ``J`` after each iteration (``cost[0]`` before the first).
    grad_norm : ndarray (k + 1,), ``||dJ/dtheta||`` likewise.
    damping : ndarray (k,), the ``alpha`` of each accepted step.
    retries : ndarray (k,), rejected trial steps before each accepted one.
    solver : str, ``"dense"`` or ``"cg"``.
    converged : bool, ``grad_norm[-1] <= gtol`` or the predicted decrease fell below the
        rounding of the cost.
    """

    cost: np.ndarray
    grad_norm: np.ndarray
    damping: np.ndarray
    retries: np.ndarray
    solver: str
    converged: bool


_EPS = 4 * np.finfo(np.float64).eps


def _next_damping(alpha, rho, gn):
    """Damping after an accepted step with gain ratio rho and new gradient norm gn."""
    factor = max(1.0 / 3.0, 1.0 - (2.0 * min(max(rho, 0.0), 1.0) - 1.0) ** 3)
    alpha = alpha * factor
    if rho > 0.75:  # the quadratic model is trustworthy: let the damping vanish with g
        alpha = min(alpha, gn)
    return max(alpha, np.finfo(np.float64).tiny)


def _cg(A, b, rtol, maxiter):
    from scipy.sparse.linalg import cg

    kw = ("rtol" if "rtol" in inspect.signature(cg).parameters else "tol")
    x, info = cg(A, b, **{kw: rtol}, atol=0.0, maxiter=maxiter)
    return x, info


def newton(net, X, Y, damping=1e-3, iters=20, lmbda=0.0, n=None, solver="auto",
           dense_max=500, gtol=0.0, max_retries=40, cg_maxiter=None, callback=None):
    """Newton's method with Levenberg-Marquardt damping on the objective; updates ``net``.

    Each iteration solves ``(H + alpha I) p = -g`` (Goodfellow et al. sec. 8.6.1:
    ``theta* = theta_0 - [H + alpha I]^{-1} g``) and tries ``theta + p``. With the gain ratio
    ``rho = (J(theta) - J(theta + p)) / (-(g^T p + p^T H p / 2))`` of the actual to the
    predicted decrease:

    - success (``J`` did not increase): accept, and decrease the damping,
      ``alpha <- alpha max(1/3, 1 - (2 rho - 1)^3)`` (the Marquardt update of Madsen,
      Nielsen & Tingleff 2004), and when the model is trustworthy (``rho > 3/4``) also
      ``alpha <- min(alpha, ||g||)``: damping that vanishes with the gradient keeps Newton's
      quadratic convergence near a minimum;
    - failure: reject, ``alpha <- alpha nu``, ``nu <- 2 nu`` (``nu = 2`` after a success), and
      solve again. A large ``alpha`` turns the step into gradient descent with step
      ``1/alpha``, which copes with negative curvature near saddle points.

    For networks up to a few thousand parameters: the dense solver builds the Hessian with
    ``n_params`` Hessian-vector products and solves in ``O(n_params^3)``; the CG solver needs
    up to ``n_params`` products per iteration.

    Parameters
    ----------
    net : vgfast.Network, trained in place (its parameters are the last accepted ones).
    X, Y : the rows (full batch).
    damping : float > 0, the initial ``alpha``.
    iters : int, the maximum number of iterations (accepted steps).
    lmbda, n : L2 strength and its n (default: the number of rows).
    solver : ``"dense"`` (``numpy.linalg.solve`` on the dense Hessian), ``"cg"``
        (``scipy.sparse.linalg.cg`` with ``H + alpha I`` as a ``LinearOperator``, relative
        tolerance ``min(0.5, ||g||)``), or ``"auto"`` (dense up to ``dense_max`` parameters).
    gtol : float, stop when ``||g|| <= gtol``.
    max_retries : int, rejected trials in a row before stopping.

    Newton also stops when the quadratic model predicts a decrease below the rounding of the
    cost (``4 eps |J|``) or the step is below the rounding of the parameters
    (``||p|| <= 4 eps ||theta||``): the minimum has been reached at float64 precision
    (``converged``).
    cg_maxiter : int, default ``10 * n_params``.

    Returns
    -------
    NewtonResult
        ``cost`` per iteration, ``grad_norm``, ``damping``, ``retries``.
    """
    from .._validate import check_number

    _check_net(net)
    _check_supported(net)
    alpha = check_number(damping, "damping", low=0, low_open=True)
    iters = check_number(iters, "iters", low=0, integer=True)
    gtol = check_number(gtol, "gtol", low=0)
    if solver not in ("auto", "dense", "cg"):
        raise ValueError(f"solver must be 'auto', 'dense' or 'cg'; got {solver!r}")
    if solver == "auto":
        solver = "dense" if net.n_params <= dense_max else "cg"
    X = _rows(net, X)
    op = HessianOperator(net, X, Y, lmbda, n)
    nn = op.n
    P = op.shape[0]
    costs, gnorms, alphas, retries = [op.cost], [float(np.linalg.norm(op.grad))], [], []
    trial = net.copy()
    nu = 2.0
    at_floor = False
    for _ in range(iters):
        g = op.grad
        gn = gnorms[-1]
        if gn <= gtol:
            break
        H = op.dense() if solver == "dense" else None
        accepted = at_floor = False
        for r in range(max_retries):
            p = None
            if solver == "dense":
                try:
                    p = np.linalg.solve(H + alpha * np.eye(P), -g)
                except np.linalg.LinAlgError:
                    pass
            else:
                p, _info = _cg(op.as_linear_operator(alpha), -g, min(0.5, gn),
                               cg_maxiter or 10 * P)
            if p is not None and np.isfinite(p).all():
                Hp = H @ p if H is not None else op.matvec(p)
                pred = -(g @ p + 0.5 * (p @ Hp))
                if r == 0 and (0 <= pred <= _EPS * abs(op.cost) or
                               np.linalg.norm(p) <= _EPS * np.linalg.norm(op.params)):
                    # the model promises less than the cost's rounding, or the step is below
                    # the parameters' rounding: the minimum is reached at float64 precision
                    at_floor = True
                    break
                trial.params[...] = op.params + p
                c = trial.cost(X, Y, lmbda=op.lmbda, n=nn)
                if np.isfinite(c) and c <= op.cost:
                    actual = op.cost - c
                    rho = actual / pred if pred > 0 else 0.0
                    accepted = True
                    break
            alpha *= nu
            nu *= 2.0
        if not accepted:
            break
        net.params[...] = trial.params
        alphas.append(alpha)
        retries.append(r)
        op = HessianOperator(net, X, Y, op.lmbda, nn)
        gn = float(np.linalg.norm(op.grad))
        costs.append(op.cost)
        gnorms.append(gn)
        alpha = _next_damping(alpha, rho, gn)
        nu = 2.0
        if callback is not None and callback(len(costs) - 1, net):
            break
    return NewtonResult(cost=np.array(costs), grad_norm=np.array(gnorms), damping=np.array(alphas),
                        retries=np.array(retries, np.int64), solver=solver,
                        converged=bool(gnorms[-1] <= gtol or at_floor))
