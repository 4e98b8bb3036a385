"""The training toolkit against numpy: clipping, max-norm, dropout, L1, early stopping, and the
full-batch fits (L-BFGS, nonlinear CG)."""
import numpy as np
import pytest

import vgfast
from vgfast import _core
from vgfast import _reference as R
from vgfast.fullbatch import FullBatchResult, fit_cg, fit_lbfgs, full_batch_objective

from conftest import rel_err


def data(n, n_in, n_out, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, n_in)), rng.integers(0, n_out, n)


def segments(net):
    """(start, stop) of each layer's [W^l, b^l] in the flat layout (contiguous)."""
    out, o = [], 0
    for n_in, n_out in zip(net.sizes[:-1], net.sizes[1:]):
        out.append((o, o + n_in * n_out + n_out))
        o += n_in * n_out + n_out
    return out


def weight_mask(net):
    m = np.zeros(net.n_params, bool)
    for w in net._split(m)[0]:
        w[...] = True
    return m


def full_batch_step(net, X, y, lr=0.5, **kw):
    """One SGD step on the whole set in the data's order; returns the History."""
    return vgfast.train(net, X, y, epochs=1, batch_size=len(X), shuffle=False, monitor=False,
                        optimizer=vgfast.SGD(lr), **kw)


def penalised_gradient(net, p, X, y, lmbda=0.0, l1=0.0):
    g, _, _ = R.backprop(net, p, X, y)
    m = weight_mask(net)
    g[m] += (lmbda / len(X)) * p[m] + (l1 / len(X)) * np.sign(p[m])
    return g


# ----------------------------------------------------------------------------- clipping


@pytest.fixture
def problem():
    net = vgfast.Network([6, 5, 4, 3], seed=2)
    X, y = data(20, 6, 3, seed=1)
    return net, X, y


@pytest.mark.parametrize("lmbda", [0.0, 2.0])
def test_clip_global_norm(problem, lmbda):
    net, X, y = problem
    p0 = net.params.copy()
    g = penalised_gradient(net, p0, X, y, lmbda)
    norm = np.linalg.norm(g)
    c = 0.3 * norm
    h = full_batch_step(net, X, y, lr=0.5, lmbda=lmbda, clip=("norm", c),
                        record=("grad_norm_preclip",))
    assert rel_err(net.params, p0 - 0.5 * g * (c / norm)) <= 1e-12
    # the recorded norm is that of the (penalised) gradient before clipping
    assert h.grad_norm_preclip.shape == (1,)
    assert abs(h.grad_norm_preclip[0] - norm) <= 1e-12 * norm
    # a number means ("norm", c)
    net2 = vgfast.Network([6, 5, 4, 3], seed=2)
    full_batch_step(net2, X, y, lr=0.5, lmbda=lmbda, clip=c)
    assert np.array_equal(net2.params, net.params)


def test_clip_above_the_norm_changes_nothing(problem):
    net, X, y = problem
    other = net.copy()
    g = penalised_gradient(net, net.params, X, y)
    for clip in (("norm", 2 * np.linalg.norm(g)), ("value", 2 * np.abs(g).max()),
                 ("layer_norm", 2 * np.linalg.norm(g))):
        a, b = net.copy(), other.copy()
        full_batch_step(a, X, y, clip=clip)
        full_batch_step(b, X, y)
        assert np.array_equal(a.params, b.params), clip


def test_clip_per_layer_norm(problem):
    net, X, y = problem
    p0 = net.params.copy()
    g = penalised_gradient(net, p0, X, y)
    norms = np.array([np.linalg.norm(g[a:b]) for a, b in segments(net)])
    c = float(np.median(norms))  # some layers above the threshold, some below
    assert (norms > c).any() and (norms < c).any()
    gc = g.copy()
    for (a, b), nl in zip(segments(net), norms):
        if nl > c:
            gc[a:b] *= c / nl
    h = full_batch_step(net, X, y, lr=0.5, clip=("layer_norm", c), record="grad_norm_preclip")
    assert rel_err(net.params, p0 - 0.5 * gc) <= 1e-12
    assert abs(h.grad_norm_preclip[0] - np.linalg.norm(g)) <= 1e-12 * np.linalg.norm(g)


