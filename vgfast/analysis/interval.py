"""How wide is the range of inputs for which a sigmoid neuron does not shrink the gradient?

Nielsen, *Neural Networks and Deep Learning*, ch. 5, "The prevalence of the vanishing
gradient problem" and its problems. In a chain of one-neuron layers every backward step
multiplies the gradient by a term ``w * sigma'(z)`` with ``z = w*a + b`` (eq. 122). The
gradient does not vanish through that step only if

    |w sigma'(w a + b)| >= 1.

Because ``sigma'`` peaks at ``sigma'(0) = 1/4``, this needs ``|w| >= 4`` (problem 1), and
for ``|w| > 4`` it holds exactly for input activations ``a`` in one closed interval
(problem 2) whose width is (eq. 123)

    (2/|w|) ln( |w| (1 + sqrt(1 - 4/|w|)) / 2 - 1 ).

The width does not depend on ``b`` (``b`` only slides the interval), and over ``|w|`` it is
largest, about 0.448, at ``|w|`` about 6.89 (problem 3): even tuned perfectly, only a narrow
band of activations escapes the vanishing gradient.

Derivation used below. With ``u = sigma(z)``, ``sigma'(z) = u (1 - u)``, so the boundary
``|w| sigma'(z) = 1`` is the quadratic ``u^2 - u + 1/|w| = 0``:

    u_pm = (1 +- s) / 2,   s = sqrt(1 - 4/|w|),
    z_pm = ln(u_pm / (1 - u_pm)) = +- ln((1 + s) / (1 - s)),
    a    = (z - b) / w.

The set of ``z`` is the symmetric interval ``[-z*, z*]`` with ``z* = ln((1+s)/(1-s))``;
dividing by ``|w|`` gives the width ``2 z* / |w|``, which equals eq. 123 because
``(1+s)/(1-s) = (1+s)^2 |w| / 4 = |w|(1+s)/2 - 1`` (use ``s^2 = 1 - 4/|w|``).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

from .._validate import check_number

__all__ = [
    "sigmoid",
    "sigmoid_prime",
    "Interval",
    "has_solution",
    "admissible_interval",
    "interval_width",
    "max_interval_width",
    "plot_interval_width",
    "plot_admissible_interval",
]

_PLOT_HINT = 'matplotlib is needed for plotting: pip install "vgfast[plot]"'


def _import_pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(_PLOT_HINT) from exc
    return plt


def _axes(ax, plt):
    if ax is None:
        fig, ax = plt.subplots()
    else:
        fig = ax.figure
    return fig, ax


# --------------------------------------------------------------------------- sigmoid


def sigmoid(z):
    """The logistic function ``sigma(z) = 1 / (1 + exp(-z))``, without overflow.

    Parameters
    ----------
    z : float or array_like
        Weighted input(s).

    Returns
    -------
    float or ndarray
        ``sigma(z)`` in ``[0, 1]``. For ``z < 0`` it is evaluated as ``e^z / (1 + e^z)``
        so that ``exp`` never overflows and small values keep full relative precision.
    """
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(-np.abs(z))  # in (0, 1], never overflows
    out = np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    return out[()] if out.ndim == 0 else out


def sigmoid_prime(z):
    """Derivative of the logistic function, ``sigma'(z) = sigma(z) (1 - sigma(z))``.

    Evaluated as ``sigma(z) * sigma(-z)``, which keeps full relative precision in both
    tails (``1 - sigma(z)`` would cancel for large ``z``). ``sigma'(0) = 0.25`` exactly,
    the maximum (ch. 5, the plot of ``sigma'`` before the exploding-gradient section).

    Parameters
    ----------
    z : float or array_like
        Weighted input(s).

    Returns
    -------
    float or ndarray
        ``sigma'(z)`` in ``(0, 1/4]`` (0 only after underflow, ``|z| > ~745``).
    """
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(-np.abs(z))
    out = e / ((1.0 + e) * (1.0 + e))
    return out[()] if out.ndim == 0 else out


# ------------------------------------------------------------------ the interval


@dataclass(frozen=True)
class Interval:
    """The input activations ``a`` for which ``|w sigma'(w a + b)| >= 1``.

    Attributes
    ----------
    lo, hi : float
        Endpoints, ``lo <= hi``; at each one ``|w sigma'(w a + b)| = 1``. Both are ``nan``
        when the set is empty (``|w| < 4``).
    width : float
        ``hi - lo`` (0.0 when empty); equals eq. 123, ``interval_width(w)``, up to the rounding
        of the endpoints (relative to ``max(|lo|, |hi|)``: far from 0 use ``interval_width``).
    w, b : float
        The weight and bias the interval belongs to.
    """

    lo: float
    hi: float
    width: float
    w: float
    b: float

    @property
    def empty(self) -> bool:
        """True when no activation satisfies the inequality (``|w| < 4``)."""
        return math.isnan(self.lo)

    @property
    def center(self) -> float:
        """Where ``|w sigma'|`` peaks: ``a = -b / w`` (``z = 0``); nan when empty."""
        return 0.5 * (self.lo + self.hi)

    def __contains__(self, a) -> bool:
        return (not self.empty) and self.lo <= a <= self.hi


def has_solution(w) -> bool:
    """Whether ``|w sigma'(w a + b)| >= 1`` for some ``a`` (problem 1: iff ``|w| >= 4``).

    ``max_z |w| sigma'(z) = |w| / 4``, reached at ``z = 0``; ``b`` is irrelevant because it
    only shifts where in ``a`` that happens.
    """
    return abs(check_number(w, "w")) >= 4.0


def _z_star(absw: float) -> float:
    """Half-width in ``z`` of ``{z : |w| sigma'(z) >= 1}``, i.e. ``ln((1+s)/(1-s))``.

    Written as ``2 ln(1+s) + ln(|w|/4)`` (same number, since ``1 - s = 4 / (|w| (1+s))``),
    which does not cancel when ``s -> 1`` (large ``|w|``).
    """
    s = math.sqrt(max(0.0, 1.0 - 4.0 / absw))
    return 2.0 * math.log1p(s) + math.log(absw / 4.0)


def _f(a, w, b):
    """``|w| sigma'(w a + b) - 1``: positive inside the interval, zero at its endpoints."""
    return abs(w) * sigmoid_prime(w * a + b) - 1.0


def _check_wb(w, b):
    """w and b as finite floats (a TypeError for strings, bools and other non-numbers)."""
    return check_number(w, "w"), check_number(b, "b")


def admissible_interval(w, b=0.0, method="closed_form") -> Interval:
    """Input activations for which a neuron does not shrink the backpropagated gradient.

    The set ``{a : |w sigma'(w a + b)| >= 1}`` of ch. 5, problems 1-3. Each backward step
    through a one-neuron layer multiplies ``dC/db`` by ``w sigma'(z)`` (eq. 122); outside
    this interval that factor is below 1 in size and the gradient shrinks.

    Parameters
    ----------
    w : float
        Weight into the neuron. May be negative; the interval is then mirrored.
    b : float, default 0.0
        Bias of the neuron. Shifts the interval to be centred on ``a = -b / w``.
    method : {"closed_form", "root"}
        ``"closed_form"`` solves ``sigma(z)(1 - sigma(z)) = 1/|w|`` for ``sigma(z)`` (see the
        module docstring). ``"root"`` finds each endpoint with ``scipy.optimize.brentq`` on
        ``|w| sigma'(w a + b) - 1`` in a bracket either side of the peak ``a = -b/w``. The
        two agree to about 1e-14 relative to ``max(1, |a|)``.

    Returns
    -------
    Interval
        ``lo <= hi`` and ``width = hi - lo``. For ``|w| < 4`` the set is empty:
        ``lo = hi = nan``, ``width = 0.0``. For ``|w| = 4`` it is the single point
        ``-b / w``.

    Examples
    --------
    >>> iv = admissible_interval(6.894, b=1.0)
    >>> round(iv.width, 4)
    0.4477
    """
    w, b = _check_wb(w, b)
    if method not in ("closed_form", "root"):
        raise ValueError(f"method must be 'closed_form' or 'root', got {method!r}")
    absw = abs(w)
    if absw < 4.0:
        return Interval(math.nan, math.nan, 0.0, w, b)
    centre = -b / w
    if absw == 4.0:
        return Interval(centre, centre, 0.0, w, b)

    if method == "closed_form":
        zs = _z_star(absw)
        ends = ((-zs - b) / w, (zs - b) / w)
    else:
        from scipy.optimize import brentq

        # Outside |z| > ln|w| + 1 we have |w| sigma'(z) <= |w| e^{-|z|} < 1/e: a sign change
        # is guaranteed in [centre, centre +- step] because f(centre) = |w|/4 - 1 > 0.
        step = (math.log(absw) + 1.0) / absw
        kw = dict(xtol=1e-15, rtol=4 * np.finfo(float).eps, maxiter=500)
        left = brentq(_f, centre - step, centre, args=(w, b), **kw)
        right = brentq(_f, centre, centre + step, args=(w, b), **kw)
        ends = (left, right)
    lo, hi = min(ends), max(ends)
    return Interval(float(lo), float(hi), float(hi - lo), w, b)


def interval_width(w):
    """Width of the admissible interval, eq. 123, vectorised over ``w``.

    ``(2/|w|) ln(|w| (1 + sqrt(1 - 4/|w|)) / 2 - 1)`` for ``|w| > 4``, and 0 for
    ``|w| <= 4`` (empty set or a single point). Independent of the bias ``b``.

    Parameters
    ----------
    w : float or array_like
        Weight(s).

    Returns
    -------
    float or ndarray
        The width in units of input activation, same shape as ``w``.

    Raises
    ------
    TypeError
        ``w`` is not real numbers (strings, booleans, objects).
    ValueError
        ``w`` holds NaN or Inf.

    Notes
    -----
    Evaluated as ``2 z* / |w|`` with ``z* = 2 ln(1 + s) + ln(|w| / 4)``, ``s = sqrt(1 - 4/|w|)``
    (the same number; see the module docstring), which neither overflows for ``|w|`` near
    the float maximum (eq. 123's ``|w| (1 + s)`` would) nor cancels for large ``|w|``: the
    width is about ``2 ln|w| / |w|`` there, e.g. 1.4e-305 at ``|w| = 1e308``.
    """
    if isinstance(w, (str, bytes)):
        raise TypeError(f"w must be a number or an array of numbers; got {w!r}")
    if isinstance(w, numbers.Real) and not isinstance(w, (bool, np.bool_)):
        w = float(w)  # also a Python int beyond int64
    arr = np.asarray(w)
    if arr.dtype.kind not in "fiu" or arr.dtype.kind == "b":
        raise TypeError(f"w must be real numbers; got dtype {arr.dtype}")
    absw = np.abs(arr.astype(np.float64))
    if not np.isfinite(absw).all():
        raise ValueError(f"w must be finite; got {'NaN' if np.isnan(absw).any() else 'Inf'}")
    ok = absw > 4.0
    safe = np.where(ok, absw, 8.0)  # any value > 4, just to keep the formula warning-free
    s = np.sqrt(1.0 - 4.0 / safe)
    width = (2.0 / safe) * (2.0 * np.log1p(s) + np.log(safe / 4.0))
    out = np.where(ok, width, 0.0)
    return out[()] if out.ndim == 0 else out


def max_interval_width(xatol=1e-12):
    """The weight size at which the admissible interval is widest, and that width.

    Maximises eq. 123 over ``|w|`` with ``scipy.optimize.minimize_scalar`` (bounded, on
    ``4 < |w| < 40``; the width is 0 at 4, rises to one peak and then decays like
    ``2 ln|w| / |w|``). Ch. 5, problem 3: "about 6.9" and "about 0.45".

    Parameters
    ----------
    xatol : float, default 1e-12
        Absolute tolerance on ``|w|``.

    Returns
    -------
    w_star : float
        Maximising ``|w|``, about 6.8942.
    width_star : float
        The largest possible width of the interval of input activations, about 0.4477.
    """
    from scipy.optimize import minimize_scalar

    xatol = check_number(xatol, "xatol", low=0, low_open=True)
    res = minimize_scalar(
        lambda x: -float(interval_width(x)),
        bounds=(4.0, 40.0),
        method="bounded",
        options={"xatol": xatol, "maxiter": 1000},
    )
    if not res.success:  # pragma: no cover
        raise RuntimeError(f"minimize_scalar failed: {res.message}")
    return float(res.x), float(-res.fun)


# ------------------------------------------------------------------------ plots


def plot_interval_width(ax=None, w_max=30.0):
    """Plot eq. 123, the width of the admissible interval, against ``|w|``.

    Parameters
    ----------
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure is made if omitted.
    w_max : float, default 30
        Right end of the ``|w|`` axis.

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _import_pyplot()
    fig, ax = _axes(ax, plt)
    w = np.linspace(0.0, float(w_max), 2001)
    ax.plot(w, interval_width(w), label="width of {a : |w σ'(wa+b)| ≥ 1}")
    w_star, width_star = max_interval_width()
    ax.axvline(4.0, color="0.6", lw=0.8, ls=":")
    ax.plot([w_star], [width_star], "o", color="C3",
            label=f"max {width_star:.4f} at |w| = {w_star:.3f}")
    ax.set_xlabel("|w|")
    ax.set_ylabel("interval width (eq. 123)")
    ax.set_title("Input activations that avoid a vanishing gradient")
    ax.legend()
    return fig


def plot_admissible_interval(w, b=0.0, ax=None):
    """Plot ``|w sigma'(w a + b)|`` against ``a`` with the line at 1 and the interval shaded.

    Parameters
    ----------
    w, b : float
        Weight and bias of the neuron.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure is made if omitted.

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _import_pyplot()
    fig, ax = _axes(ax, plt)
    w, b = _check_wb(w, b)
    iv = admissible_interval(w, b)
    if w == 0.0:
        centre, half = 0.0, 1.0
    else:
        centre = -b / w
        half = max(3.0 * iv.width, 4.0 / abs(w)) if not iv.empty else 6.0 / abs(w)
    a = np.linspace(centre - half, centre + half, 1001)
    ax.plot(a, np.abs(w) * sigmoid_prime(w * a + b), label=f"|w σ'(wa+b)|, w={w:g}, b={b:g}")
    ax.axhline(1.0, color="k", lw=0.8, ls="--", label="1")
    if not iv.empty:
        ax.axvspan(iv.lo, iv.hi, color="C2", alpha=0.25,
                   label=f"[{iv.lo:.4g}, {iv.hi:.4g}], width {iv.width:.4g}")
    ax.set_xlabel("input activation a")
    ax.set_ylabel("|w σ'(wa+b)|")
    ax.legend()
    return fig
