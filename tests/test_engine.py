"""A whole epoch of the engine against _reference.py, recording, edge cases, divergence."""
import numpy as np
import pytest

import vgfast
from vgfast import _reference as R

from conftest import rel_err


def data(n, n_in, n_out, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, n_in)), rng.integers(0, n_out, n)


def epoch_pair(net, X, y, bs, lr=0.5, lmbda=0.0, l1=0.0, momentum=0.0, nesterov=False, seed=3):
    """Run one engine epoch and the reference epoch with the same permutation."""
    p0 = net.params.copy()
    perm = np.random.default_rng(seed).permutation(X.shape[0])
    ref = R.sgd_epoch(net, p0, X, y, perm, bs, lr, lmbda, l1, momentum, nesterov)
    vgfast.train(net, X[perm], y[perm], epochs=1, batch_size=bs, shuffle=False, monitor=False,
                 optimizer=vgfast.SGD(lr, momentum=momentum, nesterov=nesterov), lmbda=lmbda,
                 l1=l1)
    return net.params, ref


@pytest.mark.parametrize("bs", [1, 7, 10, 53])
@pytest.mark.parametrize("lmbda,l1", [(0.0, 0.0), (3.0, 0.0), (0.5, 0.2)])
def test_epoch_matches_reference(bs, lmbda, l1):
    net = vgfast.Network([20, 15, 10, 5], seed=1)
    X, y = data(53, 20, 5)
    got, ref = epoch_pair(net, X, y, bs, lmbda=lmbda, l1=l1)
    assert np.max(np.abs(got - ref)) <= 1e-12 * np.max(np.abs(ref))
    assert not np.allclose(got, vgfast.Network([20, 15, 10, 5], seed=1).params)


@pytest.mark.parametrize("momentum,nesterov", [(0.9, False), (0.5, True)])
def test_momentum_epoch_matches_reference(momentum, nesterov):
    net = vgfast.Network([12, 9, 4], activation="tanh", output="softmax", cost="log_likelihood",
                         seed=4)
    X, y = data(40, 12, 4, seed=5)
    got, ref = epoch_pair(net, X, y, 6, lr=0.1, momentum=momentum, nesterov=nesterov)
    assert np.max(np.abs(got - ref)) <= 1e-12 * np.max(np.abs(ref))


def test_shuffled_training_uses_the_seeded_permutation():
    """train(seed=s) shuffles with default_rng(s): reproduce it by hand."""
    net = vgfast.Network([6, 5, 3], seed=0)
    X, y = data(30, 6, 3)
    p0 = net.params.copy()
    vgfast.train(net, X, y, epochs=2, batch_size=4, optimizer=vgfast.SGD(0.3), seed=11,
                 monitor=False)
    rng = np.random.default_rng(11)
    rng.integers(0, 2 ** 63)  # the dropout seed is drawn first
    p = p0
    for _ in range(2):
        perm = rng.permutation(30)
        p = R.sgd_epoch(net, p, X, y, perm, 4, 0.3)
    assert np.max(np.abs(net.params - p)) <= 1e-12 * np.max(np.abs(p))


def test_float32_throughout():
    net = vgfast.Network([20, 30, 10], dtype="float32", seed=2)
    X, y = data(64, 20, 10)
    ref = net.params.astype(np.float64)
    net64 = vgfast.Network([20, 30, 10], seed=2)
    net64.params[...] = ref
    perm = np.arange(64)
    vgfast.train(net, X.astype(np.float32), y, epochs=1, batch_size=8, shuffle=False,
                 monitor=False, optimizer=vgfast.SGD(0.5))
    r = R.sgd_epoch(net64, ref, X, y, perm, 8, 0.5)
    assert net.params.dtype == np.float32
    # 8 steps of float32 arithmetic: agreement to ~1e-6 relative of the update size
    assert np.max(np.abs(net.params - r)) < 1e-5 * np.max(np.abs(r))


def test_thousand_unit_layer():
    net = vgfast.Network([50, 1000, 10], seed=3)
    X, y = data(30, 50, 10)
    got, ref = epoch_pair(net, X, y, 10)
    assert np.max(np.abs(got - ref)) <= 1e-12 * np.max(np.abs(ref))


def test_no_hidden_layer_epoch():
    net = vgfast.Network([8, 3], output="softmax", cost="log_likelihood", seed=3)
    X, y = data(25, 8, 3)
    got, ref = epoch_pair(net, X, y, 4)
    assert np.max(np.abs(got - ref)) <= 1e-12 * np.max(np.abs(ref))


def test_target_matrix_equals_labels():
    net1 = vgfast.Network([6, 5, 3], seed=0)
    net2 = net1.copy()
    X, y = data(20, 6, 3)
    vgfast.train(net1, X, y, epochs=2, batch_size=3, seed=1)
    vgfast.train(net2, X, np.eye(3)[y], epochs=2, batch_size=3, seed=1)
    assert np.array_equal(net1.params, net2.params)


