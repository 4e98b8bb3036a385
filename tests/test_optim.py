"""Optimisers and schedules: torch.optim's equations, by hand, through train(), and per schedule.

Three layers of evidence:
- hand-computed first steps for each optimiser, written out here (always run);
- 50 steps of the bare kernel (vgfast._core.optimizer_step) against torch.optim on the same
  gradients g(p) = A p - b computed in numpy for both sides (skipped without torch);
- whole train() runs on a tiny network against the same network written in torch, same
  parameters, same batches in the same order (skipped without torch).
"""
import math

import numpy as np
import pytest

import vgfast
from vgfast import _core
from vgfast import _reference as R
from vgfast.optim import (SGD, AdaGrad, Adam, AdamW, Constant, Cosine, Exponential, InverseTime,
                          LinearDecay, RMSProp, StepDecay)

from conftest import rel_err

# ----------------------------------------------------------------------------- helpers

#: the optimisers under test: (id, vgfast factory, torch factory(params or groups, wd_groups))
CONFIGS = {
    "sgd": dict(vg=lambda: SGD(0.05), torch=("SGD", dict(lr=0.05)), momentum=0.0),
    "momentum": dict(vg=lambda: SGD(0.05, momentum=0.9), torch=("SGD", dict(lr=0.05, momentum=0.9)),
                     momentum=0.9),
    "nesterov": dict(vg=lambda: SGD(0.05, momentum=0.8, nesterov=True),
                     torch=("SGD", dict(lr=0.05, momentum=0.8, nesterov=True)), momentum=0.8),
    "adagrad": dict(vg=lambda: AdaGrad(0.1, eps=1e-10, lr_decay=0.03),
                    torch=("Adagrad", dict(lr=0.1, eps=1e-10, lr_decay=0.03))),
    "rmsprop": dict(vg=lambda: RMSProp(0.01, rho=0.95, eps=1e-8),
                    torch=("RMSprop", dict(lr=0.01, alpha=0.95, eps=1e-8))),
    "adam": dict(vg=lambda: Adam(0.01, beta1=0.85, beta2=0.995, eps=1e-8),
                 torch=("Adam", dict(lr=0.01, betas=(0.85, 0.995), eps=1e-8))),
    "adamw": dict(vg=lambda: AdamW(0.01, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.3),
                  torch=("AdamW", dict(lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.3))),
}


def engine_hyper(opt, lr=None):
    """hyper() completed the way train() completes it: h[0] = lr, SGD's h[1] = momentum,
    h[4] = decoupled weight decay (train() passes it per weight segment)."""
    h = list(opt.hyper())
    h[0] = opt.lr.value(0) if lr is None else lr
    if isinstance(opt, SGD):
        h[1] = float(opt.momentum.value(0))
    h[4] = opt.weight_decay
    return h


def quadratic_problem(n=30, seed=0):
    """A fixed g(p) = A p - b, A symmetric positive definite (the gradient of a quadratic)."""
    rng = np.random.default_rng(seed)
    M = rng.standard_normal((n, n))
    A = M @ M.T / n + 0.1 * np.eye(n)
    b = rng.standard_normal(n)
    p0 = rng.standard_normal(n)
    return A, b, p0


def vg_steps(opt, p0, grad_fn, steps):
    p = p0.copy()
    s1 = np.zeros_like(p)
    s2 = np.zeros_like(p)
    h = engine_hyper(opt)
    for t in range(1, steps + 1):
        g = grad_fn(p)
        bad = _core.optimizer_step(opt.kind, p, g, s1, s2, h, t)
        assert not bad
    return p, s1, s2


# ----------------------------------------------------------------------------- by hand


def one_step(opt, p, g, s1=None, s2=None, t=1):
    p = p.copy()
    s1 = np.zeros_like(p) if s1 is None else s1.copy()
    s2 = np.zeros_like(p) if s2 is None else s2.copy()
    assert not _core.optimizer_step(opt.kind, p, g, s1, s2, engine_hyper(opt), t)
    return p, s1, s2


@pytest.fixture
def pg():
    rng = np.random.default_rng(7)
    return rng.standard_normal(40), rng.standard_normal(40), rng.standard_normal(40)


def close(a, b, tol=1e-14):
    return rel_err(a, b) <= tol


def test_sgd_first_step_by_hand(pg):
    p, g, _ = pg
    got, _, _ = one_step(SGD(0.3), p, g)
    assert close(got, p - 0.3 * g)


