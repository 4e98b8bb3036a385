"""The speed of learning of each layer: Nielsen's ||delta^l|| and its relatives.

Nielsen, *Neural Networks and Deep Learning*, ch. 5, "The vanishing gradient problem": write
``delta^l_j = dC/db^l_j`` for the gradient with respect to the bias of neuron ``j`` in layer
``l`` (eq. BP3 of ch. 2: ``dC/db^l_j = delta^l_j``); the vector ``delta^l`` of a layer is a
measure of how fast that layer learns, and its length ``||delta^l||`` is the book's "speed of
learning" of the layer. For ``[784, 30, 30, 10]`` at initialisation the book finds
``||delta^1|| ~ 0.07`` and ``||delta^2|| ~ 0.31``: the earlier hidden layer learns slower.

Here ``C`` is the mean cost over the given rows (the book averages over 1000 training images),
so ``delta^l`` is the batch mean of the per-example ``dC/db^l``. Everything is computed from one
:meth:`vgfast.Network.trace` call (per-example ``dC/dz^l``, which equals ``dC/db^l``) per chunk
of rows; no Python loop runs over examples.

Layers are indexed from 0, as in ``net.biases`` and the columns of ``History.grad_norms``:
index ``l`` is the weight layer ``l + 1`` of the book (hidden layer ``l + 1``); the output
layer is last.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["GradientNorms", "gradient_norms", "neuron_gradients", "plot_neuron_gradients",
           "plot_speed", "speed_ratio"]


def _check_net(net):
    from ..network import Network

    if not isinstance(net, Network):
        raise TypeError(f"net must be a vgfast.Network; got {type(net).__name__}")


def _check_plain(net, what):
    """Refuse batch-normalised networks where the formulas assume z = W a + b feeds f."""
    if any(getattr(net, "batch_norm", ())):
        raise NotImplementedError(
            f"{what} is not implemented for batch-normalised layers (batch_norm=True): the "
            f"formulas assume z^l = W^l a^{{l-1}} + b^l feeds the activation directly")


def _check_chunk(chunk):
    if isinstance(chunk, bool) or not isinstance(chunk, (int, np.integer)) or chunk < 1:
        raise ValueError(f"chunk must be a positive integer (rows per engine call); got {chunk!r}")
    return int(chunk)


def _rows(net, X, name="X"):
    """X validated as the network does (2-D, finite, right width), in the network's dtype."""
    return net._X(X, name)[0]


def _chunks(n, chunk):
    return [(s, min(s + chunk, n)) for s in range(0, n, chunk)]


@dataclass(frozen=True, eq=False)
class GradientNorms:
    """Per-layer gradient norms over a set of rows (index 0 = first hidden layer, output last).

    Attributes
    ----------
    batch : ndarray, shape (L,)
        ``||delta^l||`` with ``delta^l = (1/n) sum_x dC_x/db^l``: the length of the gradient of
        the mean cost with respect to the layer's biases -- Nielsen's "speed of learning" of
        layer ``l`` (ch. 5, the vectors ``delta^1, delta^2`` of the bar diagram). This is also
        what ``train(record=("grad_norms",))`` records per mini-batch.
    hidden : ndarray, shape (L - 1,)
        ``batch`` without the output layer: the hidden layers, the book's plotted quantity.
    per_example_mean : ndarray, shape (L,)
        ``(1/n) sum_x ||dC_x/db^l||``: the mean length of the per-example gradient. It is at
        least ``batch`` (triangle inequality); the gap measures how much the examples' gradients
        cancel in the mean.
    weights : ndarray, shape (L,)
        ``||dC/dW^l||_F`` of the mean cost (BP4, ``dC/dw^l_jk = a^{l-1}_k delta^l_j``, averaged).
    cost : float
        Mean cost over the rows (no regularisation).
    n : int
        Number of rows.
    """

    batch: np.ndarray
    hidden: np.ndarray
    per_example_mean: np.ndarray
    weights: np.ndarray
    cost: float
    n: int

    def ratio(self):
        """``||delta^last hidden|| / ||delta^first hidden||``; see :func:`speed_ratio`."""
        return speed_ratio(self)


