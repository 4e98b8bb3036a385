"""The identity neuron: one sigmoid hidden unit that passes its input through.

Nielsen, *Neural Networks and Deep Learning*, ch. 5, last problem of "The prevalence of the
vanishing gradient problem": a neuron with one input ``x``, weight ``w1``, bias ``b`` and
outgoing weight ``w2``; show that with suitable parameters ``w2 sigma(w1 x + b) ~ x`` on
``[0, 1]``, so the neuron's output is its input "up to rescaling by a weight factor". Hint:
write ``x = 1/2 + Delta``, take ``w1`` small and Taylor-expand in ``w1 Delta``.

The maths, done honestly
------------------------
Put the expansion point ``z = 0`` at ``x = 1/2`` with ``b = -w1/2``, so ``z = w1 Delta``.
Since ``sigma(z) - 1/2 = tanh(z/2)/2`` is odd,

    sigma(z) = 1/2 + z/4 - z^3/48 + z^5/480 - ...

and therefore

    w2 sigma(w1 x + b) = w2/2 + (w2 w1 / 4) Delta - w2 w1^3 Delta^3 / 48 + ...

With ``w2 = 4 / w1`` the linear term is exactly ``Delta`` and

    w2 sigma(w1 x + b) = x + (2/w1 - 1/2) - w1^2 Delta^3 / 12 + O(w1^4).

So the neuron reproduces ``x`` up to a constant ``2/w1 - 1/2``, which grows as ``w1 -> 0``.
The identity needs an output offset

    x ~ w2 sigma(w1 x + b) + c,    c = 1/2 - w2/2 = 1/2 - 2/w1,

and in a network that offset is free: the neuron's output only ever enters the next layer
as ``w2 a + b_next``, so ``c`` is absorbed by the next layer's bias. That is how the book's
"up to rescaling by a weight factor" has to be read: ``w2`` is the outgoing weight and the
constant is the next neuron's bias.

Without the offset the approximation cannot be made good. A logistic curve
``f(x) = w2 sigma(w1 x + b)`` linearised at any ``x0`` has intercept / slope
``= f / f' = 1 / (w1 (1 - sigma(z0)))``, at least ``1/w1``: a zero intercept needs a large
``w1``, and a large ``w1`` bends the curve (the cubic error above grows like ``w1^2``). A
numerical minimax search over ``(w1, b, w2)`` finds the best pure form at ``w2 = 1``,
``w1 = 5.648``, ``b = -w1/2`` with maximum error 0.0561 on ``[0, 1]``, and no smaller.

Error of the construction
-------------------------
``e(x) = w2 sigma(w1 x + b) + c - x = (2/w1) tanh(w1 Delta / 2) - Delta`` is odd in
``Delta`` and decreasing (its derivative is ``sech^2(w1 Delta / 2) - 1 <= 0``), so the
largest error on ``[0, 1]`` is at the ends ``Delta = +-1/2``:

    max_error(w1) = 1/2 - (2/|w1|) tanh(|w1|/4)
                  = w1^2 / 96 - w1^4 / 3840 + O(w1^6).

The leading constant 1/96 is the cubic Taylor term: ``(4/w1) (w1^3/48) max|Delta|^3
= (w1^2/12)(1/8)``. The error vanishes like ``w1^2`` but the outgoing weight ``w2 = 4/w1``
blows up like ``1/w1``: an almost-linear sigmoid unit is bought with a large weight.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .interval import _PLOT_HINT

__all__ = [
    "LEADING_ERROR_CONSTANT",
    "IdentityNeuron",
    "identity_neuron",
    "identity_error_exact",
    "identity_error_leading",
    "identity_error_curve",
    "plot_identity_error",
]

#: ``max_error(w1) / w1**2 -> 1/96`` as ``w1 -> 0`` (cubic Taylor term at ``Delta = 1/2``).
LEADING_ERROR_CONSTANT = 1.0 / 96.0

_DEFAULT_GRID = 10001


@dataclass(frozen=True)
class IdentityNeuron:
    """A sigmoid unit ``x -> w2 sigma(w1 x + b) + c`` that approximates ``x`` on [0, 1].

    Attributes
    ----------
    w1 : float
        Input weight. Small ``|w1|`` makes the unit nearly linear (the error is ~ w1^2/96).
    b : float
        Bias, ``-w1/2``: puts the sigmoid's linear point ``z = 0`` at ``x = 1/2``.
    w2 : float
        Outgoing weight, ``4/w1``: undoes the slope ``sigma'(0) w1 = w1/4``.
    c : float
        Output offset, ``1/2 - w2/2``; in a network, part of the next layer's bias.
    max_error : float
        ``max |w2 sigma(w1 x + b) + c - x|`` over an evenly spaced grid on ``[0, 1]``
        (endpoints included, where the maximum is attained).
    """

    w1: float
    b: float
    w2: float
    c: float
    max_error: float

    def __call__(self, x):
        """The unit's output plus offset, ``w2 sigma(w1 x + b) + c``.

        Evaluated as ``w2 (sigma(z) - 1/2) + 1/2`` with ``sigma(z) - 1/2 = tanh(z/2)/2``: the
        same number (``c = 1/2 - w2/2``), without cancelling two terms of size ``2/w1``.
        """
        z = self.w1 * np.asarray(x, dtype=np.float64) + self.b
        return self.w2 * _centered_sigmoid(z) + 0.5


def _centered_sigmoid(z):
    """``sigma(z) - 1/2``, as ``tanh(z/2) / 2``: full relative precision near ``z = 0``."""
    return 0.5 * np.tanh(0.5 * z)


def _check_w1(w1) -> float:
    w1 = float(w1)
    if not math.isfinite(w1) or w1 == 0.0:
        raise ValueError(f"w1 must be finite and non-zero, got {w1!r}")
    return w1


def identity_neuron(w1, n_grid=_DEFAULT_GRID) -> IdentityNeuron:
    """Build the identity neuron for input weight ``w1`` and measure its error.

    Parameters
    ----------
    w1 : float
        Input weight, non-zero (either sign; ``w2`` takes the same sign).
    n_grid : int, default 10001
        Number of evenly spaced points on ``[0, 1]`` for ``max_error``.

    Returns
    -------
    IdentityNeuron
        With ``b = -w1/2``, ``w2 = 4/w1``, ``c = 1/2 - w2/2``.

    Notes
    -----
    The output offset ``c`` cannot be dropped; see the module docstring.
    """
    w1 = _check_w1(w1)
    n_grid = int(n_grid)
    if n_grid < 2:
        raise ValueError(f"n_grid must be at least 2, got {n_grid}")
    b = -0.5 * w1
    w2 = 4.0 / w1
    c = 0.5 - 0.5 * w2
    # e(x) = w2 sigma(w1 x + b) + c - x = w2 (sigma(w1 Delta) - 1/2) - Delta, Delta = x - 1/2.
    # Same value as the left-hand side, but with no subtraction of two numbers of size 2/w1
    # (c and w2 sigma), which would lose ~log10(1/w1) digits for small w1.
    delta = np.linspace(0.0, 1.0, n_grid) - 0.5
    max_error = float(np.max(np.abs(w2 * _centered_sigmoid(w1 * delta) - delta)))
    return IdentityNeuron(w1=w1, b=b, w2=w2, c=c, max_error=max_error)


def identity_error_exact(w1):
    """Exact maximum error on ``[0, 1]``: ``1/2 - (2/|w1|) tanh(|w1|/4)``, vectorised.

    Attained at ``x = 0`` and ``x = 1``. Accurate for small ``w1`` too (it switches to the
    series ``w1^2/96 - w1^4/3840 + 17 w1^6/2580480`` when the difference would cancel).
    """
    w1 = np.abs(np.asarray(w1, dtype=np.float64))
    if np.any(w1 == 0.0):
        raise ValueError("w1 must be non-zero")
    small = w1 < 1e-2
    safe = np.where(small, 1.0, w1)
    direct = 0.5 - (2.0 / safe) * np.tanh(safe / 4.0)
    w2 = w1 * w1
    series = w2 / 96.0 - w2 * w2 / 3840.0 + 17.0 * w2**3 / 2580480.0
    out = np.where(small, series, direct)
    return out[()] if out.ndim == 0 else out


def identity_error_leading(w1):
    """Leading-order maximum error, ``w1^2 / 96``, vectorised."""
    w1 = np.asarray(w1, dtype=np.float64)
    out = LEADING_ERROR_CONSTANT * w1 * w1
    return out[()] if out.ndim == 0 else out


def identity_error_curve(w1_values, n_grid=_DEFAULT_GRID):
    """Maximum error of the identity neuron for each input weight.

    Parameters
    ----------
    w1_values : array_like
        Non-zero input weights.
    n_grid : int, default 10001
        Grid size on ``[0, 1]`` (see :func:`identity_neuron`).

    Returns
    -------
    ndarray
        ``identity_neuron(w1).max_error`` for each ``w1``, same shape as ``w1_values``;
        ~ ``w1^2 / 96`` as ``w1 -> 0``.
    """
    w = np.asarray(w1_values, dtype=np.float64)
    flat = [identity_neuron(v, n_grid=n_grid).max_error for v in w.ravel()]
    return np.asarray(flat, dtype=np.float64).reshape(w.shape)


def plot_identity_error(ax=None, w1_values=None):
    """Log-log plot of the identity neuron's maximum error against ``w1``, with ``w1^2/96``.

    Parameters
    ----------
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure is made if omitted.
    w1_values : array_like, optional
        Weights to evaluate; default 60 values from 1e-2 to 10, log-spaced.

    Returns
    -------
    matplotlib.figure.Figure
    """
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover
        raise ImportError(_PLOT_HINT) from exc
    if ax is None:
        fig, ax = plt.subplots()
    else:
        fig = ax.figure
    w1 = np.logspace(-2, 1, 60) if w1_values is None else np.asarray(w1_values, float)
    ax.loglog(w1, identity_error_curve(w1), "o", ms=3, label="max |w2 σ(w1 x + b) + c − x|")
    ax.loglog(w1, identity_error_leading(w1), "-", label="w1² / 96 (cubic Taylor term)")
    ax.set_xlabel("w1")
    ax.set_ylabel("max error on [0, 1]")
    ax.set_title("Identity neuron: b = −w1/2, w2 = 4/w1, c = 1/2 − w2/2")
    ax.legend()
    return fig
