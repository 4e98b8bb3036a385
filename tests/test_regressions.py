"""Regression tests for bugs found in review: each failed before its fix."""
import os

import numpy as np
import pytest

import vgfast
from vgfast import _core


def test_assigning_params_copies_into_the_buffer(tmp_path):
    """net.params = array (even a read-only memmap) copies; views keep tracking the buffer."""
    net = vgfast.Network([4, 5, 3], seed=0)
    f = os.path.join(tmp_path, "p.npy")
    np.save(f, net.params * 2)
    mm = np.load(f, mmap_mode="r")
    net.params = mm
    assert net.params is not mm and net.params.flags.writeable
    assert np.shares_memory(net.weights[0], net.params)
    assert np.array_equal(net.params, mm)
    vgfast.train(net, np.random.default_rng(0).random((20, 4)), np.arange(20) % 3, batch_size=5)
    assert np.array_equal(np.load(f), mm)  # the file is untouched


def test_set_params_checks_finiteness_after_the_cast():
    net = vgfast.Network([4, 5, 3], dtype="float32", seed=0)
    flat = net.params.astype(np.float64)
    flat[0] = 1e39  # finite in float64, Inf in float32
    with pytest.raises(ValueError, match="NaN or Inf"):
        net.set_params(flat)
    with pytest.raises(TypeError, match="real-valued"):
        net.set_params(flat.astype(complex))


@pytest.mark.parametrize("bad", [np.array(1.0), None])
def test_optimizer_step_refuses_non_vectors(bad):
    v = np.zeros(3)
    with pytest.raises((ValueError, TypeError)):
        _core.optimizer_step(0, bad, v, v.copy(), v.copy(), [0.1], 1)
    with pytest.raises(ValueError, match="kind"):
        _core.optimizer_step(7, v, v, v.copy(), v.copy(), [0.1], 1)


def test_divergence_restores_batch_norm_running_statistics():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 4))
    y = rng.integers(0, 3, 40)
    net = vgfast.Network([4, 6, 3], activation="relu", batch_norm=True, seed=0)
    with pytest.raises(vgfast.DivergenceError):
        vgfast.train(net, X, y, epochs=1, batch_size=20, optimizer=vgfast.SGD(1e300),
                     shuffle=False)
    # the first step succeeded: the statistics are those after it, finite
    ref = vgfast.Network([4, 6, 3], activation="relu", batch_norm=True, seed=0)
    vgfast.train(ref, X[:20], y[:20], epochs=1, batch_size=20, optimizer=vgfast.SGD(1e300),
                 shuffle=False, monitor=False)
    assert np.isfinite(net.bn_running_var[0]).all()
    assert np.array_equal(net.bn_running_mean[0], ref.bn_running_mean[0])
    assert np.array_equal(net.bn_running_var[0], ref.bn_running_var[0])


