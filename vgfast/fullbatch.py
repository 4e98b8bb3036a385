"""Full-batch training by quasi-Newton and conjugate-gradient methods (scipy.optimize).

The objective is the training objective of :func:`vgfast.train` taken over the whole set::

    J(theta) = mean cost over the n rows + (lmbda / 2n) sum_l ||W^l||_F^2

(biases are never penalised), and its exact gradient: the mean cost and its gradient come from
ONE engine call per evaluation (forward and backward over all rows), the L2 term and its
gradient (lmbda / n) W are added over a weight mask. Because the parameters are one flat buffer
(DESIGN.md), theta *is* ``net.params``: scipy works on it directly (on a float64 copy for a
float32 network, written back after every evaluation and at the end).

>>> res = vgfast.fit_lbfgs(net, X, y, lmbda=1.0, maxiter=200)
>>> res.cost, res.nfev, res.history[:3], res.message
"""
from dataclasses import dataclass, field

import numpy as np

from ._validate import as_matrix, as_targets, check_number


@dataclass
class FullBatchResult:
    """What a full-batch fit did.

    Attributes
    ----------
    cost : float
        J at the returned parameters (mean cost + L2 penalty), as held by ``net.params``.
    nfev : int
        Objective evaluations; each is one engine call that gives the cost and the gradient
        together, so this is also the number of gradient evaluations.
    nit : int
        Iterations of the method.
    history : ndarray (nit + 1,)
        J at the start (``history[0]``) and after each iteration.
    message : str
        scipy's message (why it stopped).
    success : bool
        scipy's flag: True when a convergence test (gradient or cost change) was met.
    grad_norm : float
        ||grad J|| (2-norm) at the returned parameters.
    method : str
        ``"L-BFGS-B"`` or ``"CG"``.
    """

    cost: float
    nfev: int
    nit: int
    history: np.ndarray = field(repr=False)
    message: str
    success: bool
    grad_norm: float
    method: str


class Objective:
    """theta -> (J(theta), grad J(theta)) in float64 over the flat parameter layout.

    Calling it writes theta into ``net.params`` (rounded to float32 for a float32 network, and
    the value and gradient are then those of the rounded parameters) and runs the engine once.

    Attributes
    ----------
    x0 : ndarray (n_params,) float64, a copy of the parameters when the objective was built.
    weight_mask : ndarray (n_params,) bool, True on weights (the entries L2 acts on).
    nfev : int, evaluations so far.
    last : (theta, J, grad) of the last evaluation.
    """

    def __init__(self, net, X, Y, lmbda=0.0):
        from .network import Network

        if not isinstance(net, Network):
            raise TypeError(f"net must be a vgfast.Network; got {type(net).__name__}")
        if any(getattr(net, "batch_norm", ())):
            # the training-mode function (whole set as one batch) would leave the running
            # statistics that evaluation uses stale; the evaluation-mode one is not batch norm
            raise ValueError("net: full-batch fits do not support batch-normalised networks "
                             "(batch_norm=True); train them with vgfast.train")
        self.net = net
        self.X, _ = as_matrix(X, "X", net.dtype, net.sizes[0])
        self.n = self.X.shape[0]
        self.labels, self.T = as_targets(Y, "Y", self.n, net.sizes[-1], net.dtype)
        self.lmbda = check_number(lmbda, "lmbda", low=0)
        self.x0 = net.params.astype(np.float64)
        # the weight mask, built through the same views as net.weights
        self.weight_mask = np.zeros(net.n_params, bool)
        for w in net._split(self.weight_mask)[0]:
            w[...] = True
        self._grad = np.zeros(net.n_params, net.dtype)
        self.nfev = 0
        self.last = None

    def __call__(self, theta):
        net = self.net
        theta = np.asarray(theta, np.float64)
        net.params[...] = theta  # a cast for float32 networks
        g = self._grad
        with net._using() as eng:
            # one forward and backward over all rows: the mean cost and its gradient
            c = eng.gradient(net.params, self.X, self.T, self.labels, g)
        grad = g.astype(np.float64)
        if self.lmbda:
            p = net.params.astype(np.float64) if net.dtype != np.float64 else net.params
            w = p[self.weight_mask]
            k = self.lmbda / self.n
            # J += (lmbda / 2n) sum ||W||^2;  grad J += (lmbda / n) W on weights only
            c = c + 0.5 * k * float(w @ w)
            grad[self.weight_mask] += k * w
        self.nfev += 1
        self.last = (theta.copy(), float(c), grad)
        return float(c), grad