def test_momentum_two_steps_by_hand(pg):
    p, g1, g2 = pg
    opt = SGD(0.3, momentum=0.9)
    p1, b1, _ = one_step(opt, p, g1, t=1)
    # torch: the first buffer is the gradient itself
    assert close(b1, g1) and close(p1, p - 0.3 * g1)
    p2, b2, _ = one_step(opt, p1, g2, s1=b1, t=2)
    assert close(b2, 0.9 * g1 + g2)
    assert close(p2, p1 - 0.3 * (0.9 * g1 + g2))


def test_nesterov_two_steps_by_hand(pg):
    p, g1, g2 = pg
    opt = SGD(0.3, momentum=0.9, nesterov=True)
    p1, b1, _ = one_step(opt, p, g1, t=1)
    assert close(p1, p - 0.3 * (1 + 0.9) * g1)
    p2, b2, _ = one_step(opt, p1, g2, s1=b1, t=2)
    b = 0.9 * g1 + g2
    assert close(b2, b) and close(p2, p1 - 0.3 * (g2 + 0.9 * b))


def test_adagrad_steps_by_hand(pg):
    p, g1, g2 = pg
    opt = AdaGrad(0.1, eps=1e-10)
    p1, s, _ = one_step(opt, p, g1, t=1)
    assert close(s, g1 ** 2) and close(p1, p - 0.1 * g1 / (np.abs(g1) + 1e-10))
    # lr_decay: the step-t learning rate is lr / (1 + (t - 1) lr_decay)
    opt = AdaGrad(0.1, eps=1e-10, lr_decay=0.5)
    p3, s3, _ = one_step(opt, p1, g2, s1=s, t=3)
    assert close(s3, g1 ** 2 + g2 ** 2)
    assert close(p3, p1 - 0.1 / (1 + 2 * 0.5) * g2 / (np.sqrt(g1 ** 2 + g2 ** 2) + 1e-10))
    # at t = 1 the decay has no effect
    p1d, _, _ = one_step(opt, p, g1, t=1)
    assert close(p1d, p1)


def test_rmsprop_first_step_by_hand(pg):
    p, g, _ = pg
    p1, s, _ = one_step(RMSProp(0.01, rho=0.9, eps=1e-8), p, g)
    assert close(s, 0.1 * g ** 2)
    assert close(p1, p - 0.01 * g / (np.sqrt(0.1) * np.abs(g) + 1e-8))


def test_adam_first_two_steps_by_hand(pg):
    p, g1, g2 = pg
    opt = Adam(0.01, beta1=0.9, beta2=0.999, eps=1e-8)
    p1, m, v = one_step(opt, p, g1, t=1)
    # after bias correction the first step is lr * g / (|g| + eps): about lr * sign(g)
    assert close(m, 0.1 * g1) and close(v, 0.001 * g1 ** 2)
    assert close(p1, p - 0.01 * g1 / (np.abs(g1) + 1e-8))
    p2, m2, v2 = one_step(opt, p1, g2, m, v, t=2)
    mm = 0.9 * 0.1 * g1 + 0.1 * g2
    vv = 0.999 * 0.001 * g1 ** 2 + 0.001 * g2 ** 2
    mhat, vhat = mm / (1 - 0.9 ** 2), vv / (1 - 0.999 ** 2)
    assert close(m2, mm) and close(v2, vv)
    assert close(p2, p1 - 0.01 * mhat / (np.sqrt(vhat) + 1e-8))


def test_adamw_first_step_by_hand(pg):
    p, g, _ = pg
    p1, _, _ = one_step(AdamW(0.01, weight_decay=0.5), p, g)
    # decoupled: p (1 - lr wd) first, then the Adam step on the raw gradient
    assert close(p1, p * (1 - 0.01 * 0.5) - 0.01 * g / (np.abs(g) + 1e-8))