def test_clip_value(problem):
    net, X, y = problem
    p0 = net.params.copy()
    g = penalised_gradient(net, p0, X, y, lmbda=1.0)
    c = 0.4 * np.abs(g).max()
    assert (np.abs(g) > c).sum() > 1
    h = full_batch_step(net, X, y, lr=0.5, lmbda=1.0, clip=("value", c),
                        record=("grad_norm_preclip",))
    assert rel_err(net.params, p0 - 0.5 * np.clip(g, -c, c)) <= 1e-12
    assert abs(h.grad_norm_preclip[0] - np.linalg.norm(g)) <= 1e-12 * np.linalg.norm(g)


def test_grad_norm_preclip_every_step(problem):
    """Per step, over mini-batches in order, with momentum: the norm of each batch gradient."""
    net, X, y = problem
    p = net.params.copy()
    h = vgfast.train(net, X, y, epochs=1, batch_size=6, shuffle=False, monitor=False,
                     optimizer=vgfast.SGD(0.3), clip=("norm", 0.05),
                     record=("grad_norm_preclip",), record_every="step")
    assert h.grad_norm_preclip.shape == (4,)
    for k, s in enumerate(range(0, 20, 6)):
        g, _, _ = R.backprop(net, p, X[s:s + 6], y[s:s + 6])
        nrm = np.linalg.norm(g)
        assert abs(h.grad_norm_preclip[k] - nrm) <= 1e-12 * nrm
        p = p - 0.3 * g * min(1.0, 0.05 / nrm)
    assert rel_err(net.params, p) <= 1e-12


def test_clip_validation(problem):
    net, X, y = problem
    for bad, err in ((("l2", 1.0), ValueError), (("norm", 0.0), ValueError), (0, ValueError),
                     (-1.0, ValueError), ("norm", ValueError), ((1.0, "norm"), ValueError)):
        with pytest.raises(err):
            full_batch_step(net, X, y, clip=bad)
    with pytest.raises(ValueError, match="layer_norm"):
        full_batch_step(net, X, y, clip=("layer", 1.0))
    with pytest.raises(ValueError, match="clip"):
        full_batch_step(net, X, y, record=("grad_norm_preclip",))


# ----------------------------------------------------------------------------- max-norm


def test_max_norm_rows_after_a_step():
    net = vgfast.Network([10, 8, 4], seed=3)
    X, y = data(30, 10, 4)
    for w in net.weights:  # rows of norm about 0.5 .. 2
        w *= np.linspace(0.5, 2.0, w.shape[0])[:, None] / np.linalg.norm(w, axis=1)[:, None]
    p0 = net.params.copy()
    c = 1.0
    free = net.copy()
    full_batch_step(free, X, y, lr=0.5)
    full_batch_step(net, X, y, lr=0.5, max_norm=c)
    expected = free.params.copy()
    for w in net._split(expected)[0]:
        r = np.linalg.norm(w, axis=1)
        w *= np.where(r > c, c / r, 1.0)[:, None]
    assert rel_err(net.params, expected) <= 1e-12
    for w in net.weights:
        r = np.linalg.norm(w, axis=1)
        assert (r <= c * (1 + 1e-12)).all()
        assert (r > c * (1 - 1e-12)).any()  # some rows were constrained
    # biases are not constrained
    assert all(np.array_equal(a, b) for a, b in zip(net.biases, free.biases))
    assert not np.array_equal(net.params, p0)


def test_max_norm_over_many_steps():
    net = vgfast.Network([10, 8, 4], init="large", seed=4)
    X, y = data(30, 10, 4)
    vgfast.train(net, X, y, epochs=3, batch_size=7, optimizer=vgfast.SGD(2.0), max_norm=0.8,
                 seed=0, monitor=False)
    for w in net.weights:
        assert (np.linalg.norm(w, axis=1) <= 0.8 * (1 + 1e-12)).all()
    with pytest.raises(ValueError, match="max_norm"):
        vgfast.train(net, X, y, max_norm=0.0)


# ----------------------------------------------------------------------------- dropout


