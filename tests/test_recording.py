"""The per-layer statistics recorded inside the engine's loop, against numpy on the same steps."""
import numpy as np
import pytest

import vgfast
from vgfast import _reference as R


def steps_by_hand(net, p, X, y, bs, lr):
    """Per step: activations of every layer (before the update) and the parameters after it."""
    out = []
    for start in range(0, X.shape[0], bs):
        xb, yb = X[start:start + bs], y[start:start + bs]
        _, acts = R.forward(net, p, xb)
        g, _, _ = R.backprop(net, p, xb, yb)
        new = p - lr * g
        out.append((acts[1:], R.split(net, p)[0], R.split(net, new)[0]))
        p = new
    return out


@pytest.mark.parametrize("act", ["sigmoid", "tanh", "relu"])
def test_activation_statistics_and_update_ratio(act):
    net = vgfast.Network([12, 10, 8, 4], activation=act, init="large", seed=3)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(23, 12))
    y = rng.integers(0, 4, 23)
    p0 = net.params.copy()
    names = ("activation_mean", "activation_std", "saturation", "dead_fraction", "update_ratio")
    h = vgfast.train(net, X, y, epochs=1, batch_size=5, shuffle=False, monitor=False,
                     optimizer=vgfast.SGD(0.3), record=names, record_every="step")
    steps = steps_by_hand(net, p0, X, y, 5, 0.3)
    assert h.saturation.shape == (5, 3)
    for k, (acts, w_old, w_new) in enumerate(steps):
        for l, a in enumerate(acts):
            assert h.activation_mean[k, l] == pytest.approx(a.mean(), rel=1e-12, abs=1e-15)
            assert h.activation_std[k, l] == pytest.approx(a.std(), rel=1e-9, abs=1e-12)
            name = ([act] * 2 + ["sigmoid"])[l]
            sat = (np.mean((a < 0.05) | (a > 0.95)) if name == "sigmoid" else
                   np.mean(np.abs(a) > 0.9) if name == "tanh" else 0.0)
            assert h.saturation[k, l] == pytest.approx(sat, abs=1e-15)
            dead = np.mean(np.all(a == 0, axis=0)) if name == "relu" else 0.0
            assert h.dead_fraction[k, l] == pytest.approx(dead, abs=1e-15)
            ratio = np.linalg.norm(w_new[l] - w_old[l]) / np.linalg.norm(w_old[l])
            assert h.update_ratio[k, l] == pytest.approx(ratio, rel=1e-9)
    # 'large' weights saturate sigmoid units: the statistic sees it
    if act == "sigmoid":
        assert h.saturation[:, 0].mean() > 0.3


def test_epoch_records_average_the_steps():
    net = vgfast.Network([12, 10, 4], activation="tanh", seed=3)
    net2 = net.copy()
    X = np.random.default_rng(1).normal(size=(20, 12))
    y = np.arange(20) % 4
    hs = vgfast.train(net, X, y, epochs=1, batch_size=5, shuffle=False, monitor=False,
                      record=("saturation", "update_ratio"), record_every="step")
    he = vgfast.train(net2, X, y, epochs=1, batch_size=5, shuffle=False, monitor=False,
                      record=("saturation", "update_ratio"))
    assert np.allclose(he.saturation[0], hs.saturation.mean(axis=0), rtol=1e-13)
    assert np.allclose(he.update_ratio[0], hs.update_ratio.mean(axis=0), rtol=1e-13)


def test_shuffle_callable_gives_the_order():
    net = vgfast.Network([6, 5, 3], seed=0)
    net2 = net.copy()
    X = np.random.default_rng(2).random((12, 6))
    y = np.arange(12) % 3
    order = np.random.default_rng(9).permutation(12)
    vgfast.train(net, X, y, epochs=1, batch_size=4, shuffle=lambda e, n: order, monitor=False)
    vgfast.train(net2, X[order], y[order], epochs=1, batch_size=4, shuffle=False, monitor=False)
    assert np.array_equal(net.params, net2.params)
    with pytest.raises(ValueError, match="permutation"):
        vgfast.train(net, X, y, shuffle=lambda e, n: np.zeros(n, int), monitor=False)


def test_float32_norms_accumulated_in_float_are_accurate():
    """float32 networks sum squares in float lanes (double only on overflow): within 1e-5 of
    the exact norm of the same float32 gradient."""
    net = vgfast.Network([300, 200, 10], dtype="float32", seed=0)
    X = np.random.default_rng(1).random((10, 300)).astype(np.float32)
    y = np.arange(10)
    g = net.gradient(X, y)
    h = vgfast.train(net, X, y, epochs=1, batch_size=10, shuffle=False, monitor=False,
                     record=("grad_norms", "weight_grad_norms"), record_every="step")
    exact_w = [np.linalg.norm(w.astype(np.float64)) for w in g.weights]
    exact_b = [np.linalg.norm(b.astype(np.float64)) for b in g.biases]
    assert np.allclose(h.weight_grad_norms[0], exact_w, rtol=1e-5)
    assert np.allclose(h.grad_norms[0], exact_b, rtol=1e-5)


def test_huge_float32_gradients_fall_back_to_double_sums():
    """Squares above float's range: the norm is still finite and right (no false divergence)."""
    net = vgfast.Network([2, 2], activation="linear", output="linear", cost="quadratic",
                         dtype="float32", seed=0)
    X = np.array([[1e18, 1e18]], np.float32)
    Y = np.array([[-1e18, -1e18]], np.float32)
    h = vgfast.train(net, X, Y, epochs=1, batch_size=1, optimizer=vgfast.SGD(0.0),
                     monitor=False, record=("weight_grad_norms",), record_every="step")
    g = net.gradient(X, Y)
    exact = np.linalg.norm(g.weights[0].astype(np.float64))
    assert exact > 1e20 and np.isfinite(h.weight_grad_norms[0, 0])
    assert h.weight_grad_norms[0, 0] == pytest.approx(exact, rel=1e-6)