def test_record_every_step_matches_reference_norms():
    """history.grad_norms[k, l] = ||dC/db^l|| of step k's mini-batch gradient."""
    net = vgfast.Network([10, 8, 6, 4], seed=6)
    X, y = data(21, 10, 4)
    p = net.params.copy()
    h = vgfast.train(net, X, y, epochs=1, batch_size=5, shuffle=False, monitor=False,
                     optimizer=vgfast.SGD(0.2), record=("grad_norms", "weight_grad_norms", "cost"),
                     record_every="step")
    assert h.grad_norms.shape == (5, 3) and h.cost.shape == (5,)
    for k, start in enumerate(range(0, 21, 5)):
        g, c, _ = R.backprop(net, p, X[start:start + 5], y[start:start + 5])
        gw, gb = R.split(net, g)
        assert np.allclose(h.grad_norms[k], [np.linalg.norm(b) for b in gb], rtol=1e-12)
        assert np.allclose(h.weight_grad_norms[k], [np.linalg.norm(w) for w in gw], rtol=1e-12)
        assert abs(h.cost[k] - c) < 1e-12 * c
        p = p - 0.2 * g
    assert np.array_equal(h.record_steps, [1, 2, 3, 4, 5])


def test_record_every_epoch_is_mean_of_steps():
    net = vgfast.Network([10, 8, 4], seed=6)
    net2 = net.copy()
    X, y = data(20, 10, 4)
    hs = vgfast.train(net, X, y, epochs=1, batch_size=5, shuffle=False, monitor=False,
                      record=("grad_norms",), record_every="step")
    he = vgfast.train(net2, X, y, epochs=1, batch_size=5, shuffle=False, monitor=False,
                      record=("grad_norms",))
    assert he.grad_norms.shape == (1, 2)
    assert np.allclose(he.grad_norms[0], hs.grad_norms.mean(axis=0), rtol=1e-13)


def test_history_per_epoch_metrics_and_json():
    net = vgfast.Network([10, 8, 4], seed=6)
    X, y = data(40, 10, 4)
    Xv, yv = data(15, 10, 4, seed=9)
    h = vgfast.train(net, X, y, epochs=3, batch_size=8, validation=(Xv, yv), lmbda=1.0,
                     record=("grad_norms",), monitor="full")
    assert h.train_cost.shape == (3,) and h.validation_accuracy.shape == (3,)
    assert h.train_cost[-1] == pytest.approx(net.cost(X, y, lmbda=1.0), rel=1e-14)
    assert h.validation_accuracy[-1] == net.accuracy(Xv, yv)
    h2 = vgfast.History.from_json(h.to_json())
    for f in ("train_cost", "validation_accuracy", "grad_norms", "lr"):
        assert np.array_equal(getattr(h, f), getattr(h2, f))


def test_same_seed_bitwise_repeatable_and_seeds_differ():
    X, y = data(50, 10, 4)
    runs = []
    for seed in (5, 5, 6):
        net = vgfast.Network([10, 8, 4], seed=0)
        h = vgfast.train(net, X, y, epochs=2, batch_size=7, seed=seed, dropout=(0.8, 0.5),
                         record=("grad_norms",), record_every="step")
        runs.append((net.params.copy(), h.grad_norms))
    assert np.array_equal(runs[0][0], runs[1][0]) and np.array_equal(runs[0][1], runs[1][1])
    assert not np.array_equal(runs[0][0], runs[2][0])


def test_divergence_stops_with_last_finite_parameters():
    """A deep linear chain with w = 100 and a large step overflows; train() says where."""
    net = vgfast.Network([1, 1, 1, 1, 1], activation="linear", output="linear",
                         cost="quadratic", seed=0)
    for w in net.weights:
        w[...] = 100.0
    X = np.array([[1.0]])
    y = np.array([[0.0]])
    snapshots = []
    opt = vgfast.SGD(1.0)  # one optimiser: its step count runs across the calls
    with pytest.raises(vgfast.DivergenceError) as ei:
        for _ in range(50):
            snapshots.append(net.params.copy())
            vgfast.train(net, X, y, epochs=1, batch_size=1, optimizer=opt,
                         monitor=False)
    err = ei.value
    assert np.isfinite(net.params).all()
    assert err.what == "gradient"
    # detected before the update: the parameters are exactly those after the last finite step
    assert np.array_equal(net.params, snapshots[-1])
    assert err.step == len(snapshots) and len(snapshots) > 1
    assert "step" in str(err) and "layer" in str(err)
    assert err.what in ("gradient", "cost", "update")


def test_evaluation_has_no_dropout():
    net = vgfast.Network([10, 8, 4], seed=6)
    X, y = data(20, 10, 4)
    a = net.feedforward(X)
    vgfast.train(net, X, y, epochs=1, batch_size=20, dropout=0.5, optimizer=vgfast.SGD(0.0),
                 monitor=False)
    assert np.array_equal(a, net.feedforward(X))