def test_philox_uniforms_moments():
    """The dropout generator: u in [0, 1), mean 1/2, var 1/12, no lag-1 correlation, within
    5 standard errors for N draws (Var(u) = 1/12, Var((u - 1/2)^2) = 1/180)."""
    N = 200_000
    for seed, counter in ((0, 0), (123456789, 10 ** 12), (2 ** 63 + 5, 2 ** 40)):
        u = _core.philox_uniform(seed, counter, N)
        assert u.shape == (N,) and (u >= 0).all() and (u < 1).all()
        assert abs(u.mean() - 0.5) <= 5 * np.sqrt(1 / 12 / N)
        assert abs(np.mean((u - 0.5) ** 2) - 1 / 12) <= 5 * np.sqrt(1 / 180 / N)
        c = np.mean((u[1:] - 0.5) * (u[:-1] - 0.5)) * 12
        assert abs(c) <= 5 / np.sqrt(N)
        # a fraction keep of them falls below keep (the mask's Bernoulli)
        for keep in (0.2, 0.5, 0.8):
            assert abs(np.mean(u < keep) - keep) <= 5 * np.sqrt(keep * (1 - keep) / N)
    # a pure function of (seed, counter): any stretch can be regenerated
    a = _core.philox_uniform(7, 100, 50)
    assert np.array_equal(a[10:], _core.philox_uniform(7, 110, 40))
    assert not np.array_equal(a, _core.philox_uniform(8, 100, 50))
    # different seeds are uncorrelated
    v, w = _core.philox_uniform(1, 0, N), _core.philox_uniform(2, 0, N)
    assert abs(np.mean((v - 0.5) * (w - 0.5)) * 12) <= 5 / np.sqrt(N)


def drop_seed(seed):
    """train(seed=s) draws the dropout seed first from default_rng(s)."""
    return int(np.random.default_rng(seed).integers(0, 2 ** 63))


def dropout_step_reference(net, p, X, y, lr, masks, keep):
    """One SGD step with inverted dropout: masks[l] (m, n_l) for the activation feeding layer l
    (None: no dropout there). The readable version of what the engine does."""
    W, B = net._split(p)
    T = R.targets(y, net.sizes[-1], p.dtype)
    acts_info = R.layer_activations(net)
    a = X
    zs, ins = [], []
    for l, ((name, alpha), w, b) in enumerate(zip(acts_info, W, B)):
        if masks[l] is not None:
            a = a * masks[l] / keep[l]
        ins.append(a)
        z = a @ w.T + b
        zs.append(z)
        a = R.activate(z, name, alpha)
    m = X.shape[0]
    g = np.zeros_like(p)
    gW, gB = net._split(g)
    delta = a - T  # sigmoid + cross-entropy
    for l in range(net.L - 1, -1, -1):
        gW[l][...] = delta.T @ ins[l] / m
        gB[l][...] = delta.sum(axis=0) / m
        if l > 0:
            name, alpha = acts_info[l - 1]
            act = R.activate(zs[l - 1], name, alpha)
            delta = (delta @ W[l]) * R.derivative(zs[l - 1], act, name, alpha)
            if masks[l] is not None:
                delta = delta * masks[l] / keep[l]
    return p - lr * g


@pytest.mark.parametrize("keep_in,keep_h", [(0.7, 1.0), (1.0, 0.5), (0.8, 0.6)])
def test_dropout_step_equals_reference_with_philox_masks(keep_in, keep_h):
    """The engine's masks are u < keep for the philox uniforms, counters running over the
    batch's activations layer by layer; kept units are scaled by 1/keep (inverted dropout)."""
    net = vgfast.Network([7, 6, 5, 3], seed=5)
    X, y = data(9, 7, 3, seed=2)
    p0 = net.params.copy()
    seed = 17
    vgfast.train(net, X, y, epochs=1, batch_size=9, shuffle=False, monitor=False, seed=seed,
                 optimizer=vgfast.SGD(0.7), dropout=(keep_in, keep_h))
    keep = [keep_in, keep_h, keep_h]
    masks, ctr, s = [], 0, drop_seed(seed)
    for l in range(net.L):
        n = 9 * net.sizes[l]
        if keep[l] < 1:
            masks.append((_core.philox_uniform(s, ctr, n) < keep[l]).reshape(9, net.sizes[l]))
            ctr += n
        else:
            masks.append(None)
    expected = dropout_step_reference(net, p0, X, y, 0.7, masks, keep)
    assert rel_err(net.params, expected) <= 1e-12
    # and it is not the step without dropout
    plain = vgfast.Network([7, 6, 5, 3], seed=5)
    full_batch_step(plain, X, y, lr=0.7)
    assert rel_err(plain.params, net.params) > 1e-6