def gradient_norms(net, X, Y, chunk=8192):
    """The speed of learning ``||delta^l||`` of every layer over the rows of ``X``.

    Parameters
    ----------
    net : vgfast.Network
    X : array (n, n_in)
        Inputs as rows.
    Y : array (n,) of int labels or (n, n_out) targets
    chunk : int
        Rows per engine call (:meth:`~vgfast.Network.trace` keeps ``chunk`` rows of every
        layer's z, a and delta in memory).

    Returns
    -------
    GradientNorms
        ``batch`` (``||delta^l||`` of the mean gradient, Nielsen ch. 5), ``hidden``,
        ``per_example_mean``, ``weights`` (``||dC/dW^l||_F``), ``cost``, ``n``.

    Notes
    -----
    Batch-normalised layers are evaluated with their running statistics (inference mode, as
    :meth:`~vgfast.Network.trace` does); ``delta^l`` is then ``dC/db^l`` before the
    normalisation.

    ``delta^l_j = dC/db^l_j`` (ch. 2, eq. BP3). The per-example ``dC_x/dz^l`` come from the
    compiled engine's backward pass; ``delta^l`` is their mean, so ``batch`` equals the norms of
    ``net.gradient(X, Y).biases``.
    """
    _check_net(net)
    chunk = _check_chunk(chunk)
    X = _rows(net, X)
    n = X.shape[0]
    Y = np.asarray(Y)
    net._Y(Y, n)  # validate once, with the message naming Y
    L = net.L
    sum_db = [np.zeros(s) for s in net.sizes[1:]]
    sum_dw = [np.zeros((o, i)) for i, o in zip(net.sizes[:-1], net.sizes[1:])]
    sum_norm = np.zeros(L)
    for s, e in _chunks(n, chunk):
        zs, acts, deltas = net.trace(X[s:e], Y[s:e])
        for l in range(L):
            d = np.asarray(deltas[l], np.float64)
            sum_db[l] += d.sum(axis=0)
            # sum_x delta_x a_x^T, the BP4 numerator, one GEMM per layer
            sum_dw[l] += d.T @ np.asarray(acts[l], np.float64)
            sum_norm[l] += np.sqrt(np.einsum("ij,ij->i", d, d)).sum()
    batch = np.array([np.linalg.norm(b / n) for b in sum_db])
    weights = np.array([np.linalg.norm(w / n) for w in sum_dw])
    cost = float(net.cost(X, Y))
    return GradientNorms(batch=batch, hidden=batch[:-1].copy(), per_example_mean=sum_norm / n,
                         weights=weights, cost=cost, n=n)


def _hidden_layer(net, layer):
    if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)):
        raise TypeError(f"layer must be an integer (0 = first hidden layer); got {layer!r}")
    n_hidden = net.L - 1
    if n_hidden < 1:
        raise ValueError("the network has no hidden layer (sizes has only input and output)")
    if not -n_hidden <= layer < n_hidden:
        raise ValueError(f"layer must index a hidden layer, 0..{n_hidden - 1} (0 = first hidden "
                         f"layer, the book's 'hidden layer 1'); got {layer}")
    return int(layer) % n_hidden


def neuron_gradients(net, X, Y, layer, k=6):
    """``dC/db^l_j`` for the first ``k`` neurons of a hidden layer: the book's bar diagram.

    Parameters
    ----------
    net : vgfast.Network
    X, Y : the rows (the book uses the first 1000 training images).
    layer : int
        Hidden layer, 0-based (0 is the book's "hidden layer 1").
    k : int
        Number of neurons (the book shows 6).

    Returns
    -------
    ndarray (min(k, n_l),)
        ``delta^l_j = dC/db^l_j`` of the mean cost, ``j = 0..k-1`` (Nielsen ch. 5, the bars of
        the figure for ``[784, 30, 30, 10]``: the bars of hidden layer 1 are much shorter than
        those of hidden layer 2).
    """
    _check_net(net)
    layer = _hidden_layer(net, layer)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer; got {k!r}")
    g = net.gradient(X, Y)
    return np.array(g.biases[layer][:k], dtype=np.float64)