def test_adam_eps_hat_matches_sklearns_adam_optimizer():
    """Adam(eps_hat=True) against scikit-learn's own AdamOptimizer (eps added to sqrt(v) before
    the bias correction) over 30 steps, with gradients from 1e-9 to 1: there torch's form
    (eps_hat=False) differs by far more than rounding, so the comparison can fail."""
    sk_opt = pytest.importorskip("sklearn.neural_network._stochastic_optimizers")
    rng = np.random.default_rng(5)
    n = 200
    scale = 10.0 ** rng.uniform(-9, 0, n)
    grads = [rng.standard_normal(n) * scale for _ in range(30)]
    p0 = rng.standard_normal(n)
    ref_p = p0.copy()
    ref = sk_opt.AdamOptimizer([ref_p], learning_rate_init=0.01)
    for g in grads:
        ref.update_params([ref_p], [g])
    for dtype, tol in ((np.float64, 1e-13), (np.float32, 2e-6)):
        got = {}
        for hat in (True, False):
            opt = Adam(0.01, eps_hat=hat)
            p = p0.astype(dtype)
            s1, s2 = np.zeros_like(p), np.zeros_like(p)
            for t, g in enumerate(grads, start=1):
                assert not _core.optimizer_step(opt.kind, p, g.astype(dtype), s1, s2,
                                                engine_hyper(opt), t)
            got[hat] = p.astype(np.float64)
        move = np.abs(ref_p - p0).max()
        assert np.abs(got[True] - ref_p).max() <= tol * max(1.0, np.abs(ref_p).max())
        assert np.abs(got[False] - ref_p).max() > 0.1 * move  # the other form is not it
        q, m, v = p0.copy(), np.zeros(n), np.zeros(n)
        for t, g in enumerate(grads, start=1):
            R.adam_step(q, g, m, v, t, lr=0.01, eps_hat=True)
        assert np.abs(q - ref_p).max() <= 1e-13 * max(1.0, np.abs(ref_p).max())


def test_adam_eps_hat_validation_and_checkpoint(tmp_path):
    with pytest.raises(TypeError, match="eps_hat"):
        Adam(eps_hat="yes")
    from vgfast import checkpoint
    net = vgfast.Network([3, 4, 2], seed=0)
    opt = AdamW(0.01, eps_hat=True)
    X = np.random.default_rng(0).standard_normal((20, 3))
    vgfast.train(net, X, np.arange(20) % 2, epochs=1, batch_size=5, optimizer=opt)
    checkpoint.save(net, tmp_path / "c.vgf", optimizer=opt)
    opt2 = checkpoint.load(tmp_path / "c.vgf").optimizer
    assert type(opt2) is AdamW and opt2.eps_hat is True and opt2.t == opt.t
    np.testing.assert_array_equal(opt2.state["s2"], opt.state["s2"])


def test_reference_steps_agree_with_kernel(pg):
    """_reference.py's Adam/RMSProp/AdaGrad steps (the readable spec) match the kernel."""
    p, g, _ = pg
    for opt, ref in ((Adam(0.01), lambda q, m, v: R.adam_step(q, g, m, v, 1, lr=0.01)),
                     (AdamW(0.01, weight_decay=0.2),
                      lambda q, m, v: R.adam_step(q, g, m, v, 1, lr=0.01, weight_decay=0.2)),
                     (RMSProp(0.02), lambda q, m, v: R.rmsprop_step(q, g, m, 0.02)),
                     (AdaGrad(0.1, lr_decay=0.1), lambda q, m, v: R.adagrad_step(q, g, m, 1, 0.1,
                                                                                 lr_decay=0.1))):
        got, _, _ = one_step(opt, p, g)
        q, m, v = p.copy(), np.zeros_like(p), np.zeros_like(p)
        ref(q, m, v)
        assert close(got, q)


def test_float32_kernel_step_matches_float64_to_float_precision(pg):
    p, g, _ = pg
    for opt in (SGD(0.1, momentum=0.9), AdaGrad(0.1), RMSProp(0.01), Adam(0.01)):
        a, _, _ = one_step(opt, p, g)
        p32, g32 = p.astype(np.float32), g.astype(np.float32)
        s = np.zeros_like(p32)
        assert not _core.optimizer_step(opt.kind, p32, g32, s, s.copy(), engine_hyper(opt), 1)
        assert rel_err(p32, a) < 1e-6


def test_optimizer_step_refuses_bad_arrays():
    p = np.zeros(4)
    with pytest.raises(ValueError, match="s1"):
        _core.optimizer_step(0, p, np.zeros(4), np.zeros(3), np.zeros(4), [0.1], 1)
    with pytest.raises(ValueError, match="g"):
        _core.optimizer_step(0, p, np.zeros(4, np.float32), np.zeros(4), np.zeros(4), [0.1], 1)
    with pytest.raises(ValueError):
        _core.optimizer_step(0, p, np.zeros(8)[::2], np.zeros(4), np.zeros(4), [0.1], 1)


