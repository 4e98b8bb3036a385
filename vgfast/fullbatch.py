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
import math
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
        scipy's flag: True when a convergence test (gradient or cost change) was met; False
        (with a message saying so) when scipy ended on a point where the objective overflowed,
        in which case ``net.params`` holds the finite point with the lowest objective met.
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
    A theta that is not finite in the network's dtype is refused (ValueError) before anything
    is written. When the evaluation overflows, J is ``inf`` (it is a sum of non-negative
    terms) and the gradient holds what overflowed (Inf or NaN entries).

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

    def check_theta(self, theta):
        """theta as a float64 (n_params,) copy and as the network's dtype; ValueError when it
        is not finite there (e.g. 1e39 for a float32 network), TypeError/ValueError for a
        wrong dtype or shape. Nothing is written."""
        theta = np.asarray(theta)
        if theta.dtype.kind not in "fiu":
            raise TypeError(f"theta must be real-valued; got dtype {theta.dtype}")
        if theta.shape != (self.net.n_params,):
            raise ValueError(f"theta must have shape ({self.net.n_params},); got {theta.shape}")
        theta = theta.astype(np.float64)
        with np.errstate(over="ignore", invalid="ignore"):
            cast = theta.astype(self.net.dtype)
        if not np.isfinite(cast).all():
            raise ValueError(f"theta contains NaN or Inf (in {np.dtype(self.net.dtype).name}); "
                             f"net.params is left as it was")
        return theta, cast

    def __call__(self, theta):
        net = self.net
        theta, cast = self.check_theta(theta)
        g = self._grad
        with net._using() as eng:
            net.params[...] = cast
            # one forward and backward over all rows: the mean cost and its gradient
            c = eng.gradient(net.params, self.X, self.T, self.labels, g)
        grad = g.astype(np.float64)
        with np.errstate(over="ignore", invalid="ignore"):
            if self.lmbda:
                p = net.params.astype(np.float64) if net.dtype != np.float64 else net.params
                w = p[self.weight_mask]
                k = self.lmbda / self.n
                # J += (lmbda / 2n) sum ||W||^2;  grad J += (lmbda / n) W on weights only
                c = c + 0.5 * k * float(w @ w)
                grad[self.weight_mask] += k * w
        if not math.isfinite(c):
            c = math.inf  # J is a sum of non-negative terms: a non-finite J overflowed
        self.nfev += 1
        self.last = (theta.copy(), float(c), grad)
        return float(c), grad


def full_batch_objective(net, X, Y, lmbda=0.0):
    """The objective the full-batch fits minimise, as a callable theta -> (J, grad J).

    See :class:`Objective`. Useful for gradient checks and for calling other scipy methods:
    ``scipy.optimize.minimize(obj, obj.x0, jac=True, method=...)``.
    """
    return Objective(net, X, Y, lmbda)


def _norm(g):
    """||g||_2 without overflow for huge finite entries (scaled by the largest)."""
    m = float(np.max(np.abs(g))) if g.size else 0.0
    return m * float(np.linalg.norm(g / m)) if m > 0 and math.isfinite(m) else m


def _finite(theta, dtype):
    with np.errstate(over="ignore", invalid="ignore"):
        return bool(np.isfinite(np.asarray(theta, np.float64).astype(dtype)).all())


def _fit(method, net, X, Y, lmbda, maxiter, tol, callback, options):
    from scipy.optimize import minimize

    obj = Objective(net, X, Y, lmbda)
    maxiter = check_number(maxiter, "maxiter", low=1, integer=True)
    tol = check_number(tol, "tol", low=0)
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable(iteration, net, cost) or None; got "
                        f"{type(callback).__name__}")
    history = []
    best = {"f": math.inf, "x": None, "g": None}  # the finite point with the lowest J met
    overflowed = []

    def on_iteration(intermediate_result):  # scipy >= 1.11 passes the iterate and its cost
        if not (math.isfinite(intermediate_result.fun) and
                _finite(intermediate_result.x, net.dtype)):
            overflowed.append("iterate")
            raise StopIteration  # an iterate that overflowed: stop; the best point is restored
        history.append(float(intermediate_result.fun))
        if callback is not None:
            net.params[...] = intermediate_result.x
            if callback(len(history) - 1, net, history[-1]):
                raise StopIteration  # scipy ends the run with the current iterate

    def fun(theta):
        if not _finite(theta, net.dtype):  # scipy's own step overflowed the parameters
            overflowed.append(True)
            return math.inf, np.zeros(net.n_params)
        f, g = obj(theta)
        finite = math.isfinite(f) and bool(np.isfinite(g).all())
        if not history:
            if not finite:
                net.params[...] = obj.x0
                raise FloatingPointError(
                    f"the full-batch objective is not finite at the starting parameters (J = "
                    f"{f}): the cost, its gradient or the L2 term (lmbda={obj.lmbda!r}) "
                    f"overflows float64. Scale the data or parameters down or lower lmbda; "
                    f"net.params is unchanged")
            history.append(f)  # scipy's first evaluation is at x0: J before any iteration
        if not finite:
            # scipy's line searches back off from an infinite value, but never from NaN
            overflowed.append(True)
            return math.inf, np.zeros_like(g)
        if f < best["f"]:
            best.update(f=f, x=np.array(theta, np.float64), g=g.copy())
        return f, g

    with np.errstate(over="ignore", invalid="ignore"):  # overflow is handled and reported
        res = minimize(fun, obj.x0.copy(), jac=True, method=method, callback=on_iteration,
                       options={"maxiter": maxiter, "gtol": tol, **options})
    success, message, x = bool(res.success), str(res.message), res.x
    f = g = None
    if _finite(x, net.dtype):
        if obj.last is not None and np.array_equal(obj.last[0], x):
            f, g = obj.last[1:]
        else:
            f, g = obj(x)  # the line search ended elsewhere: evaluate at the returned point
    if f is None or not (math.isfinite(f) and np.isfinite(g).all()):
        # scipy ended on a point that overflowed (reporting success or not): keep the best
        # finite point met instead, as train() keeps the last finite step, and say so
        x, f, g = best["x"], best["f"], best["g"]
        success = False
        where = (f"at iterate {len(history)}" if "iterate" in overflowed else
                 f"at the point scipy ended on (scipy: {res.message})")
        message = (f"stopped: the objective overflowed (Inf or NaN) {where}; net.params holds "
                   f"the finite point with the lowest objective met (J = {f:.6g})")
    elif overflowed and not success:
        message += " (the objective overflowed at some trial points; they were rejected)"
    net.params[...] = x
    if not history:
        history.append(f)
    return FullBatchResult(cost=float(f), nfev=obj.nfev, nit=int(res.nit),
                           history=np.asarray(history, np.float64), message=message,
                           success=success, grad_norm=_norm(g),
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