def full_batch_objective(net, X, Y, lmbda=0.0):
    """The objective the full-batch fits minimise, as a callable theta -> (J, grad J).

    See :class:`Objective`. Useful for gradient checks and for calling other scipy methods:
    ``scipy.optimize.minimize(obj, obj.x0, jac=True, method=...)``.
    """
    return Objective(net, X, Y, lmbda)


def _fit(method, net, X, Y, lmbda, maxiter, tol, callback, options):
    from scipy.optimize import minimize

    obj = Objective(net, X, Y, lmbda)
    maxiter = check_number(maxiter, "maxiter", low=1, integer=True)
    tol = check_number(tol, "tol", low=0)
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable(iteration, net, cost) or None; got "
                        f"{type(callback).__name__}")
    history = []

    def on_iteration(intermediate_result):  # scipy >= 1.11 passes the iterate and its cost
        history.append(float(intermediate_result.fun))
        if callback is not None:
            net.params[...] = intermediate_result.x
            if callback(len(history) - 1, net, history[-1]):
                raise StopIteration  # scipy ends the run with the current iterate

    def fun(theta):
        f, g = obj(theta)
        if not history:
            history.append(f)  # scipy's first evaluation is at x0: J before any iteration
        if not np.isfinite(f) or not np.isfinite(g).all():
            # scipy's line searches back off from an infinite value, but never from NaN
            return np.inf, np.zeros_like(g)
        return f, g

    res = minimize(fun, obj.x0.copy(), jac=True, method=method, callback=on_iteration,
                   options={"maxiter": maxiter, "gtol": tol, **options})
    net.params[...] = res.x
    if obj.last is not None and np.array_equal(obj.last[0], res.x):
        f, g = obj.last[1:]
    else:
        f, g = obj(res.x)  # the line search ended elsewhere: evaluate at the returned point
    if not history:
        history.append(f)
    return FullBatchResult(cost=float(f), nfev=obj.nfev, nit=int(res.nit),
                           history=np.asarray(history, np.float64), message=str(res.message),
                           success=bool(res.success), grad_norm=float(np.linalg.norm(g)),
                           method=method)


def fit_lbfgs(net, X, Y, lmbda=0.0, maxiter=100, tol=1e-6, callback=None, *, max_evals=None,
              m=10, ftol=2.220446049250313e-09):
    """Minimise the full-batch objective with L-BFGS (scipy's L-BFGS-B, no bounds); in place.

    Parameters
    ----------
    net : Network, trained in place (``net.params`` holds the result).
    X : (n, n_in) float array, examples as rows.
    Y : (n,) integer labels or (n, n_out) targets.
    lmbda : float >= 0, L2 strength: J = mean cost + (lmbda / 2n) sum ||W||^2 (as in train()).
    maxiter : int >= 1, iterations at most.
    tol : float >= 0, stop when every gradient component is <= tol in absolute value (scipy's
        ``gtol``).
    callback : callable(iteration, net, cost) or None, called after each iteration with
        ``net.params`` set to the iterate; returning True stops.
    max_evals : int or None, evaluations (engine calls) at most (scipy's ``maxfun``); scipy
        may overshoot it by the evaluations of the line search under way.
    m : int >= 1, number of correction pairs kept (scipy's ``maxcor``).
    ftol : float >= 0, also stop when the relative decrease of J in an iteration,
        (J_k - J_{k+1}) / max(|J_k|, |J_{k+1}|, 1), is <= ftol (scipy's default); 0 leaves the
        gradient test alone.

    Returns
    -------
    FullBatchResult
    """
    opts = {"maxcor": check_number(m, "m", low=1, integer=True),
            "ftol": check_number(ftol, "ftol", low=0)}
    if max_evals is not None:
        opts["maxfun"] = check_number(max_evals, "max_evals", low=1, integer=True)
    return _fit("L-BFGS-B", net, X, Y, lmbda, maxiter, tol, callback, opts)


def fit_cg(net, X, Y, lmbda=0.0, maxiter=100, tol=1e-6, callback=None):
    """Minimise the full-batch objective by nonlinear conjugate gradients (scipy's CG,
    Polak-Ribiere); in place.

    Parameters are those of :func:`fit_lbfgs` (``tol`` is scipy's ``gtol``, the max-abs
    gradient component).

    Returns
    -------
    FullBatchResult
    """
    return _fit("CG", net, X, Y, lmbda, maxiter, tol, callback, {})