def test_step_reports_non_finite():
    p = np.array([1e308, 1.0])
    assert _core.optimizer_step(0, p, np.array([-1e308, 0.0]), np.zeros(2), np.zeros(2),
                                [10.0, 0.0], 1)


def test_optimizer_validation():
    with pytest.raises(ValueError, match="nesterov"):
        SGD(0.1, nesterov=True)
    with pytest.raises(ValueError, match="momentum"):
        SGD(0.1, momentum=1.5)
    with pytest.raises(ValueError, match="beta1"):
        Adam(beta1=1.0)
    with pytest.raises(ValueError, match="rho"):
        RMSProp(rho=1.0)
    with pytest.raises(ValueError, match="lr"):
        SGD(-0.1)
    with pytest.raises(TypeError, match="nesterov"):
        SGD(0.1, momentum=0.9, nesterov=1)
    with pytest.raises(ValueError, match="optimizer"):
        vgfast.optim.make("lbfgs")
    assert isinstance(vgfast.optim.make("nesterov"), SGD)


# ----------------------------------------------------------------------------- against torch


def torch_opt(torch, name, params_or_groups):
    cls, kw = CONFIGS[name]["torch"]
    return getattr(torch.optim, cls)(params_or_groups, **kw)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_kernel_matches_torch_for_50_steps(name):
    torch = pytest.importorskip("torch")
    A, b, p0 = quadratic_problem()

    def grad(p):
        return A @ p - b

    opt = CONFIGS[name]["vg"]()
    p_vg, s1, s2 = vg_steps(opt, p0, grad, 50)

    tp = torch.nn.Parameter(torch.tensor(p0, dtype=torch.float64))
    topt = torch_opt(torch, name, [tp])
    for _ in range(50):
        g = grad(tp.detach().numpy())  # the same numpy gradient, from torch's own iterate
        tp.grad = torch.tensor(g, dtype=torch.float64)
        topt.step()
    p_t = tp.detach().numpy()
    assert rel_err(p_vg, p_t) <= 1e-12, name
    assert not np.allclose(p_vg, p0)
    # the state buffers too, under torch's names
    st = topt.state[tp]
    names = type(opt).state_names
    if name in ("momentum", "nesterov"):
        assert rel_err(s1, st["momentum_buffer"].numpy()) <= 1e-12
    elif names and name != "sgd":
        assert rel_err(s1, st[names[0]].numpy()) <= 1e-12
        if len(names) > 1:
            assert rel_err(s2, st[names[1]].numpy()) <= 1e-12


def tiny_data(n=30, n_in=5, n_out=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.random((n, n_in))
    Y = (rng.random((n, n_out)) < 0.4).astype(np.float64)  # multi-label 0/1 targets
    return X, Y


def torch_net(torch, net):
    """The same network in torch: Linear + sigmoid layers, parameters copied in, float64."""
    layers = []
    for w, b in zip(net.weights, net.biases):
        lin = torch.nn.Linear(w.shape[1], w.shape[0], dtype=torch.float64)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w.copy()))
            lin.bias.copy_(torch.from_numpy(b.copy()))
        layers.append(lin)
    return layers


def torch_logits(torch, layers, X):
    a = X
    for k, lin in enumerate(layers):
        z = lin(a)
        a = torch.sigmoid(z) if k < len(layers) - 1 else z
    return z


def torch_flat(layers):
    return np.concatenate([t.detach().numpy().ravel() for lin in layers
                           for t in (lin.weight, lin.bias)])


def torch_train(torch, layers, opt, X, Y, epochs, bs):
    """Batches in order; loss = BCE of the sigmoid outputs summed over units, mean over rows
    (written with logits, the stable form of the same function and the engine's)."""
    Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)
    for _ in range(epochs):
        for s in range(0, len(X), bs):
            opt.zero_grad()
            z = torch_logits(torch, layers, Xt[s:s + bs])
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                z, Yt[s:s + bs], reduction="sum") / z.shape[0]
            loss.backward()
            opt.step()


def weight_bias_groups(layers, wd_weights, wd_biases=0.0):
    return [{"params": [l.weight for l in layers], "weight_decay": wd_weights},
            {"params": [l.bias for l in layers], "weight_decay": wd_biases}]


