"""Issue 12, first part: Cockpit's gradient-noise quantities recorded inside train()'s loop.

Each recorded value must equal vgfast.analysis.gradient_statistics on the same mini-batch at the
parameters before that step's update (replayed step by step with a second network), and
update_size / distance the explicit norms of the parameter changes.
"""
import importlib

import numpy as np
import pytest

import vgfast
from vgfast.analysis import gradient_statistics

T = importlib.import_module("vgfast.train")  # the module (vgfast.train is the function)

NOISE = ("trace_cov", "noise_scale", "norm_test", "inner_test", "ortho_test", "gsnr")
LAYER = ("layer_trace_cov", "layer_noise_scale", "layer_norm_test", "layer_gsnr")


def data(n, n_in, n_out, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, n_in)), rng.integers(0, n_out, n)


def replay(net, X, y, bs, make_opt):
    """gradient_statistics before each step and the parameter norms after it, one step at a
    time on a copy of the network."""
    twin = net.copy()
    opt = make_opt()
    p0 = twin.params.copy()
    stats, sizes, dists = [], [], []
    for start in range(0, len(X), bs):
        sl = slice(start, start + bs)
        stats.append(gradient_statistics(twin, X[sl], y[sl]))
        before = twin.params.copy()
        vgfast.train(twin, X[sl], y[sl], epochs=1, batch_size=len(y[sl]), shuffle=False,
                     optimizer=opt, monitor=False)
        sizes.append(np.linalg.norm(twin.params - before))
        dists.append(np.linalg.norm(twin.params - p0))
    return stats, np.array(sizes), np.array(dists)


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("sizes,act,bs", [([12, 9, 7, 4], "sigmoid", 10),
                                          ([12, 16, 4], "relu", 7),
                                          ([30, 20, 5], "tanh", 150)])   # 150: chunked batch
def test_recorded_noise_equals_gradient_statistics_before_each_step(sizes, act, bs, fused,
                                                                    monkeypatch):
    monkeypatch.setattr(T, "_FUSED", fused)
    X, y = data(300 if bs == 150 else 63, sizes[0], sizes[-1])
    net = vgfast.Network(sizes, activation=act, seed=1)

    def make_opt():
        return vgfast.SGD(0.3, momentum=0.5)

    stats, size, dist = replay(net, X, y, bs, make_opt)
    h = vgfast.train(net, X, y, epochs=1, batch_size=bs, shuffle=False, optimizer=make_opt(),
                     record=NOISE + LAYER + ("update_size", "distance"), record_every="step")
    steps = len(stats)
    assert h.trace_cov.shape == (steps,) and h.layer_norm_test.shape == (steps, net.L)
    for name in NOISE:
        want = np.array([getattr(g, name) for g in stats])
        np.testing.assert_allclose(getattr(h, name), want, rtol=1e-10, atol=0)
    for name in LAYER:
        want = np.array([getattr(g, name) for g in stats])
        np.testing.assert_allclose(getattr(h, name), want, rtol=1e-10, atol=0)
    np.testing.assert_allclose(h.update_size, size, rtol=1e-10)
    np.testing.assert_allclose(h.distance, dist, rtol=1e-10)
    # the fused SGD path forms the gradient for them; a chunked (large) batch takes the general
    assert h.fused_steps == (steps if fused and bs <= 128 else 0)


def test_records_average_over_the_steps_and_ignore_the_penalty():
    """record_every='epoch' is the mean of the per-step values; the quantities are of the
    unregularised per-example gradients, so the first step's value does not depend on lmbda."""
    X, y = data(40, 8, 3)
    per_step, per_epoch, penalised = (vgfast.Network([8, 6, 3], seed=2) for _ in range(3))
    hs = vgfast.train(per_step, X, y, epochs=1, batch_size=8, shuffle=False, record=NOISE,
                      record_every="step")
    he = vgfast.train(per_epoch, X, y, epochs=1, batch_size=8, shuffle=False, record=NOISE)
    hp = vgfast.train(penalised, X, y, epochs=1, batch_size=8, shuffle=False, record=NOISE,
                      record_every="step", lmbda=50.0)
    for name in NOISE:
        assert getattr(he, name)[0] == pytest.approx(getattr(hs, name).mean(), rel=1e-12)
        assert getattr(hp, name)[0] == getattr(hs, name)[0]


def test_one_row_mini_batches_record_nan_and_training_goes_on():
    X, y = data(5, 4, 2)
    net = vgfast.Network([4, 3, 2], seed=0)
    h = vgfast.train(net, X, y, epochs=1, batch_size=1, record=NOISE + ("update_size",),
                     record_every="step")
    assert np.isnan(h.trace_cov).all() and np.isnan(h.norm_test).all()
    assert np.isnan(h.inner_test).all() and np.isnan(h.gsnr).all()
    assert np.isfinite(h.update_size).all() and (h.update_size > 0).all()


def test_a_zero_mean_gradient_gives_nan_ratios_not_a_crash():
    """Targets equal to the outputs (quadratic cost, linear output): every g_i = 0."""
    net = vgfast.Network([3, 2], activation="linear", output="linear", cost="quadratic", seed=0)
    X = np.random.default_rng(0).random((6, 3))
    Y = net.feedforward(X)
    h = vgfast.train(net, X, Y, epochs=1, batch_size=6, record=NOISE, record_every="step",
                     optimizer=vgfast.SGD(0.1))
    assert h.trace_cov[0] == 0 and np.isnan(h.noise_scale[0]) and np.isnan(h.norm_test[0])
    assert np.isnan(h.inner_test[0]) and np.isnan(h.ortho_test[0]) and h.gsnr[0] == 0


def test_float32_within_its_rounding():
    """float32 sums squares in float32 lanes: relative error ~1e-6 on S and ||gbar||^2, which
    the difference S - m ||gbar||^2 amplifies by S / (S - m ||gbar||^2) (here below 10)."""
    X, y = data(64, 20, 5)
    net = vgfast.Network([20, 16, 5], seed=3, dtype="float32")
    g = gradient_statistics(net, X[:32].astype(np.float32), y[:32])
    h = vgfast.train(net, X, y, epochs=1, batch_size=32, shuffle=False, record=NOISE,
                     record_every="step")
    for name in NOISE:
        assert getattr(h, name)[0] == pytest.approx(getattr(g, name), rel=1e-4)


@pytest.mark.parametrize("kw", [{"dropout": 0.8}, {"batch_norm": True}])
def test_dropout_and_batch_norm_are_refused_with_the_reason(kw):
    X, y = data(20, 4, 2)
    net = vgfast.Network([4, 3, 2], seed=0, batch_norm=kw.get("batch_norm", False))
    with pytest.raises(ValueError, match="per-example gradients"):
        vgfast.train(net, X, y, batch_size=4, record=("noise_scale",),
                     dropout=kw.get("dropout"))
    # update_size and distance are defined either way
    vgfast.train(net, X, y, batch_size=4, record=("update_size", "distance"),
                 dropout=kw.get("dropout"))