def test_dropout_masks_revealed_by_the_update():
    """Batch of one, hidden dropout: a dropped hidden unit gets no update of its outgoing
    column of W^2 (nor of its incoming row of W^1), so one step reveals the mask. Over many
    seeds: the kept fraction is keep, and the mean pre-activation z^2 = W^2 dropout(a^1) + b^2
    equals the undropped one (inverted dropout), both within 5 standard errors."""
    keep = 0.6
    net = vgfast.Network([6, 200, 3], seed=6)
    x, y = data(1, 6, 3, seed=3)
    p0 = net.params.copy()
    _, acts = R.forward(net, p0, x)
    a1 = acts[1][0]
    W2, b2 = net.weights[1].copy(), net.biases[1].copy()
    z_full = W2 @ a1 + b2
    N = 300
    zs, kept = [], []
    for seed in range(N):
        net.params[...] = p0
        vgfast.train(net, x, y, epochs=1, batch_size=1, monitor=False, seed=seed,
                     optimizer=vgfast.SGD(1.0), dropout=(1.0, keep))
        mask = np.any(net.weights[1] != W2, axis=0)
        # the incoming rows of dropped units are untouched as well
        assert np.array_equal(net.weights[0][~mask], net._split(p0)[0][0][~mask])
        assert np.array_equal(mask, _core.philox_uniform(drop_seed(seed), 0, 200) < keep)
        kept.append(mask)
        zs.append(W2 @ (a1 * mask / keep) + b2)
    kept, zs = np.array(kept), np.array(zs)
    assert abs(kept.mean() - keep) <= 5 * np.sqrt(keep * (1 - keep) / kept.size)
    se = zs.std(axis=0, ddof=1) / np.sqrt(N)
    assert (np.abs(zs.mean(axis=0) - z_full) <= 5 * se).all()
    # the spread is the one inverted dropout predicts: Var z_k = sum_j W_kj^2 a_j^2 (1-k)/k
    var = (W2 ** 2) @ (a1 ** 2) * (1 - keep) / keep
    assert np.all(np.abs(zs.var(axis=0, ddof=1) / var - 1) <= 5 * np.sqrt(2 / (N - 1)))


def test_dropout_keep_one_is_no_dropout_bitwise():
    X, y = data(40, 8, 3)
    runs = []
    for dropout in (None, 1.0, (1.0, 1.0)):
        net = vgfast.Network([8, 6, 5, 3], seed=7)
        h = vgfast.train(net, X, y, epochs=2, batch_size=7, seed=4, dropout=dropout,
                         optimizer=vgfast.SGD(0.5, momentum=0.5), record="grad_norms",
                         record_every="step")
        runs.append((net.params.copy(), h.grad_norms, h.train_cost))
    for r in runs[1:]:
        for a, b in zip(runs[0], r):
            assert np.array_equal(a, b)


def test_dropout_validation():
    net = vgfast.Network([4, 3, 2])
    X, y = data(5, 4, 2)
    for bad in (0.0, 1.5, (0.5,), (0.5, 0.0), "half"):
        with pytest.raises((ValueError, TypeError)):
            vgfast.train(net, X, y, dropout=bad)


# ----------------------------------------------------------------------------- L1


@pytest.mark.parametrize("bs,momentum", [(40, 0.0), (7, 0.0), (5, 0.9)])
def test_l1_matches_reference(bs, momentum):
    net = vgfast.Network([8, 6, 3], activation="relu", output="softmax", cost="log_likelihood",
                         init="he_normal", seed=8)
    X, y = data(40, 8, 3, seed=4)
    p0 = net.params.copy()
    vgfast.train(net, X, y, epochs=2, batch_size=bs, shuffle=False, monitor=False,
                 optimizer=vgfast.SGD(0.2, momentum=momentum), l1=3.0, lmbda=0.5)
    v = np.zeros_like(p0)
    p = p0
    for _ in range(2):
        p = R.sgd_epoch(net, p, X, y, np.arange(40), bs, 0.2, lmbda=0.5, l1=3.0,
                        momentum=momentum, velocity=v)
    assert rel_err(net.params, p) <= 1e-12
    # biases are not penalised: the first full-batch step moves them exactly as without L1
    a, b = vgfast.Network([8, 6, 3], seed=9), vgfast.Network([8, 6, 3], seed=9)
    full_batch_step(a, X, y, l1=5.0)
    full_batch_step(b, X, y)
    assert all(np.array_equal(u, w) for u, w in zip(a.biases, b.biases))
    assert not np.array_equal(a.weights[0], b.weights[0])


