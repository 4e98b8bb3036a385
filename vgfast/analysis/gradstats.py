"""Gradient statistics of a mini-batch: Cockpit's first-order instruments in closed form.

Cockpit (Schneider, Dangel & Hennig 2021, built on BackPACK) records, during training, how the
examples' gradients scatter around their mean: the norm, inner-product and orthogonality tests,
the gradient noise scale, the gradient signal-to-noise ratio. It forms every per-example
gradient with autograd. For a fully connected network none of them needs a per-example
gradient: example ``i``'s gradient with respect to layer ``l`` is the outer product
``delta_i^l (a_i^{l-1})^T`` (weights) and ``delta_i^l`` (biases), so every sum over examples is
a product of the matrices ``D^l`` (per-example ``dC_i/dz^l``, rows) and ``A^{l-1}`` (the layer's
inputs, rows) that one :meth:`vgfast.Network.trace` call returns.

Notation: ``m`` rows; ``g_i`` the gradient of example ``i``'s own cost (no regularisation),
``gbar = (1/m) sum_i g_i`` (the gradient of the mean cost); per layer ``l`` (0 = first weight
layer) ``D`` is ``(m, n_l)``, ``A`` is ``(m, n_{l-1})``, ``Gbar = D^T A / m`` and
``gbar_b = D^T 1 / m``. Closed forms (``*`` elementwise, ``rowsum`` over columns)::

    ||g_i^l||^2      = ||delta_i||^2 (||a_i||^2 + 1)
    g_i^l . gbar^l   = rowsum(D * (A Gbar^T))_i + (D gbar_b)_i
    sum_i (g_i)_j^2  = (D*D)^T (A*A)   (weights),   (D*D)^T 1   (biases)

and whole-network values are sums over layers. See :func:`gradient_statistics` for the
quantities and their papers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["GSNR_EPSILON", "GradientStatistics", "gradient_statistics"]

#: Cockpit's MeanGSNR stabiliser (``cockpit.quantities.MeanGSNR(epsilon=1e-5)``)
GSNR_EPSILON = 1e-5


@dataclass(frozen=True, eq=False)
class GradientStatistics:
    """How the per-example gradients of one batch scatter around their mean.

    ``g_i``: the gradient of example ``i``'s own cost (no regularisation) with respect to all
    weights and biases; ``gbar`` their mean; ``m`` the number of rows. Per-layer arrays have one
    entry per weight layer (index 0 = first hidden layer, output layer last) and take the layer's
    weights and biases together.

    Attributes
    ----------
    m : int
        Number of rows (examples).
    sq_norms : ndarray, shape (m,)
        ``||g_i||^2``.
    grad_norm : float
        ``||gbar||``: the norm of the gradient of the mean cost.
    trace_cov : float
        ``sum_i ||g_i - gbar||^2 / (m - 1)``: the trace of the sample covariance of the g_i.
    noise_scale : float
        ``trace_cov / ||gbar||^2``: the simple gradient noise scale B_simple of McCandlish et al.
        (2018), "An empirical model of large-batch training".
    norm_test : float
        ``sqrt(trace_cov / (m ||gbar||^2))``: the largest theta for which the norm test of Byrd
        et al. (2012), eq. 3.9, passes (Cockpit's ``NormTest``).
    inner_test : float
        ``sqrt(sum_i (g_i.gbar - ||gbar||^2)^2 / (m - 1) / (m ||gbar||^4))``: the largest theta
        for which the inner-product test of Bollapragada et al. (2018), eq. 2.6, passes
        (Cockpit's ``InnerTest``).
    ortho_test : float
        ``sqrt(sum_i ||g_i - (g_i.gbar / ||gbar||^2) gbar||^2 / (m - 1) / (m ||gbar||^2))``:
        the largest nu for which the orthogonality test of Bollapragada et al. (2018), eq. 3.3,
        passes (Cockpit's ``OrthoTest``).
    gsnr : float
        ``mean_j gbar_j^2 / (sum_i g_ij^2 / m - gbar_j^2 + epsilon)`` over every weight and bias
        ``j``: the mean gradient signal-to-noise ratio of Liu et al. (2020) as Cockpit's
        ``MeanGSNR`` computes it (variance with 1/m, epsilon 1e-5 by default).
    layer_grad_norm, layer_trace_cov, layer_noise_scale, layer_norm_test, layer_gsnr :
    ndarray, shape (L,)
        The same quantities restricted to layer ``l``'s parameters ``(W^l, b^l)``:
        ``g_i^l``, ``gbar^l`` in place of ``g_i``, ``gbar``, and ``m`` unchanged. For
        ``layer_gsnr`` the mean runs over the layer's ``n_l (n_{l-1} + 1)`` parameters.
    epsilon : float
        The GSNR stabiliser used.

    Notes
    -----
    Undefined values are NaN, never an error:

    - ``m == 1``: a single example has no sample variance, so ``trace_cov``, ``noise_scale``,
      ``norm_test``, ``inner_test``, ``ortho_test``, ``gsnr`` and their per-layer versions are
      NaN (Cockpit's formulas divide by ``m - 1``; its MeanGSNR would return
      ``gbar_j^2 / epsilon``, a number that measures only epsilon). ``sq_norms`` and
      ``grad_norm`` are defined.
    - ``||gbar|| == 0`` (e.g. every delta zero; per layer, a layer of dead ReLUs): the ratios
      ``noise_scale``, ``norm_test``, ``inner_test``, ``ortho_test`` are NaN (0/0 or x/0; the
      tests have no direction to test). ``trace_cov`` and ``gsnr`` (= 0) stay defined. The same
      holds layer by layer when ``||gbar^l|| == 0``.
    """

    m: int
    sq_norms: np.ndarray
    grad_norm: float
    trace_cov: float
    noise_scale: float
    norm_test: float
    inner_test: float
    ortho_test: float
    gsnr: float
    layer_grad_norm: np.ndarray
    layer_trace_cov: np.ndarray
    layer_noise_scale: np.ndarray
    layer_norm_test: np.ndarray
    layer_gsnr: np.ndarray
    epsilon: float = GSNR_EPSILON


def _check(net, epsilon):
    from ..network import Network

    if not isinstance(net, Network):
        raise TypeError(f"net must be a vgfast.Network; got {type(net).__name__}")
    if any(net.batch_norm):
        raise ValueError(
            "gradient_statistics: net is batch-normalised (batch_norm=True). Under batch "
            "statistics each example's gradient depends on every other row of the batch, so the "
            "per-example gradients g_i these statistics describe are not defined (and with "
            "running statistics they would describe a different function from the one trained); "
            "use a network without batch normalisation")
    if (isinstance(epsilon, (bool, np.bool_)) or not isinstance(epsilon, (int, float, np.number))
            or not np.isfinite(epsilon) or epsilon <= 0):
        raise ValueError(f"epsilon must be a finite positive number (the GSNR stabiliser, "
                         f"Cockpit's 1e-5); got {epsilon!r}")
    return float(epsilon)


def _layer_sums(D, A, epsilon):
    """Per-layer sums from D (m, n_out) and A (m, n_in), both float64.

    Returns (sq, dots, gbar_sq, gsnr_sum, n_params) with sq[i] = ||g_i^l||^2,
    dots[i] = g_i^l . gbar^l, gbar_sq = ||gbar^l||^2, gsnr_sum = sum_j gbar_j^2 / (var_j + eps).
    """
    m = D.shape[0]
    # Gbar = (1/m) sum_i delta_i a_i^T ; gbar_b = (1/m) sum_i delta_i
    Gbar = D.T @ A
    Gbar /= m
    gbar_b = D.sum(axis=0) / m
    D2, A2 = D * D, A * A
    # ||g_i||^2 = ||delta_i||^2 (||a_i||^2 + 1)
    sq = D2.sum(axis=1) * (A2.sum(axis=1) + 1.0)
    # g_i . gbar = sum_k delta_ik (Gbar a_i)_k + delta_i . gbar_b
    P = A @ Gbar.T
    P += gbar_b
    dots = np.einsum("ik,ik->i", D, P)
    G2, gb2 = Gbar * Gbar, gbar_b * gbar_b
    gbar_sq = float(G2.sum() + gb2.sum())
    # gsnr_j = gbar_j^2 / (var_j + eps), var_j = (1/m) sum_i g_ij^2 - gbar_j^2, the 1/m variance
    # of parameter j's gradient (clamped at 0 against rounding: it is a sum of squares)
    gsnr_sum = 0.0
    for S, g2 in ((D2.T @ A2, G2), (D2.sum(axis=0), gb2)):
        S /= m
        S -= g2
        np.maximum(S, 0.0, out=S)
        S += epsilon
        np.divide(g2, S, out=S)
        gsnr_sum += float(S.sum())
    return sq, dots, gbar_sq, gsnr_sum, Gbar.size + gbar_b.size


def _ratio(num, den):
    """num / den, NaN where den == 0 (documented: the tests are undefined at gbar = 0)."""
    num, den = np.asarray(num, float), np.asarray(den, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def gradient_statistics(net, X, Y, *, epsilon=GSNR_EPSILON):
    """Cockpit's first-order gradient statistics of one batch, at the current parameters.

    Every quantity of :class:`GradientStatistics` from the per-example deltas and activations
    of one :meth:`vgfast.Network.trace` call, with matrix products over the rows (BLAS); no
    per-example gradient is formed. Cost: the trace plus three GEMMs of a layer's weight
    gradient's size per layer (``Gbar = D^T A``, ``A Gbar^T``, ``(D*D)^T (A*A)``); about 3.6
    times ``net.gradient`` at batch 100 on ``[784, 30, 30, 30, 10]`` (bench/README.md).

    Parameters
    ----------
    net : vgfast.Network
        Without batch normalisation (refused: per-example gradients are not independent under
        batch statistics).
    X : array (m, n_in)
        The batch, examples as rows (finite floats).
    Y : array (m,) of int labels or (m, n_out) targets
    epsilon : float, keyword-only
        The GSNR stabiliser (Cockpit's default 1e-5), > 0.

    Returns
    -------
    GradientStatistics
        ``sq_norms``, ``grad_norm``, ``trace_cov``, ``noise_scale``, ``norm_test``,
        ``inner_test``, ``ortho_test``, ``gsnr``, and per layer ``layer_grad_norm``,
        ``layer_trace_cov``, ``layer_noise_scale``, ``layer_norm_test``, ``layer_gsnr``.
        NaN where undefined (``m == 1``; ratios at ``||gbar|| == 0``): see its Notes.

    Raises
    ------
    TypeError
        ``net`` is not a Network; X is not a float array.
    ValueError
        Batch-normalised ``net``; bad ``epsilon``; X/Y of the wrong shape, non-finite, labels
        out of range (as :meth:`~vgfast.Network.gradient`).
    FloatingPointError
        The deltas, activations or their squares overflow (parameters or inputs too large for
        these sums to be finite).

    Notes
    -----
    The definitions are those of vgfast issue 12, which match Cockpit's code
    (``cockpit/quantities/{norm,inner,ortho}_test.py``, ``mean_gsnr.py``) exactly: Cockpit's
    BackPACK ``BatchGrad`` holds ``g_i / m`` (mean reduction) and its formulas rescale it, so
    its sample variances divide by ``m - 1`` and its GSNR variance by ``m``, as here. Cockpit
    has no noise scale; ``noise_scale`` is McCandlish et al.'s B_simple with the same unbiased
    ``trace_cov``, so ``noise_scale = m * norm_test**2``.

    Every sum is accumulated in float64 whatever the network's dtype: for a float32 network the
    result is that of the float32 deltas and activations, exactly to float64 rounding.
    ``trace_cov`` is formed as ``(sum_i ||g_i||^2 - m ||gbar||^2) / (m - 1)`` (and the GSNR
    variances likewise), whose relative rounding error is about ``1e-16 (1 + 1/noise_scale)``;
    a result below zero by rounding is clamped to 0.

    References
    ----------
    Schneider, Dangel & Hennig (2021), Cockpit: a practical debugging tool for the training of
    deep neural networks, NeurIPS. Byrd, Chin, Nocedal & Wu (2012), Sample size selection in
    optimization methods for machine learning, Math. Program. 134. Bollapragada, Byrd & Nocedal
    (2018), Adaptive sampling strategies for stochastic optimization, SIAM J. Optim. 28.
    McCandlish, Kaplan, Amodei et al. (2018), An empirical model of large-batch training,
    arXiv:1812.06162. Liu et al. (2020), Understanding why neural networks generalize well
    through GSNR of parameters, ICLR.

    Examples
    --------
    >>> import numpy as np, vgfast
    >>> net = vgfast.Network([4, 3, 2], seed=0)
    >>> rng = np.random.default_rng(0)
    >>> s = vgfast.analysis.gradient_statistics(net, rng.random((8, 4)), rng.integers(0, 2, 8))
    >>> bool(np.isclose(s.noise_scale, 8 * s.norm_test ** 2))
    True
    """
    epsilon = _check(net, epsilon)
    _, acts, deltas = net.trace(X, Y)
    m = deltas[0].shape[0]
    L = len(deltas)
    sq = np.zeros(m)
    dots = np.zeros(m)
    layer_sq_sum, layer_gbar_sq = np.empty(L), np.empty(L)
    layer_gsnr_sum, layer_n = np.empty(L), np.empty(L)
    with np.errstate(over="ignore", invalid="ignore"):
        for l in range(L):
            D = np.asarray(deltas[l], np.float64)
            A = np.asarray(acts[l], np.float64)
            s, d, gbar_sq, gsnr_sum, n = _layer_sums(D, A, epsilon)
            # (the sum of ||g_i||^2 bounds every other sum here: finite, nothing overflowed)
            if not (np.isfinite(s.sum()) and np.isfinite(d).all() and np.isfinite(gsnr_sum)):
                raise FloatingPointError(
                    f"gradient_statistics: the per-example gradient sums of layer {l} overflow "
                    f"(max |delta| = {np.max(np.abs(D)):.3g}, max |a| = {np.max(np.abs(A)):.3g});"
                    f" the parameters or inputs are too large for these statistics")
            sq += s
            dots += d
            layer_sq_sum[l], layer_gbar_sq[l] = s.sum(), gbar_sq
            layer_gsnr_sum[l], layer_n[l] = gsnr_sum, n
    gbar_sq = float(layer_gbar_sq.sum())
    # sum_i ||g_i - gbar||^2 = sum_i ||g_i||^2 - m ||gbar||^2 (whole net and per layer)
    layer_ss = np.maximum(layer_sq_sum - m * layer_gbar_sq, 0.0)
    ss = max(float(sq.sum()) - m * gbar_sq, 0.0)
    # sum_i (g_i.gbar - ||gbar||^2)^2: the projections' squared deviations
    inner_ss = float(np.sum((dots - gbar_sq) ** 2))
    # sum_i ||g_i - (g_i.gbar/||gbar||^2) gbar||^2 = sum_i ||g_i||^2 - (g_i.gbar)^2/||gbar||^2
    ortho_ss = (max(float(sq.sum()) - float(np.sum(dots * dots)) / gbar_sq, 0.0)
                if gbar_sq > 0 else np.nan)
    if m > 1:
        trace_cov, layer_trace_cov = ss / (m - 1), layer_ss / (m - 1)
        inner_var, ortho_var = inner_ss / (m - 1), ortho_ss / (m - 1)
        gsnr = float(layer_gsnr_sum.sum() / layer_n.sum())
        layer_gsnr = layer_gsnr_sum / layer_n
    else:
        trace_cov, inner_var, ortho_var, gsnr = np.nan, np.nan, np.nan, np.nan
        layer_trace_cov, layer_gsnr = np.full(L, np.nan), np.full(L, np.nan)
    noise_scale = float(_ratio(trace_cov, gbar_sq))
    layer_noise_scale = _ratio(layer_trace_cov, layer_gbar_sq)
    return GradientStatistics(
        m=m,
        sq_norms=sq,
        grad_norm=float(np.sqrt(gbar_sq)),
        trace_cov=float(trace_cov),
        noise_scale=noise_scale,
        norm_test=float(np.sqrt(noise_scale / m)),
        inner_test=float(_ratio(np.sqrt(inner_var / m), gbar_sq)),
        ortho_test=float(np.sqrt(_ratio(ortho_var, m * gbar_sq))),
        gsnr=gsnr,
        layer_grad_norm=np.sqrt(layer_gbar_sq),
        layer_trace_cov=layer_trace_cov,
        layer_noise_scale=layer_noise_scale,
        layer_norm_test=np.sqrt(layer_noise_scale / m),
        layer_gsnr=layer_gsnr,
        epsilon=epsilon,
    )