def test_resume_with_early_stopping_restores_the_best_running_statistics(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(1, 2, (200, 5))
    y = rng.integers(0, 3, 200)
    ck = os.path.join(tmp_path, "run.npz")

    def es():
        return vgfast.EarlyStopping(patience=3, metric="train_cost", min_delta=1e9)

    a = vgfast.Network([5, 8, 3], batch_norm=True, seed=1)
    vgfast.train(a, X, y, epochs=10, batch_size=20, seed=3, optimizer=vgfast.SGD(0.5),
                 early_stopping=es())
    b = vgfast.Network([5, 8, 3], batch_norm=True, seed=1)
    vgfast.train(b, X, y, epochs=1, batch_size=20, seed=3, optimizer=vgfast.SGD(0.5),
                 checkpoint=ck, early_stopping=es())
    c = vgfast.Network([5, 8, 3], batch_norm=True, seed=1)
    vgfast.train(c, X, y, epochs=10, batch_size=20, resume=ck, early_stopping=es())
    assert np.array_equal(a.params, c.params)
    assert np.array_equal(a.bn_running_mean[0], c.bn_running_mean[0])


@pytest.mark.parametrize("record", [(), ("grad_norms",), ("cost",)])
def test_divergence_does_not_depend_on_what_is_recorded(record):
    """An infinite cost (targets 1e200) stops at step 1 whatever is recorded."""
    X = np.random.default_rng(0).normal(size=(20, 3))
    Y = np.full((20, 2), 1e200)
    net = vgfast.Network([3, 4, 2], output="linear", cost="quadratic", seed=0)
    p0 = net.params.copy()
    with pytest.raises(vgfast.DivergenceError) as ei:
        vgfast.train(net, X, Y, epochs=1, batch_size=10, optimizer=vgfast.SGD(1e-3),
                     record=record, monitor=False)
    assert ei.value.step == 1
    assert np.array_equal(net.params, p0)


def test_initialize_resets_batch_norm_running_statistics():
    X = np.random.default_rng(1).normal(2, 3, (30, 4))
    net = vgfast.Network([4, 5, 3], batch_norm=True, seed=0)
    vgfast.train(net, X, np.arange(30) % 3, epochs=2, batch_size=10)
    net.initialize(seed=0)
    fresh = vgfast.Network([4, 5, 3], batch_norm=True, seed=0)
    assert np.array_equal(net.feedforward(X), fresh.feedforward(X))


def test_batch_norm_divergence_message_names_gamma_beta():
    err = vgfast.DivergenceError(0, 3, -1, "update", vgfast.History())
    assert "batch-normalisation layers" in str(err)


def test_batch_stats_gradient_does_not_keep_a_data_set_workspace():
    net = vgfast.Network([20, 10, 3], batch_norm=True, seed=0)
    X = np.random.default_rng(2).random((5000, 20))
    before = net._engine.workspace_bytes
    net.gradient(X, np.arange(5000) % 3, batch_stats=True)
    assert net._engine.workspace_bytes <= max(before, 1024 * 8 * 200)


def test_rmsprop_default_is_torchs():
    assert vgfast.RMSProp().rho == 0.99


def test_finite_check_fast_path_falls_back_on_overflowing_row_sums():
    """Huge finite values overflow the row sums of the fast path: not an error."""
    from vgfast._validate import first_nonfinite_row
    X = np.full((3, 4), 1e308)
    assert first_nonfinite_row(X) is None
    X[2, 1] = np.nan
    assert first_nonfinite_row(X) == 2
    X = np.zeros((5, 3), np.float32)
    X[4, 0] = -np.inf
    assert first_nonfinite_row(X) == 4


def _outcome(net, X, Y, **kw):
    try:
        vgfast.train(net, X, Y, epochs=1, batch_size=len(X), monitor=False, seed=0, **kw)
        return "ok"
    except vgfast.DivergenceError as e:
        return e.what


@pytest.mark.parametrize("record", [(), ("grad_norms",)])
def test_finite_gradient_with_overflowing_squares_is_not_divergence(record):
    """|g| ~ 1e160: finite, though its sum of squares overflows; recorded or not, training goes
    on and the recorded norm is finite."""
    net = vgfast.Network([2, 2], seed=0)
    X = np.full((4, 2), 1e160)
    y = np.array([0, 1, 0, 1])
    assert _outcome(net, X, y, record=record, optimizer=vgfast.SGD(1e-200)) == "ok"
    h = vgfast.train(net, X, y, epochs=1, batch_size=4, monitor=False,
                     optimizer=vgfast.SGD(1e-200), record=("weight_grad_norms",),
                     clip=("norm", 1e300))
    assert np.isfinite(h.weight_grad_norms).all() and h.weight_grad_norms[0, 0] > 1e159


@pytest.mark.parametrize("record", [(), ("cost",)])
def test_overflowing_cost_of_finite_z_stops_whatever_is_recorded(record):
    net = vgfast.Network([1, 2], output="softmax", cost="log_likelihood", seed=0)
    net.weights[0][:] = [[1e308], [-1e308]]
    net.biases[0][:] = 0
    assert _outcome(net, np.ones((2, 1)), np.array([1, 1]), record=record) == "cost"


def test_float32_norms_of_vanishing_gradients_do_not_underflow():
    net = vgfast.Network([50, 10], seed=0, dtype="float32")
    X = (np.random.default_rng(0).random((20, 50)) * 1e-24).astype(np.float32)
    y = np.arange(20) % 10
    g = net.gradient(X, y)
    h = vgfast.train(net, X, y, epochs=1, batch_size=20, monitor=False, shuffle=False,
                     record=("weight_grad_norms",))
    exact = np.linalg.norm(g.weights[0].astype(np.float64))
    assert exact > 0
    assert h.weight_grad_norms[0, 0] == pytest.approx(exact, rel=1e-5)


def test_overflowing_optimiser_state_is_divergence():
    """Adam's second moment overflowing float32 would freeze the parameters silently."""
    net = vgfast.Network([2, 2], activation="linear", output="linear", cost="quadratic",
                         dtype="float32", seed=0)
    X = np.full((4, 2), 1e22, np.float32)
    Y = np.zeros((4, 2), np.float32)
    p0 = net.params.copy()
    with pytest.raises(vgfast.DivergenceError) as ei:
        vgfast.train(net, X, Y, epochs=3, batch_size=4, optimizer=vgfast.Adam(), monitor=False)
    assert ei.value.what in ("update", "gradient")
    assert np.isfinite(net.params).all()
    assert ei.value.step == 1 and np.array_equal(net.params, p0)


def test_overflowing_running_variance_is_divergence():
    net = vgfast.Network([2, 3, 2], batch_norm=True, dtype="float32", seed=0)
    X = (np.random.default_rng(0).normal(size=(8, 2)) * 1e21).astype(np.float32)
    with pytest.raises(vgfast.DivergenceError) as ei:
        vgfast.train(net, X, np.arange(8) % 2, epochs=1, batch_size=4, monitor=False)
    assert ei.value.what == "batch-norm running statistics"
    assert np.isfinite(net.bn_running_var[0]).all()