@pytest.mark.parametrize("name", list(CONFIGS))
def test_train_matches_torch(name):
    """train() on [5, 7, 3] sigmoid/cross-entropy vs the same maths in torch, 3 epochs of
    batches 8, 8, 8, 6 (the last one smaller) in the data's order."""
    torch = pytest.importorskip("torch")
    X, Y = tiny_data()
    net = vgfast.Network([5, 7, 3], seed=3)
    layers = torch_net(torch, net)
    assert rel_err(torch_flat(layers), net.params) == 0
    opt = CONFIGS[name]["vg"]()
    vgfast.train(net, X, Y, epochs=3, batch_size=8, optimizer=opt, shuffle=False, monitor=False)
    wd = CONFIGS[name]["torch"][1].get("weight_decay", 0.0)
    # vgfast decays weights only: biases go in a group without decay
    topt = torch_opt(torch, name, weight_bias_groups(layers, wd))
    torch_train(torch, layers, topt, X, Y, 3, 8)
    assert rel_err(net.params, torch_flat(layers)) <= 1e-12, name
    assert opt.t == 12


@pytest.mark.parametrize("name", ["sgd", "momentum", "adam"])
def test_train_l2_matches_torch_coupled_weight_decay(name):
    """lmbda adds (lmbda / n) W to the gradient of the weights: torch's (coupled) weight_decay
    = lmbda / n on a weights-only group."""
    torch = pytest.importorskip("torch")
    X, Y = tiny_data()
    net = vgfast.Network([5, 7, 3], seed=4)
    layers = torch_net(torch, net)
    lmbda = 6.0
    vgfast.train(net, X, Y, epochs=2, batch_size=8, optimizer=CONFIGS[name]["vg"](), lmbda=lmbda,
                 shuffle=False, monitor=False)
    topt = torch_opt(torch, name, weight_bias_groups(layers, lmbda / len(X)))
    torch_train(torch, layers, topt, X, Y, 2, 8)
    assert rel_err(net.params, torch_flat(layers)) <= 1e-12


def test_adamw_does_not_decay_biases_vs_torch():
    """torch's AdamW decays every tensor it is given; vgfast decays weights only. With the
    biases in a decayed group torch's result differs on the biases alone."""
    torch = pytest.importorskip("torch")
    X, Y = tiny_data()
    net = vgfast.Network([5, 7, 3], seed=5)
    layers = torch_net(torch, net)
    vgfast.train(net, X, Y, epochs=2, batch_size=8, optimizer=AdamW(0.01, weight_decay=0.5),
                 shuffle=False, monitor=False)
    topt = torch.optim.AdamW([p for l in layers for p in (l.weight, l.bias)], lr=0.01,
                             weight_decay=0.5)
    torch_train(torch, layers, topt, X, Y, 2, 8)
    flat = torch_flat(layers)
    wmask = np.zeros(net.n_params, bool)
    for w in net._split(wmask)[0]:
        w[...] = True
    assert rel_err(net.params[~wmask], flat[~wmask]) > 1e-6
    # ... while torch with the biases in an undecayed group is vgfast (to rounding)
    layers = torch_net(torch, vgfast.Network([5, 7, 3], seed=5))
    topt = torch.optim.AdamW(weight_bias_groups(layers, 0.5), lr=0.01)
    torch_train(torch, layers, topt, X, Y, 2, 8)
    assert rel_err(net.params, torch_flat(layers)) <= 1e-12


def test_adamw_decays_weights_only_by_hand():
    """One full-batch AdamW step: W <- W (1 - lr wd) - adam(g_W); b <- b - adam(g_b)."""
    X, Y = tiny_data()
    net = vgfast.Network([5, 7, 3], seed=6)
    p0 = net.params.copy()
    g, _, _ = R.backprop(net, p0, X, Y)
    lr, wd = 0.01, 0.5
    vgfast.train(net, X, Y, epochs=1, batch_size=len(X), optimizer=AdamW(lr, weight_decay=wd),
                 shuffle=False, monitor=False)
    expected = p0.copy()
    ew, eb = net._split(expected)
    for w in ew:
        w *= 1 - lr * wd
    expected -= lr * g / (np.abs(g) + 1e-8)
    assert rel_err(net.params, expected) <= 1e-14
    # and with weight_decay = 0, AdamW is Adam
    a, b = net.copy(), net.copy()
    vgfast.train(a, X, Y, epochs=1, batch_size=10, optimizer=AdamW(lr, weight_decay=0.0),
                 shuffle=False, monitor=False)
    vgfast.train(b, X, Y, epochs=1, batch_size=10, optimizer=Adam(lr), shuffle=False,
                 monitor=False)
    assert np.array_equal(a.params, b.params)


