"""Batch normalisation: forward/backward against finite differences and _reference.py, running
statistics against their formula, training against the reference, evaluation mode."""
import numpy as np
import pytest

import vgfast
from vgfast import _reference as R

from conftest import fd_gradient, rel_err


def bn_net(act="sigmoid", seed=1, **kw):
    net = vgfast.Network([5, 6, 4, 3], activation=act, batch_norm=True, seed=seed, **kw)
    rng = np.random.default_rng(seed)
    for g, b in zip(net.bn_gamma, net.bn_beta):
        g[...] = rng.normal(size=g.shape)
        b[...] = rng.normal(size=b.shape)
    return net


@pytest.mark.parametrize("act", ["sigmoid", "tanh", "relu", "elu"])
@pytest.mark.parametrize("batch_stats", [True, False])
def test_bn_gradient_finite_differences_and_reference(act, batch_stats):
    net = bn_net(act)
    rng = np.random.default_rng(2)
    X = rng.normal(size=(9, 5))
    y = rng.integers(0, 3, 9)
    g = net.gradient(X, y, batch_stats=batch_stats)
    assert rel_err(g.flat, fd_gradient(net, X, y, batch_stats=batch_stats)) < 1e-6
    gr, cr, _ = R.backprop(net, net.params, X, y, batch_stats=batch_stats)
    assert rel_err(g.flat, gr) < 1e-12
    assert abs(g.cost - cr) < 1e-12 * abs(cr)
    assert g.bn_gamma[0].shape == (6,) and g.bn_beta[1].shape == (4,)


def test_bn_layout_views():
    net = vgfast.Network([5, 6, 4, 3], batch_norm=[True, False], seed=0)
    assert net.n_params == 5 * 6 + 6 + 6 * 4 + 4 + 4 * 3 + 3 + 2 * 6
    assert net.bn_gamma[1] is None and np.all(net.bn_gamma[0] == 1) and np.all(net.bn_beta[0] == 0)
    assert np.shares_memory(net.bn_gamma[0], net.params)
    assert np.all(net.bn_running_mean[0] == 0) and np.all(net.bn_running_var[0] == 1)


def test_bn_epoch_matches_reference_and_running_stats():
    net = bn_net("tanh")
    rng = np.random.default_rng(3)
    X = rng.normal(size=(40, 5))
    y = rng.integers(0, 3, 40)
    p0 = net.params.copy()
    perm = np.arange(40)
    ref = R.sgd_epoch(net, p0, X, y, perm, 8, 0.3)
    # running statistics by their formula, from the parameters before each step
    rm = [np.zeros(6), np.zeros(4)]
    rv = [np.ones(6), np.ones(4)]
    p = p0.copy()
    for start in range(0, 40, 8):
        cache = {}
        zs, acts = R.forward(net, p, X[start:start + 8], True, cache)
        w, b = R.split(net, p)
        for l in range(2):
            z = acts[l] @ w[l].T + b[l]
            rm[l] = 0.9 * rm[l] + 0.1 * z.mean(axis=0)
            rv[l] = 0.9 * rv[l] + 0.1 * z.var(axis=0, ddof=1)
        p = R.sgd_epoch(net, p, X[start:start + 8], y[start:start + 8], np.arange(8), 8, 0.3)
    vgfast.train(net, X, y, epochs=1, batch_size=8, shuffle=False, monitor=False,
                 optimizer=vgfast.SGD(0.3))
    assert np.max(np.abs(net.params - ref)) <= 1e-12 * np.max(np.abs(ref))
    for l in range(2):
        assert np.allclose(net.bn_running_mean[l], rm[l], rtol=1e-12, atol=1e-14)
        assert np.allclose(net.bn_running_var[l], rv[l], rtol=1e-12, atol=1e-14)


def test_bn_evaluation_uses_running_statistics():
    net = bn_net("relu")
    rng = np.random.default_rng(4)
    X = rng.normal(size=(30, 5))
    y = rng.integers(0, 3, 30)
    vgfast.train(net, X, y, epochs=3, batch_size=10, monitor=False, seed=0)
    out = net.feedforward(X)
    zs, acts = R.forward(net, net.params, X, batch_stats=False)
    assert np.allclose(out, acts[-1], rtol=1e-13, atol=1e-15)
    # evaluation of one row equals its row in the batch: no batch dependence
    assert np.allclose(net.feedforward(X[:1]), out[:1], rtol=1e-13)


def test_bn_copy_keeps_running_stats():
    net = bn_net()
    X = np.random.default_rng(5).normal(size=(20, 5))
    vgfast.train(net, X, np.arange(20) % 3, epochs=1, batch_size=5, monitor=False)
    c = net.copy()
    assert np.array_equal(c.bn_running_var[0], net.bn_running_var[0])
    assert np.array_equal(c.feedforward(X), net.feedforward(X))


def test_bn_refuses_batches_of_one():
    net = bn_net()
    X = np.random.default_rng(5).normal(size=(21, 5))
    with pytest.raises(ValueError, match="batch_size"):
        vgfast.train(net, X, np.arange(21) % 3, epochs=1, batch_size=10)


def test_bn_float32():
    net = vgfast.Network([5, 6, 3], batch_norm=True, dtype="float32", seed=0)
    X = np.random.default_rng(6).normal(size=(16, 5)).astype(np.float32)
    h = vgfast.train(net, X, np.arange(16) % 3, epochs=2, batch_size=4, record=("grad_norms",))
    assert net.params.dtype == np.float32 and np.isfinite(net.params).all()
    assert net.bn_running_mean[0].dtype == np.float32