def test_l1_cost_term():
    net = vgfast.Network([8, 6, 3], seed=9)
    X, y = data(40, 8, 3, seed=4)
    c = net.cost(X, y, l1=2.0) - net.cost(X, y)
    assert c == pytest.approx(2.0 / 40 * sum(np.abs(w).sum() for w in net.weights), rel=1e-13)


# ----------------------------------------------------------------------------- early stopping


def overfitting_setup():
    """20 training rows with random labels, a validation set of others: lr 1 overfits soon."""
    rng = np.random.default_rng(0)
    X, y = rng.random((20, 10)), rng.integers(0, 4, 20)
    Xv, yv = rng.random((60, 10)), rng.integers(0, 4, 60)
    return X, y, Xv, yv


@pytest.mark.parametrize("metric", ["validation_cost", "validation_accuracy"])
def test_early_stopping_restores_the_best(metric):
    X, y, Xv, yv = overfitting_setup()
    net = vgfast.Network([10, 30, 4], seed=1)
    snaps = {}

    def snapshot(epoch, n, hist):
        snaps[epoch] = n.params.copy()

    patience = 4
    h = vgfast.train(net, X, y, epochs=80, batch_size=5, optimizer=vgfast.SGD(1.0),
                     validation=(Xv, yv), seed=2, callback=snapshot,
                     early_stopping=vgfast.EarlyStopping(patience=patience, metric=metric))
    series = getattr(h, metric)
    assert h.stopped_early
    best = int(np.argmax(series) if metric.endswith("accuracy") else np.argmin(series))
    assert h.best_epoch == best  # the first epoch reaching the best value
    assert len(series) == best + patience + 1 < 80
    assert np.array_equal(net.params, snaps[best])
    assert net.cost(Xv, yv, n=len(X)) == pytest.approx(h.validation_cost[best], rel=1e-14)


def test_early_stopping_without_restore_keeps_the_last():
    X, y, Xv, yv = overfitting_setup()
    a, b = vgfast.Network([10, 30, 4], seed=1), vgfast.Network([10, 30, 4], seed=1)
    h = vgfast.train(a, X, y, epochs=80, batch_size=5, optimizer=vgfast.SGD(1.0),
                     validation=(Xv, yv), seed=2,
                     early_stopping=vgfast.EarlyStopping(patience=4, metric="validation_cost",
                                                         restore_best=False))
    assert h.stopped_early and h.best_epoch is not None
    vgfast.train(b, X, y, epochs=len(h.validation_cost), batch_size=5,
                 optimizer=vgfast.SGD(1.0), validation=(Xv, yv), seed=2)
    assert np.array_equal(a.params, b.params)


def test_early_stopping_min_delta_and_train_metric():
    X, y, Xv, yv = overfitting_setup()
    net = vgfast.Network([10, 30, 4], seed=1)
    # a min_delta no improvement can meet: stops after exactly `patience` epochs past the first
    h = vgfast.train(net, X, y, epochs=50, batch_size=5, optimizer=vgfast.SGD(0.5),
                     early_stopping=vgfast.EarlyStopping(patience=3, metric="train_cost",
                                                         min_delta=1e6))
    assert h.stopped_early and h.best_epoch == 0 and len(h.train_cost) == 4
    with pytest.raises(ValueError, match="validation"):
        vgfast.train(net, X, y, early_stopping=vgfast.EarlyStopping(metric="validation_cost"))
    with pytest.raises(ValueError, match="metric"):
        vgfast.EarlyStopping(metric="loss")
    with pytest.raises(TypeError):
        vgfast.train(net, X, y, early_stopping=3)