def test_train_sgd_matches_reference_epochs():
    """Always run: train() with SGD momentum equals _reference.sgd_epoch epoch after epoch,
    the optimiser state carried across epochs."""
    X, Y = tiny_data(n=26)
    net = vgfast.Network([5, 7, 3], seed=8)
    p = net.params.copy()
    v = np.zeros_like(p)
    opt = SGD(0.2, momentum=0.7)
    for _ in range(3):
        vgfast.train(net, X, Y, epochs=1, batch_size=6, optimizer=opt, shuffle=False,
                     monitor=False)
        p = R.sgd_epoch(net, p, X, Y, np.arange(26), 6, 0.2, momentum=0.7, velocity=v)
    assert rel_err(net.params, p) <= 1e-12
    assert rel_err(opt.state["s1"], v) <= 1e-12
    assert opt.named_state()["momentum_buffer"] is opt.state["s1"]


def test_state_dict_resumes_exactly():
    X, Y = tiny_data()
    net = vgfast.Network([5, 7, 3], seed=9)
    a = net.copy()
    opt = Adam(0.01)
    vgfast.train(net, X, Y, epochs=2, batch_size=8, optimizer=opt, shuffle=False, monitor=False)
    b = net.copy()
    st = opt.state_dict()
    vgfast.train(net, X, Y, epochs=1, batch_size=8, optimizer=opt, shuffle=False, monitor=False)
    opt2 = Adam(0.01)
    opt2.load_state_dict(st)
    assert opt2.t == 8
    vgfast.train(b, X, Y, epochs=1, batch_size=8, optimizer=opt2, shuffle=False, monitor=False)
    assert np.array_equal(net.params, b.params)
    # a fresh optimiser for the last epoch restarts the moments: a different result
    vgfast.train(a, X, Y, epochs=2, batch_size=8, optimizer=Adam(0.01), shuffle=False,
                 monitor=False)
    vgfast.train(a, X, Y, epochs=1, batch_size=8, optimizer=Adam(0.01), shuffle=False,
                 monitor=False)
    assert not np.array_equal(a.params, net.params)
    with pytest.raises(ValueError, match="fresh optimizer"):
        vgfast.train(vgfast.Network([5, 4, 3]), X, Y, optimizer=opt, monitor=False)


# ----------------------------------------------------------------------------- schedules

K = np.arange(0, 60)


def test_constant():
    s = Constant(0.3)
    assert np.array_equal(s.value(K), np.full(K.shape, 0.3))


def test_linear_decay_is_goodfellow_8_14():
    lr0, lr_tau, tau = 0.5, 0.01, 40
    s = LinearDecay(lr0, lr_tau, tau)
    for k in K:
        alpha = k / tau
        expected = (1 - alpha) * lr0 + alpha * lr_tau if k <= tau else lr_tau
        assert s.value(k) == pytest.approx(expected, rel=1e-15, abs=1e-17)
    assert s.value(0) == lr0 and s.value(tau) == pytest.approx(lr_tau, rel=1e-15)
    assert np.allclose(s.value(K), [s.value(k) for k in K], rtol=0, atol=0)


