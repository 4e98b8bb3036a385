"""Gradients: engine and _reference against central finite differences, for every
hidden activation x (output, cost) pair, in float64 and float32."""
import itertools

import numpy as np
import pytest

import vgfast
from vgfast import _reference as R
from vgfast.network import HIDDEN, VALID_PAIRS

from conftest import fd_gradient, rel_err

PAIRS = sorted(VALID_PAIRS)


def make_problem(act, output, cost, dtype="float64", seed=0, labels=True, sizes=(5, 4, 3, 3)):
    net = vgfast.Network(list(sizes), activation=act, output=output, cost=cost, dtype=dtype,
                         seed=seed, leaky_slope=-0.3 if act == "leaky_relu" else 0.01,
                         elu_alpha=0.7)
    rng = np.random.default_rng(seed + 1)
    X = rng.normal(size=(6, sizes[0]))
    if labels:
        Y = rng.integers(0, sizes[-1], 6)
    else:
        Y = rng.random((6, sizes[-1]))
        if output == "softmax":
            Y /= Y.sum(axis=1, keepdims=True)
    return net, X, Y


@pytest.mark.parametrize("act", sorted(HIDDEN))
@pytest.mark.parametrize("output,cost", PAIRS)
@pytest.mark.parametrize("labels", [True, False])
def test_gradient_matches_finite_differences_float64(act, output, cost, labels):
    net, X, Y = make_problem(act, output, cost, labels=labels)
    g = net.gradient(X, Y)
    fd = fd_gradient(net, X, Y)
    assert rel_err(g.flat, fd) < 1e-6
    # the numpy reference computes the same gradient to rounding error
    gr, cr, _ = R.backprop(net, net.params, X, Y)
    assert rel_err(g.flat, gr) < 1e-12
    assert abs(g.cost - cr) <= 1e-12 * abs(cr)


@pytest.mark.parametrize("act", sorted(HIDDEN))
@pytest.mark.parametrize("output,cost", PAIRS)
def test_gradient_float32(act, output, cost):
    """float32 against the float64 finite differences at the same (float32) parameters.

    Bound: each gradient entry is a sum of a few products, each with relative rounding error
    of a few float32 epsilons (6e-8), so 1e-5 relative is a generous but meaningful bound
    (float64 FD noise is ~1e-9 here); a wrong formula gives O(1) errors.
    """
    net32, X, Y = make_problem(act, output, cost, dtype="float32")
    net64 = vgfast.Network(net32.sizes, activation=act, output=output, cost=cost,
                           leaky_slope=net32.leaky_slope, elu_alpha=net32.elu_alpha)
    X = X.astype(np.float32).astype(np.float64)
    net64.params[...] = net32.params
    g32 = net32.gradient(X.astype(np.float32), Y)
    assert g32.flat.dtype == np.float32
    fd = fd_gradient(net64, X, Y)
    assert rel_err(g32.flat, fd) < 1e-5


def test_gradient_views_and_book_shapes():
    net = vgfast.Network([4, 3, 2], seed=1)
    X = np.random.default_rng(0).random((5, 4))
    g = net.gradient(X, np.array([0, 1, 1, 0, 1]))
    assert [w.shape for w in g.weights] == [(3, 4), (2, 3)]
    assert [b.shape for b in g.biases] == [(3,), (2,)]
    assert np.shares_memory(g.weights[0], g.flat)
    gb, gw = g.norms()
    assert np.allclose(gb, [np.linalg.norm(b) for b in g.biases])


def test_no_hidden_layer_gradient():
    net = vgfast.Network([6, 4], output="softmax", cost="log_likelihood", seed=3)
    X = np.random.default_rng(1).normal(size=(9, 6))
    y = np.arange(9) % 4
    assert rel_err(net.gradient(X, y).flat, fd_gradient(net, X, y)) < 1e-6


def test_chunked_gradient_equals_one_chunk():
    """More rows than the engine's evaluation chunk (1024): gradients accumulate exactly."""
    net = vgfast.Network([7, 5, 3], seed=2)
    rng = np.random.default_rng(2)
    X = rng.random((2500, 7))
    y = rng.integers(0, 3, 2500)
    g = net.gradient(X, y)
    gr, cr, _ = R.backprop(net, net.params, X, y)
    assert rel_err(g.flat, gr) < 1e-12
    assert abs(g.cost - cr) < 1e-12 * cr


@pytest.mark.parametrize("output,cost", PAIRS)
def test_extreme_inputs_stay_finite(output, cost):
    """sigmoid/softmax of +-1e4 and log of 0 in the cost give no overflow or NaN."""
    net = vgfast.Network([3, 4, 3], output=output, cost=cost, init="large", seed=0)
    net.weights[0][...] = 1.0
    net.weights[1][...] = np.array([[1e4, -1e4, 0, 0], [-1e4, 1e4, 0, 0], [0, 0, 1e4, 0]])
    X = np.array([[1e4, -1e4, 1e4], [-1e4, 1e4, -1e4], [0, 0, 0]])
    y = np.array([0, 1, 2])
    with np.errstate(all="raise"):
        out = net.feedforward(X)
        c = net.cost(X, y)
        g = net.gradient(X, y)
    assert np.isfinite(out).all() and np.isfinite(c) and np.isfinite(g.flat).all()
    if cost != "quadratic":  # quadratic cost is bounded by n_out / 2
        # log of a saturated wrong answer is large but finite (~1e8), not inf
        assert c > 1e3


def test_cross_entropy_cost_matches_book_formula():
    """Where the book's nan_to_num formula is finite, our stable cost equals it."""
    net = vgfast.Network([4, 5, 3], seed=7)
    rng = np.random.default_rng(3)
    X = rng.random((8, 4))
    y = rng.integers(0, 3, 8)
    a = net.feedforward(X)
    Y = np.eye(3)[y]
    book = np.mean(np.sum(np.nan_to_num(-Y * np.log(a) - (1 - Y) * np.log(1 - a)), axis=1))
    assert abs(net.cost(X, y) - book) < 1e-13 * book
    lm = 2.0
    pen = 0.5 * (lm / 8) * sum(np.sum(w ** 2) for w in net.weights)
    assert abs(net.cost(X, y, lmbda=lm) - (book + pen)) < 1e-13 * book