def plot_neuron_gradients(net, X, Y, k=6, ax=None, title="dC/db for the first neurons"):
    """Bars of ``dC/db^l_j`` for the first ``k`` neurons of every hidden layer (Nielsen ch. 5).

    One group of bars per hidden layer, side by side, so the shorter bars of the earlier
    layers show the vanishing gradient. Returns the matplotlib Figure.
    """
    from vgfast._plot import plt_axes

    _check_net(net)
    if net.L < 2:
        raise ValueError("the network has no hidden layer to plot")
    g = net.gradient(X, Y)
    fig, ax = plt_axes(ax, figsize=(max(6, 1.2 * (net.L - 1) * min(k, 10)), 4))
    pos = 0
    ticks, labels = [], []
    for l in range(net.L - 1):
        vals = np.asarray(g.biases[l][:k], np.float64)
        x = pos + np.arange(len(vals))
        ax.bar(x, vals, width=0.8, label=f"hidden layer {l + 1}: "
               f"||delta|| = {np.linalg.norm(g.biases[l]):.3g}")
        ticks.extend(x.tolist())
        labels.extend(str(j + 1) for j in range(len(vals)))
        pos += len(vals) + 1
    ax.axhline(0, color="k", lw=0.6)
    ax.set_xticks(ticks)
    ax.set_xticklabels(labels)
    ax.set_xlabel("neuron")
    ax.set_ylabel(r"$\partial C / \partial b^l_j$")
    ax.set_title(title)
    ax.legend(fontsize="small")
    return fig


def _norm_matrix(norms):
    """(records, L) array from a History, an array, a GradientNorms or a list of them."""
    if isinstance(norms, GradientNorms):
        return norms.batch[None, :]
    if hasattr(norms, "grad_norms") and not isinstance(norms, np.ndarray):
        g = np.asarray(norms.grad_norms, np.float64)
        if g.size == 0:
            raise ValueError("no grad_norms recorded: train with record=('grad_norms',)")
        return g
    if isinstance(norms, (list, tuple)) and norms and isinstance(norms[0], GradientNorms):
        return np.array([g.batch for g in norms])
    g = np.asarray(norms, np.float64)
    if g.ndim == 1:
        g = g[None, :]
    if g.ndim != 2:
        raise ValueError(f"norms must be (L,) or (records, L); got shape {g.shape}")
    return g


def speed_ratio(norms):
    """``||delta^last hidden|| / ||delta^first hidden||``: how much slower layer 1 learns.

    Parameters
    ----------
    norms : GradientNorms, History, list of GradientNorms, or array (L,) / (records, L)
        Per-layer ``||delta^l||`` with the output layer last (the layout of
        ``GradientNorms.batch`` and ``History.grad_norms``).

    Returns
    -------
    float for a single set of norms, ndarray (records,) for a history.
        Values above 1 mean the gradient shrinks towards the input (vanishing gradient; about
        4.5 for the book's ``[784, 30, 30, 10]`` at initialisation, about 100 for four hidden
        layers).
    """
    single = isinstance(norms, GradientNorms) or (
        not hasattr(norms, "grad_norms") and np.ndim(norms) == 1)
    g = _norm_matrix(norms)
    if g.shape[1] < 3:
        raise ValueError("speed_ratio needs norms for at least two hidden layers (plus the "
                         f"output layer); got {g.shape[1]} layers")
    with np.errstate(divide="ignore", invalid="ignore"):
        r = g[:, -2] / g[:, 0]
    return float(r[0]) if single else r


def plot_speed(history, ax=None, title="Speed of learning"):
    """``||delta^l||`` of every hidden layer against training time, on a log scale.

    Nielsen ch. 5's figure of the speed of learning during training: with sigmoid units the
    curves stay ordered, the first hidden layer the slowest.

    Parameters
    ----------
    history : History (trained with ``record=("grad_norms",)``), array (records, L), or a list
        of GradientNorms.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    from vgfast._plot import plt_axes

    g = _norm_matrix(history)
    fig, ax = plt_axes(ax)
    x = np.arange(g.shape[0])
    for l in range(max(g.shape[1] - 1, 1)):
        ax.plot(x, g[:, l], label=f"hidden layer {l + 1}")
    ax.set_yscale("log")
    per_epoch = hasattr(history, "epochs") and g.shape[0] == getattr(history, "epochs", -1)
    ax.set_xlabel("epoch" if per_epoch else "record")
    ax.set_ylabel(r"$\|\delta^l\|$")
    ax.set_title(title)
    ax.legend()
    return fig