def test_early_stopping_on_train_metric_needs_monitor():
    X, y = data(20, 10, 4)
    net = vgfast.Network([10, 8, 4], seed=0)
    with pytest.raises(ValueError, match="monitor"):
        vgfast.train(net, X, y, epochs=3, monitor=False,
                     early_stopping=vgfast.EarlyStopping(metric="train_cost"))


# ----------------------------------------------------------------------------- full-batch fits


@pytest.fixture
def small():
    rng = np.random.default_rng(0)
    return rng.random((64, 8)), rng.integers(0, 3, 64)


@pytest.mark.parametrize("seed", [0, 1])
def test_lbfgs_beats_full_batch_sgd_at_equal_gradient_evaluations(small, seed):
    X, y = small
    net = vgfast.Network([8, 6, 3], seed=seed)
    a = net.copy()
    res = fit_lbfgs(a, X, y, maxiter=40)
    assert isinstance(res, FullBatchResult)
    assert 40 <= res.nfev <= 60 and res.nit == 40
    # full-batch SGD with the same number of gradient evaluations, at its best learning rate
    best = np.inf
    for lr in (0.3, 1.0, 3.0, 10.0):
        b = net.copy()
        vgfast.train(b, X, y, epochs=res.nfev, batch_size=len(X), shuffle=False, monitor=False,
                     optimizer=vgfast.SGD(lr))
        best = min(best, b.cost(X, y))
    assert res.cost < best
    assert res.cost == pytest.approx(a.cost(X, y), rel=1e-14)


def test_lbfgs_result_fields_and_history(small):
    X, y = small
    net = vgfast.Network([8, 6, 3], seed=2)
    c0 = net.cost(X, y, lmbda=1.0)
    seen = []
    res = fit_lbfgs(net, X, y, lmbda=1.0, maxiter=25,
                    callback=lambda k, n, c: seen.append((k, c, n.cost(X, y, lmbda=1.0))))
    assert res.method == "L-BFGS-B" and isinstance(res.message, str) and res.message
    assert res.history.shape == (res.nit + 1,) and res.history[0] == pytest.approx(c0, rel=1e-14)
    assert res.history[-1] == pytest.approx(res.cost, rel=1e-14)
    assert np.all(np.diff(res.history) <= 0)
    # the callback saw every iteration, with net.params set to the iterate
    assert [k for k, _, _ in seen] == list(range(1, res.nit + 1))
    assert all(c == pytest.approx(cn, rel=1e-13) for _, c, cn in seen)
    assert res.cost == pytest.approx(net.cost(X, y, lmbda=1.0), rel=1e-14)
    g = net.gradient(X, y).flat + (1.0 / 64) * net.params * weight_mask(net)
    assert res.grad_norm == pytest.approx(np.linalg.norm(g), rel=1e-10)


def test_lbfgs_callback_stops_and_max_evals(small):
    X, y = small
    net = vgfast.Network([8, 6, 3], seed=2)
    res = fit_lbfgs(net, X, y, maxiter=100, callback=lambda k, n, c: k >= 3)
    assert res.nit == 3 and not res.success and len(res.history) == 4
    res = fit_lbfgs(vgfast.Network([8, 6, 3], seed=2), X, y, maxiter=100, max_evals=10)
    assert res.nfev <= 10 + 20 and res.nit < 100


def test_lbfgs_converges_to_a_stationary_point():
    X, y = data(30, 4, 2, seed=5)
    net = vgfast.Network([4, 3, 2], seed=3)
    res = fit_lbfgs(net, X, y, lmbda=5.0, maxiter=2000, tol=1e-8, ftol=0.0)
    assert res.success and "PROJ" in res.message.upper(), res.message
    g = net.gradient(X, y).flat + (5.0 / 30) * net.params * weight_mask(net)
    assert np.abs(g).max() <= 1e-6


def test_cg_decreases_the_cost(small):
    X, y = small
    net = vgfast.Network([8, 6, 3], seed=0)
    c0 = net.cost(X, y, lmbda=0.5)
    res = fit_cg(net, X, y, lmbda=0.5, maxiter=30)
    assert res.method == "CG"
    assert res.cost < 0.8 * c0
    assert res.history[0] == pytest.approx(c0, rel=1e-14)
    assert np.all(np.diff(res.history) <= 1e-15 * c0)  # the Wolfe line search decreases J
    assert res.cost == pytest.approx(net.cost(X, y, lmbda=0.5), rel=1e-14)
    assert res.nfev >= res.nit


