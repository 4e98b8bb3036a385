"""The gradient of a chain of one-neuron sigmoid layers, term by term.

Nielsen, *Neural Networks and Deep Learning*, ch. 5, "What's causing the vanishing gradient
problem?". For the network ``x = a_0 -> a_1 -> ... -> a_L -> C`` with one sigmoid neuron per
layer, ``z_j = w_j a_{j-1} + b_j`` and ``a_j = sigma(z_j)``, following a change ``Delta b_1``
through the chain (eqs. 114-120) gives (eqs. 121-122, written for ``L = 4`` in the book)

    dC/db_1 = sigma'(z_1) * w_2 sigma'(z_2) * w_3 sigma'(z_3) * ... * w_L sigma'(z_L) * dC/da_L

and in general ``dC/db_j = sigma'(z_j) * prod_{k>j} w_k sigma'(z_k) * dC/da_L``. Every layer
behind ``j`` contributes one factor ``w_k sigma'(z_k)``; since ``sigma' <= 1/4`` those factors
are small for ``|w| < 4`` (vanishing gradient) and can be made 25 each with ``w = 100`` and
biases that put every ``z_j`` at 0 (the exploding-gradient construction,
:func:`exploding_chain`).

Pure numpy; nothing here uses the compiled engine, so it can check it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .interval import sigmoid, sigmoid_prime

__all__ = ["COSTS", "ChainTerms", "chain_cost", "chain_terms", "exploding_chain"]

#: Costs of the single output ``a_L`` against the target ``y``.
COSTS = ("quadratic", "cross_entropy")


@dataclass(frozen=True, eq=False)
class ChainTerms:
    """Forward values and every factor of the backpropagated gradient of a one-neuron chain.

    Layers are numbered ``j = 1..L`` as in the book; array index ``j - 1`` holds layer ``j``
    (``activations`` also holds the input at index 0).

    Attributes
    ----------
    weights, biases : ndarray, shape (L,)
        ``w_j`` and ``b_j``.
    x, y : float
        Input activation ``a_0`` and target.
    cost : str
        ``"quadratic"``, ``C = (a_L - y)^2 / 2``, or ``"cross_entropy"``,
        ``C = -[y ln a_L + (1 - y) ln(1 - a_L)]``.
    zs : ndarray, shape (L,)
        Weighted inputs ``z_j = w_j a_{j-1} + b_j``.
    activations : ndarray, shape (L + 1,)
        ``a_0 = x, a_1 = sigma(z_1), ..., a_L``.
    sigma_primes : ndarray, shape (L,)
        ``sigma'(z_j)``, each at most 1/4.
    terms : ndarray, shape (L,)
        ``w_j sigma'(z_j)``, the factors of eq. 122 (``dC/db_1`` uses those of ``j = 2..L``).
    cost_value : float
        ``C`` at the output.
    dC_da : float
        ``dC/da_L``, the last factor of eq. 122: ``a_L - y`` (quadratic) or
        ``(a_L - y) / (a_L (1 - a_L))`` (cross-entropy).
    product : float
        ``dC/db_1`` as the explicit product of eq. 122,
        ``sigma'(z_1) * prod_{j=2..L} w_j sigma'(z_j) * dC/da_L``.
    grad_b : ndarray, shape (L,)
        ``dC/db_j`` for every layer, by the backward recursion
        ``dC/db_j = sigma'(z_j) w_{j+1} dC/db_{j+1}`` (the book's ``delta``, one neuron wide).
        For cross-entropy the output layer uses ``dC/db_L = a_L - y`` (``sigma'`` cancels).
    grad_w : ndarray, shape (L,)
        ``dC/dw_j = a_{j-1} dC/db_j``.
    growth : ndarray, shape (L - 1,)
        ``sigma'(z_j) w_{j+1}`` for ``j = 1..L-1``: how many times larger ``dC/db_j`` is than
        ``dC/db_{j+1}`` (``grad_b[j-1] = growth[j-1] * grad_b[j]``). Below 1 in size the
        gradient vanishes towards the input; 25 per layer in :func:`exploding_chain`.
    """

    weights: np.ndarray
    biases: np.ndarray
    x: float
    y: float
    cost: str
    zs: np.ndarray
    activations: np.ndarray
    sigma_primes: np.ndarray
    terms: np.ndarray
    cost_value: float
    dC_da: float
    product: float
    grad_b: np.ndarray
    grad_w: np.ndarray
    growth: np.ndarray

    @property
    def depth(self) -> int:
        """Number of layers ``L``."""
        return int(self.weights.shape[0])


def _check(weights, biases, x, y, cost):
    w = np.array(weights, dtype=np.float64, ndmin=1)
    b = np.array(biases, dtype=np.float64, ndmin=1)
    if w.ndim != 1 or b.ndim != 1:
        raise ValueError(f"weights and biases must be 1-D (one neuron per layer), "
                         f"got shapes {w.shape} and {b.shape}")
    if w.shape != b.shape:
        raise ValueError(f"weights and biases must have the same length, got {w.shape[0]} "
                         f"weights and {b.shape[0]} biases")
    if w.shape[0] == 0:
        raise ValueError("need at least one layer")
    if not (np.all(np.isfinite(w)) and np.all(np.isfinite(b))):
        raise ValueError("weights and biases must be finite")
    x, y = float(x), float(y)
    if not (math.isfinite(x) and math.isfinite(y)):
        raise ValueError(f"x and y must be finite, got x={x!r}, y={y!r}")
    if cost not in COSTS:
        raise ValueError(f"cost must be one of {COSTS}, got {cost!r}")
    return w, b, x, y


def _forward(w, b, x):
    zs = np.empty_like(w)
    acts = np.empty(w.shape[0] + 1)
    acts[0] = x
    for j in range(w.shape[0]):
        zs[j] = w[j] * acts[j] + b[j]
        acts[j + 1] = sigmoid(zs[j])
    return zs, acts


def _cost(z_L, a_L, y, cost):
    if cost == "quadratic":
        return 0.5 * (a_L - y) ** 2
    # -[y ln a + (1-y) ln(1-a)] with ln a = -softplus(-z), ln(1-a) = -softplus(z):
    # finite even when a_L rounds to 0 or 1
    return float(y * np.logaddexp(0.0, -z_L) + (1.0 - y) * np.logaddexp(0.0, z_L))


def chain_cost(weights, biases, x, y=0.0, cost="quadratic") -> float:
    """Cost of a one-neuron-per-layer sigmoid chain for one input.

    Parameters
    ----------
    weights, biases : array_like, shape (L,)
        ``w_j`` and ``b_j`` for layers ``j = 1..L``.
    x : float
        Input activation ``a_0``.
    y : float, default 0.0
        Target for the output ``a_L``.
    cost : {"quadratic", "cross_entropy"}
        ``(a_L - y)^2 / 2`` or ``-[y ln a_L + (1 - y) ln(1 - a_L)]``.

    Returns
    -------
    float
        ``C``. Useful for finite-difference checks of :func:`chain_terms`.
    """
    w, b, x, y = _check(weights, biases, x, y, cost)
    zs, acts = _forward(w, b, x)
    return float(_cost(zs[-1], acts[-1], y, cost))


def chain_terms(weights, biases, x, y=0.0, cost="quadratic") -> ChainTerms:
    """Every factor of ``dC/db_j`` for a chain with one sigmoid neuron per layer.

    Parameters
    ----------
    weights, biases : array_like, shape (L,)
        ``w_j`` and ``b_j`` for layers ``j = 1..L`` (the book's example has ``L = 4``).
    x : float
        Input activation ``a_0``.
    y : float, default 0.0
        Target for the output ``a_L``.
    cost : {"quadratic", "cross_entropy"}, default "quadratic"
        Quadratic ``(a_L - y)^2 / 2``, as in the chapter's chain, or cross-entropy.

    Returns
    -------
    ChainTerms
        ``zs``, ``activations``, ``sigma_primes``, ``terms`` (``w_j sigma'(z_j)``), the
        explicit eq. 122 ``product`` for ``dC/db_1``, and ``grad_b``/``grad_w``/``growth``
        for every layer.

    Examples
    --------
    >>> t = chain_terms([100.0] * 4, [-100.0, -50.0, -50.0, -50.0], x=1.0)
    >>> t.terms.tolist()
    [25.0, 25.0, 25.0, 25.0]
    """
    w, b, x, y = _check(weights, biases, x, y, cost)
    zs, acts = _forward(w, b, x)
    sp = sigmoid_prime(zs)
    terms = w * sp
    a_L, z_L = acts[-1], zs[-1]
    c = float(_cost(z_L, a_L, y, cost))
    if cost == "quadratic":
        dC_da = a_L - y
        delta_L = sp[-1] * dC_da
    else:
        # a (1 - a) = sigma(z) sigma(-z) = sigma'(z), computed without cancellation
        dC_da = (a_L - y) / sp[-1]
        delta_L = a_L - y

    # eq. 122, literally: sigma'(z_1) w_2 sigma'(z_2) ... w_L sigma'(z_L) dC/da_L
    product = sp[0] * float(np.prod(terms[1:])) * dC_da

    # the same quantity layer by layer, backwards (the one-neuron delta recursion)
    grad_b = np.empty_like(w)
    grad_b[-1] = delta_L
    for j in range(w.shape[0] - 2, -1, -1):
        grad_b[j] = sp[j] * w[j + 1] * grad_b[j + 1]
    grad_w = acts[:-1] * grad_b
    growth = sp[:-1] * w[1:]

    return ChainTerms(
        weights=w, biases=b, x=x, y=y, cost=cost, zs=zs, activations=acts,
        sigma_primes=sp, terms=terms, cost_value=c, dC_da=float(dC_da),
        product=float(product), grad_b=grad_b, grad_w=grad_w, growth=growth,
    )


def exploding_chain(depth=4, w=100.0, x=1.0, y=0.0, cost="quadratic") -> ChainTerms:
    """The book's exploding-gradient construction: every ``w_j sigma'(z_j) = w/4``.

    Ch. 5, "The exploding gradient problem": take all weights ``w_j = w`` (the book uses 100)
    and biases ``b_j = -w a_{j-1}``, so every weighted input ``z_j = 0`` and
    ``sigma'(z_j) = 1/4``, its maximum. Each factor ``w_j sigma'(z_j)`` of eq. 122 is then
    ``w/4 = 25``, and the gradient grows by 25 per layer going back towards the input.

    Parameters
    ----------
    depth : int, default 4
        Number of one-neuron layers ``L``.
    w : float, default 100.0
        The common weight.
    x : float, default 1.0
        Input activation ``a_0`` (so ``b_1 = -w x``; later biases are ``-w/2``, as
        ``a_j = sigma(0) = 1/2``).
    y : float, default 0.0
        Target for the output.
    cost : {"quadratic", "cross_entropy"}, default "quadratic"

    Returns
    -------
    ChainTerms
        With ``zs`` all exactly 0, ``sigma_primes`` all 0.25, ``terms`` all ``w/4`` and
        ``growth`` all ``w/4`` (exact in floating point: ``-(w a) + w a = 0`` and
        ``sigma'(0) = 0.25``). ``grad_b[0] / grad_b[-1] = (w/4)^(L-1)``.
    """
    depth = int(depth)
    if depth < 1:
        raise ValueError(f"depth must be at least 1, got {depth}")
    w = float(w)
    weights = np.full(depth, w)
    biases = np.empty(depth)
    a = float(x)
    for j in range(depth):
        biases[j] = -(w * a)  # z_j = w a_{j-1} + b_j = 0 exactly
        a = float(sigmoid(0.0))
    return chain_terms(weights, biases, x, y=y, cost=cost)