def test_step_decay():
    s = StepDecay(0.4, step_size=7, gamma=0.5)
    for k in K:
        assert s.value(k) == pytest.approx(0.4 * 0.5 ** (k // 7), rel=1e-15)
    assert s.per == "epoch"


def test_exponential():
    s = Exponential(0.4, gamma=0.93)
    for k in K:
        assert s.value(k) == pytest.approx(0.4 * 0.93 ** k, rel=1e-14)


def test_inverse_time():
    s = InverseTime(0.4, decay=0.25)
    for k in K:
        assert s.value(k) == pytest.approx(0.4 / (1 + 0.25 * k), rel=1e-15)


def test_cosine():
    s = Cosine(0.4, T=30, lr_min=0.02)
    for k in K:
        kk = min(k, 30)
        assert s.value(k) == pytest.approx(0.02 + 0.38 * (1 + math.cos(math.pi * kk / 30)) / 2,
                                           rel=1e-14, abs=1e-16)
    assert s.value(0) == pytest.approx(0.4) and s.value(30) == pytest.approx(0.02)
    assert s.value(100) == pytest.approx(0.02)


def test_schedule_values_per_step_and_per_epoch():
    s = InverseTime(0.4, 0.1, per="step")
    assert np.allclose(s.values(13, 5, epoch=2), [0.4 / (1 + 0.1 * k) for k in range(13, 18)],
                       rtol=1e-15)
    e = InverseTime(0.4, 0.1, per="epoch")
    assert np.array_equal(e.values(13, 5, epoch=2), np.full(5, 0.4 / 1.2))
    assert s(3) == s.value(3)


def test_schedule_validation():
    with pytest.raises(ValueError, match="per"):
        LinearDecay(0.1, 0.01, 10, per="batch")
    with pytest.raises(ValueError, match="tau"):
        LinearDecay(0.1, 0.01, 0)
    with pytest.raises(TypeError, match="step_size"):
        StepDecay(0.1, 2.5)
    with pytest.raises(ValueError, match="lr0"):
        Exponential(-1, 0.5)


def manual_sgd(net, p, X, Y, bs, lrs, moms=None, epochs=1):
    """Batches in order; step k uses lrs[k] (and momentum moms[k]): torch's SGD equations."""
    p = p.copy()
    v = np.zeros_like(p)
    k = 0
    for _ in range(epochs):
        for s in range(0, len(X), bs):
            g, _, _ = R.backprop(net, p, X[s:s + bs], Y[s:s + bs])
            if moms is not None:
                v = moms[k] * v + g
                g = v
            p -= lrs[k] * g
            k += 1
    return p


@pytest.mark.parametrize("sched", [LinearDecay(0.8, 0.05, 9), InverseTime(0.8, 0.3),
                                   Cosine(0.8, 10, 0.01), Exponential(0.8, 0.9, per="step")])
def test_train_applies_step_schedule(sched):
    X, Y = tiny_data(n=25)
    net = vgfast.Network([5, 7, 3], seed=10)
    p0 = net.params.copy()
    h = vgfast.train(net, X, Y, epochs=3, batch_size=6, optimizer=SGD(sched), shuffle=False,
                     monitor=False)
    steps = 5  # 6, 6, 6, 6, 1
    lrs = sched.value(np.arange(3 * steps))
    assert np.allclose(h.lr, lrs[::steps], rtol=1e-15)
    assert rel_err(net.params, manual_sgd(net, p0, X, Y, 6, lrs, epochs=3)) <= 1e-12


@pytest.mark.parametrize("sched", [StepDecay(0.8, 2, 0.5), Exponential(0.8, 0.7),
                                   LinearDecay(0.8, 0.1, 3, per="epoch")])
def test_train_applies_epoch_schedule(sched):
    X, Y = tiny_data(n=25)
    net = vgfast.Network([5, 7, 3], seed=11)
    p0 = net.params.copy()
    h = vgfast.train(net, X, Y, epochs=5, batch_size=6, optimizer=SGD(sched), shuffle=False,
                     monitor=False)
    per_epoch = np.array([sched.value(e) for e in range(5)])
    assert np.allclose(h.lr, per_epoch, rtol=1e-15)
    lrs = np.repeat(per_epoch, 5)
    assert rel_err(net.params, manual_sgd(net, p0, X, Y, 6, lrs, epochs=5)) <= 1e-12


def test_step_schedule_continues_across_train_calls():
    """The step index is the optimiser's step count, so two calls of 2 epochs = one of 4."""
    X, Y = tiny_data(n=20)
    net = vgfast.Network([5, 7, 3], seed=12)
    net2 = net.copy()
    opt = SGD(LinearDecay(0.9, 0.1, 12))
    h1 = vgfast.train(net, X, Y, epochs=2, batch_size=5, optimizer=opt, shuffle=False,
                      monitor=False)
    h2 = vgfast.train(net, X, Y, epochs=2, batch_size=5, optimizer=opt, shuffle=False,
                      monitor=False)
    h = vgfast.train(net2, X, Y, epochs=4, batch_size=5, optimizer=SGD(LinearDecay(0.9, 0.1, 12)),
                     shuffle=False, monitor=False)
    assert np.array_equal(net.params, net2.params)
    assert np.allclose(np.concatenate([h1.lr, h2.lr]), h.lr, rtol=0)
    assert np.allclose(h.lr, LinearDecay(0.9, 0.1, 12).value(np.arange(0, 16, 4)), rtol=1e-15)


def test_epoch_schedule_continues_across_train_calls():
    """optimizer.epoch counts the epochs done: a per-epoch schedule continues across calls."""
    X, Y = tiny_data(n=20)
    net = vgfast.Network([5, 7, 3], seed=12)
    opt = SGD(StepDecay(0.8, 1, gamma=0.5))
    h1 = vgfast.train(net, X, Y, epochs=2, batch_size=5, optimizer=opt, monitor=False)
    h2 = vgfast.train(net, X, Y, epochs=2, batch_size=5, optimizer=opt, monitor=False)
    assert np.allclose(np.concatenate([h1.lr, h2.lr]), [0.8, 0.4, 0.2, 0.1], rtol=1e-15)
    assert opt.epoch == 4 and opt.state_dict()["epoch"] == 4


def test_momentum_schedule_values_are_checked():
    X, Y = tiny_data(n=20)
    net = vgfast.Network([5, 7, 3], seed=12)
    with pytest.raises(ValueError, match="momentum"):
        vgfast.train(net, X, Y, epochs=2, batch_size=5, monitor=False,
                     optimizer=SGD(0.1, momentum=LinearDecay(0.5, 3.0, 4)))


@pytest.mark.parametrize("nesterov", [False, True])
def test_momentum_schedule(nesterov):
    """SGD(momentum=Schedule): step k uses mu_k in b <- mu_k b + g."""
    X, Y = tiny_data(n=24)
    net = vgfast.Network([5, 7, 3], seed=13)
    p0 = net.params.copy()
    mom = LinearDecay(0.5, 0.95, 10)
    vgfast.train(net, X, Y, epochs=3, batch_size=6, optimizer=SGD(0.1, momentum=mom,
                                                                  nesterov=nesterov),
                 shuffle=False, monitor=False)
    mus = mom.value(np.arange(12))
    p = p0.copy()
    v = np.zeros_like(p)
    k = 0
    for _ in range(3):
        for s in range(0, 24, 6):
            g, _, _ = R.backprop(net, p, X[s:s + 6], Y[s:s + 6])
            v = mus[k] * v + g
            p -= 0.1 * (g + mus[k] * v if nesterov else v)
            k += 1
    assert rel_err(net.params, p) <= 1e-12
    # a constant momentum gives a different result: the schedule was used
    other = vgfast.Network([5, 7, 3], seed=13)
    vgfast.train(other, X, Y, epochs=3, batch_size=6,
                 optimizer=SGD(0.1, momentum=0.5, nesterov=nesterov), shuffle=False,
                 monitor=False)
    assert rel_err(other.params, p) > 1e-6


def test_momentum_schedule_per_epoch():
    X, Y = tiny_data(n=24)
    net = vgfast.Network([5, 7, 3], seed=14)
    p0 = net.params.copy()
    mom = StepDecay(0.9, 1, gamma=0.5)  # per epoch: 0.9, 0.45, 0.225
    vgfast.train(net, X, Y, epochs=3, batch_size=8, optimizer=SGD(0.1, momentum=mom),
                 shuffle=False, monitor=False)
    mus = np.repeat([0.9, 0.45, 0.225], 3)
    assert rel_err(net.params, manual_sgd(net, p0, X, Y, 8, np.full(9, 0.1), mus,
                                          epochs=3)) <= 1e-12


def test_schedule_with_adam_and_adagrad_vs_kernel():
    """A schedule drives Adam's lr per step (bias correction by the global step count)."""
    X, Y = tiny_data(n=20)
    for make in (lambda s: Adam(s), lambda s: AdaGrad(s, lr_decay=0.1), lambda s: RMSProp(s)):
        net = vgfast.Network([5, 7, 3], seed=15)
        p = net.params.copy()
        sched = Cosine(0.05, 8)
        opt = make(sched)
        vgfast.train(net, X, Y, epochs=2, batch_size=5, optimizer=opt, shuffle=False,
                     monitor=False)
        ref_opt = make(sched)
        s1, s2 = np.zeros_like(p), np.zeros_like(p)
        k = 0
        for _ in range(2):
            for s in range(0, 20, 5):
                g, _, _ = R.backprop(net, p, X[s:s + 5], Y[s:s + 5])
                h = engine_hyper(ref_opt, lr=sched.value(k))
                _core.optimizer_step(ref_opt.kind, p, g, s1, s2, h, k + 1)
                k += 1
        assert rel_err(net.params, p) <= 1e-12