@pytest.mark.parametrize("lmbda", [0.0, 3.0])
@pytest.mark.parametrize("Y_kind", ["labels", "targets"])
def test_objective_gradient_check(small, lmbda, Y_kind):
    """The fun/jac handed to scipy agrees with central finite differences, and with the
    network's own cost."""
    X, y = small
    Y = y if Y_kind == "labels" else np.eye(3)[y]
    net = vgfast.Network([8, 6, 3], activation="tanh", seed=4)
    obj = full_batch_objective(net, X, Y, lmbda=lmbda)
    rng = np.random.default_rng(1)
    theta = obj.x0 + 0.1 * rng.standard_normal(obj.x0.size)
    f, g = obj(theta)
    assert f == pytest.approx(net.cost(X, Y, lmbda=lmbda), rel=1e-14)
    eps = 1e-6
    fd = np.empty_like(theta)
    for i in range(theta.size):
        e = np.zeros_like(theta)
        e[i] = eps
        fd[i] = (obj(theta + e)[0] - obj(theta - e)[0]) / (2 * eps)
    assert rel_err(g, fd) <= 1e-8
    assert obj.nfev == 1 + 2 * theta.size
    # the L2 gradient is on the weights only
    if lmbda:
        _, g0 = full_batch_objective(net, X, Y)(theta)
        d = g - g0
        m = obj.weight_mask
        assert np.array_equal(d[~m], np.zeros((~m).sum()))
        assert rel_err(d[m], lmbda / 64 * theta[m]) <= 1e-12
        assert m.sum() == sum(w.size for w in net.weights)


def test_float32_network(small):
    X, y = small
    net = vgfast.Network([8, 6, 3], dtype="float32", seed=0)
    c0 = net.cost(X, y)
    res = fit_lbfgs(net, X, y, maxiter=20)
    assert net.params.dtype == np.float32
    assert res.cost < 0.8 * c0
    assert res.cost == pytest.approx(net.cost(X, y), rel=1e-12)
    res = fit_cg(net, X, y, maxiter=5)
    assert res.cost <= res.history[0]


def test_fullbatch_validation(small):
    X, y = small
    net = vgfast.Network([8, 6, 3], seed=0)
    p0 = net.params.copy()
    with pytest.raises(TypeError, match="Network"):
        fit_lbfgs("net", X, y)
    with pytest.raises(ValueError, match="X must have 8 columns"):
        fit_lbfgs(net, X[:, :5], y)
    with pytest.raises(ValueError, match="Y"):
        fit_cg(net, X, y[:10])
    with pytest.raises(ValueError, match="labels must be in"):
        fit_lbfgs(net, X, y + 5)
    with pytest.raises(ValueError, match="NaN"):
        fit_lbfgs(net, np.full_like(X, np.nan), y)
    with pytest.raises(ValueError, match="lmbda"):
        fit_lbfgs(net, X, y, lmbda=-1)
    with pytest.raises(ValueError, match="maxiter"):
        fit_cg(net, X, y, maxiter=0)
    with pytest.raises(ValueError, match="tol"):
        fit_cg(net, X, y, tol=-1.0)
    with pytest.raises(TypeError, match="callback"):
        fit_lbfgs(net, X, y, callback=3)
    with pytest.raises(ValueError, match="max_evals"):
        fit_lbfgs(net, X, y, max_evals=0)
    with pytest.raises(ValueError, match="ftol"):
        fit_lbfgs(net, X, y, ftol=-1.0)
    with pytest.raises(ValueError, match="batch"):
        fit_lbfgs(vgfast.Network([8, 6, 3], batch_norm=True), X, y)
    assert np.array_equal(net.params, p0)  # nothing ran


def test_dropout_generator_is_philox4x32_10():
    """Known-answer test of Random123's Philox-4x32-10 (counter 0, key 0)."""
    words = np.round(_core.philox_uniform(0, 0, 4) * 2.0 ** 32).astype(np.uint64)
    assert words.tolist() == [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]
