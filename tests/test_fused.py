"""The fast paths of the engine (issue 9) held to independent references.

- the fused SGD update (the weight-gradient GEMM writing into W or the velocity; for Nesterov the
  step taking each weight gradient from the kernels' registers, or from a formed gradient) and
  the general path all equal _reference.sgd_epoch, with and without L2, momentum and Nesterov,
  in chunked (large) and plain mini-batches;
- the divergence contract on the fused path: a non-finite gradient or an overflowing update
  stops at that step with the parameters bitwise those of the last finite step;
- X's NaN/Inf check riding on the row gather: refused with the row named, state untouched;
- train()'s default monitor: running means of the mini-batch cost and accuracy, equal to an
  explicit per-step loop;
- sigma' without cancellation against its closed form over z in [-700, 700], both dtypes;
- the run-time instruction sets compute bitwise the same numbers as the baseline.
"""
import importlib

import numpy as np
import pytest

import vgfast
from vgfast import _core
from vgfast import _reference as R

T = importlib.import_module("vgfast.train")  # the module (vgfast.train is the function)


def data(n, n_in, n_out, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, n_in)), rng.integers(0, n_out, n)


def run(net, X, y, bs, fused, monkeypatch, **kw):
    monkeypatch.setattr(T, "_FUSED", fused)
    return vgfast.train(net, X, y, epochs=1, batch_size=bs, shuffle=False, monitor=False, **kw)


def reference_epoch(net, p0, X, y, bs, lr, lmbda=0.0, momentum=0.0, nesterov=False):
    return R.sgd_epoch(net, p0, X, y, np.arange(X.shape[0]), bs, lr, lmbda, 0.0, momentum,
                       nesterov)


CASES = [  # (batch, lr, lmbda, momentum, nesterov)
    (1, 0.5, 0.0, 0.0, False),
    (10, 0.5, 0.0, 0.0, False),
    (10, 0.5, 3.0, 0.0, False),
    (7, 0.2, 1.0, 0.9, False),
    (10, 0.2, 0.0, 0.5, False),
    (10, 0.1, 2.0, 0.9, True),
    (1, 0.1, 0.0, 0.5, True),
    (300, 1.0, 2.0, 0.0, False),   # a large batch: forward/backward in chunks (general path)
    (300, 0.5, 0.0, 0.9, True),
]


@pytest.fixture(params=[True, False], ids=["in_registers", "formed"])
def wgrad_sgd(request):
    """Nesterov's fused step with each weight gradient from the kernels' registers
    (vg_wgrad_sgd, the default) or formed first."""
    before = _core._set_wgrad_sgd(request.param)
    yield request.param
    _core._set_wgrad_sgd(before)


@pytest.mark.parametrize("bs,lr,lmbda,momentum,nesterov", CASES)
@pytest.mark.parametrize("fused", [True, False])
def test_fused_and_general_paths_equal_the_reference(bs, lr, lmbda, momentum, nesterov, fused,
                                                     wgrad_sgd, monkeypatch):
    net = vgfast.Network([30, 20, 12, 5], seed=1)
    X, y = data(600, 30, 5)
    p0 = net.params.copy()
    ref = reference_epoch(net, p0, X, y, bs, lr, lmbda, momentum, nesterov)
    h = run(net, X, y, bs, fused, monkeypatch, lmbda=lmbda,
            optimizer=vgfast.SGD(lr, momentum=momentum, nesterov=nesterov))
    assert np.max(np.abs(net.params - ref)) <= 1e-12 * np.max(np.abs(ref))
    assert np.max(np.abs(net.params - p0)) > 1e-3  # it trained
    steps = -(-600 // bs)
    # which path ran: fused for every step of an SGD mini-batch that fits one
    # chunk, never when asked for the general path or when the batch is chunked
    assert h.fused_steps == (steps if fused and bs <= 128 else 0)


@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_fused_path_with_dropout_and_max_norm_equals_general_path(dtype, nesterov, wgrad_sgd,
                                                                   monkeypatch):
    """Same masks, same maths: the two paths agree to rounding (they round differently)."""
    X, y = data(200, 16, 4, seed=2)
    out = {}
    for fused in (True, False):
        net = vgfast.Network([16, 12, 8, 4], activation="relu", seed=3, dtype=dtype)
        monkeypatch.setattr(T, "_FUSED", fused)
        h = vgfast.train(net, X, y, epochs=2, batch_size=8, seed=5, dropout=(0.9, 0.7),
                         max_norm=1.5, lmbda=0.5, monitor=False,
                         optimizer=vgfast.SGD(0.05, momentum=0.8, nesterov=nesterov))
        out[fused] = net.params.astype(np.float64)
        assert h.fused_steps == (50 if fused else 0)
    tol = 1e-12 if dtype == "float64" else 2e-5
    assert np.max(np.abs(out[True] - out[False])) <= tol * np.max(np.abs(out[False]))


def _exploding_chain():
    net = vgfast.Network([1, 1, 1, 1, 1], activation="linear", output="linear",
                         cost="quadratic", seed=0)
    for w in net.weights:
        w[...] = 100.0
    return net, np.array([[1.0]]), np.array([[0.0]])


def test_fused_path_stops_at_the_first_non_finite_gradient():
    net, X, y = _exploding_chain()
    opt = vgfast.SGD(1.0)
    snapshots = []
    with pytest.raises(vgfast.DivergenceError) as ei:
        for _ in range(50):
            snapshots.append(net.params.copy())
            h = vgfast.train(net, X, y, epochs=1, batch_size=1, optimizer=opt, monitor=False)
            assert h.fused_steps == 1  # the steps before the failure were fused
    assert ei.value.what == "gradient"
    assert np.array_equal(net.params, snapshots[-1])
    assert opt.t == len(snapshots) - 1 == ei.value.step - 1


@pytest.mark.parametrize("dtype,lr", [("float64", 1e306), ("float32", 1e37)])
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_overflowing_fused_update_is_refused_and_parameters_unchanged(dtype, lr, momentum):
    """A finite gradient times a huge learning rate: the running bound sees the update could
    overflow, the step takes the saving path, which refuses it; nothing changed bitwise."""
    net = vgfast.Network([3, 4, 2], activation="linear", output="linear", cost="quadratic",
                         dtype=dtype, seed=0)
    X = np.random.default_rng(0).random((8, 3))
    Y = np.full((8, 2), 1e3)
    opt = vgfast.SGD(0.01, momentum=momentum)
    h = vgfast.train(net, X, Y, epochs=1, batch_size=4, optimizer=opt, monitor=False)
    assert h.fused_steps == 2
    before = net.params.copy()
    state = {k: v.copy() for k, v in opt.state.items()}
    opt.lr = vgfast.Constant(lr)
    with pytest.raises(vgfast.DivergenceError) as ei:
        vgfast.train(net, X, Y, epochs=1, batch_size=4, optimizer=opt, monitor=False)
    assert ei.value.what == "update" and ei.value.step == 3
    assert np.array_equal(net.params, before)
    assert opt.t == 2
    if momentum == 0:
        assert all(np.array_equal(opt.state[k], state[k]) for k in state)


def test_large_finite_weights_train_through_the_bound_fallback(monkeypatch):
    """A weight of 1e307 (finite, saturating its sigmoid unit): the running bound cannot rule
    out overflow, so every step takes the general (saving) path; training goes on and equals
    the reference."""
    net = vgfast.Network([4, 3, 2], activation="sigmoid", output="linear", cost="quadratic",
                         seed=0)
    net.weights[0][0, 0] = 1e307
    X, _ = data(20, 4, 2)
    Y = np.zeros((20, 2))
    p0 = net.params.copy()
    ref = R.sgd_epoch(net, p0, X, Y, np.arange(20), 5, 0.1)
    h = run(net, X, Y, 5, True, monkeypatch, optimizer=vgfast.SGD(0.1))
    assert h.fused_steps == 0
    assert np.isfinite(net.params).all() and net.weights[0][0, 0] == 1e307
    assert np.allclose(net.params, ref, rtol=1e-12, atol=1e-13)
    assert np.max(np.abs(net.params - p0)) > 1e-3


@pytest.mark.parametrize("bs", [10, 300])
def test_bad_row_in_X_is_refused_with_its_index_and_nothing_changes(bs):
    X, y = data(600, 8, 3)
    X[437, 5] = np.nan
    net = vgfast.Network([8, 6, 3], seed=0)
    opt = vgfast.SGD(0.1, momentum=0.9)
    vgfast.train(net, X[:400], y[:400], epochs=1, batch_size=bs, optimizer=opt, monitor=False)
    p, t, v = net.params.copy(), opt.t, opt.state["s1"].copy()
    with pytest.raises(ValueError, match=r"X contains NaN or Inf \(first at row 437, column 5\)"):
        vgfast.train(net, X, y, epochs=3, batch_size=bs, optimizer=opt, seed=1)
    assert np.array_equal(net.params, p) and opt.t == t and np.array_equal(opt.state["s1"], v)
    X[437, 5] = np.inf
    with pytest.raises(ValueError, match="row 437"):
        vgfast.train(net, X, y, epochs=0, batch_size=bs)  # no epoch: still checked


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_the_recorded_softmax_cost_is_the_evaluated_one_bit_for_bit(dtype):
    """The log-likelihood's lse(z) from the exponentials the forward pass's softmax left in its
    buffer (training) or taken again (evaluation): the same cost, bit for bit."""
    net = vgfast.Network([20, 16, 5], output="softmax", cost="log_likelihood", seed=2,
                         dtype=dtype)
    X, y = data(64, 20, 5, seed=4)
    X *= 8  # logits far apart: every exponential counts
    c0 = net.cost(X, y)
    h = vgfast.train(net, X, y, epochs=1, batch_size=64, shuffle=False, record=("cost",),
                     record_every="step", monitor=False, optimizer=vgfast.SGD(0.1))
    assert h.cost[0] == c0 and np.isfinite(c0)


def test_running_monitor_equals_an_explicit_loop():
    """History.train_cost/train_accuracy by default: each mini-batch's cost and accuracy at the
    parameters before its update, averaged over the rows, plus the penalty at the end."""
    net = vgfast.Network([10, 8, 4], seed=6)
    X, y = data(45, 10, 4)
    p = net.params.copy()
    bs, lr, lmbda = 8, 0.4, 2.0
    costs, right = [], 0
    for start in range(0, 45, bs):
        sl = slice(start, start + bs)
        _, acts = R.forward(net, p, X[sl])
        right += int(np.sum(np.argmax(acts[-1], axis=1) == y[sl]))
        _, c, _ = R.backprop(net, p, X[sl], y[sl])
        costs.append(c * len(y[sl]))
        p = R.sgd_epoch(net, p, X[sl], y[sl], np.arange(len(y[sl])), bs, lr, lmbda * len(y[sl])
                        / 45)
    pen = 0.5 * lmbda / 45 * sum(float(np.sum(w ** 2)) for w in net._split(p)[0])
    h = vgfast.train(net, X, y, epochs=1, batch_size=bs, shuffle=False, lmbda=lmbda,
                     optimizer=vgfast.SGD(lr))
    assert np.max(np.abs(net.params - p)) <= 1e-12 * np.max(np.abs(p))
    assert h.train_cost[0] == pytest.approx(sum(costs) / 45 + pen, rel=1e-12)
    assert h.train_accuracy[0] == right / 45
    # 'full' is the exact pass at the final parameters; False records nothing
    h = vgfast.train(net, X, y, epochs=1, batch_size=bs, monitor="full", lmbda=lmbda)
    assert h.train_cost[0] == pytest.approx(net.cost(X, y, lmbda=lmbda), rel=1e-13)
    assert h.train_accuracy[0] == net.accuracy(X, y)
    assert vgfast.train(net, X, y, epochs=1, monitor=False).train_cost.shape == (0,)
    with pytest.raises(ValueError, match="monitor must be"):
        vgfast.train(net, X, y, monitor="sometimes")


def _sigma_prime(z):
    e = np.exp(-np.abs(z))
    return e / ((1 + e) * (1 + e))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_sigmoid_slope_keeps_relative_precision_over_the_whole_range(dtype):
    """dC/dz of a sigmoid unit = delta * sigma'(z), with sigma' from the exponential: it must
    not round to 0 where a(1 - a) would (z >= 37 in float64, 17 in float32)."""
    z = np.concatenate([np.linspace(-700, 700, 2801), [-37.5, 37.0, 40.0, 17.0, 20.0, 30.0]])
    net = vgfast.Network([1, 1, 1], activation="sigmoid", output="linear", cost="quadratic",
                         dtype=dtype, seed=0)
    net.weights[0][...] = 1
    net.biases[0][...] = 0
    net.weights[1][...] = 1
    net.biases[1][...] = 0
    X = z.reshape(-1, 1).astype(dtype)
    a = net.feedforward(X)
    # quadratic cost, linear output: delta_out = a - y = 1 for y = a - 1
    y = (a.astype(np.float64) - 1).astype(dtype)
    _, _, deltas = net.trace(X, y)
    got = deltas[0][:, 0].astype(np.float64)
    exact = _sigma_prime(X[:, 0].astype(np.float64)) * (a[:, 0].astype(np.float64)
                                                         - y[:, 0].astype(np.float64))
    # relative error wherever the slope is a normal number; a few units of the last place of
    # the subnormals below that (the exponential is built in two factors, so they are right)
    tiny = np.finfo(dtype).tiny
    normal = exact >= tiny
    rel = np.abs(got[normal] - exact[normal]) / exact[normal]
    eps = np.finfo(dtype).eps
    assert rel.max() <= 16 * eps, (rel.max(), z[normal][np.argmax(rel)])
    assert np.all(np.abs(got[~normal] - exact[~normal]) <= 4 * tiny * eps)
    assert normal.sum() == (z.size if dtype == "float64" else np.sum(np.abs(z) <= 87.3))
    # the reference computes it the same way
    assert np.allclose(R.derivative(z, R.sigmoid(z), "sigmoid"), _sigma_prime(z), rtol=4e-16,
                       atol=0)


def _isas():
    names = ["baseline", "avx2", "avx512"]
    best = names.index(_core.isa_supported())
    return names[:best + 1]


@pytest.fixture
def restore_isa():
    before = _core.get_isa()
    yield
    _core.set_isa(before)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_instruction_sets_compute_bitwise_the_same(dtype, restore_isa):
    """Every kernel variant is the same C compiled for a wider vector unit, with no FMA
    contraction and no reassociation: training and evaluation give identical bits."""
    isas = _isas()
    before = _core.set_direct(False)  # the first layer's own FMA kernels: tests/test_direct.py
    X, y = data(240, 24, 6, seed=7)
    results = {}
    for isa in isas:
        assert _core.set_isa(isa) == isa
        out = []
        for act, output, cost in [("sigmoid", "sigmoid", "cross_entropy"),
                                  ("tanh", "softmax", "log_likelihood"),
                                  ("relu", "linear", "quadratic"),
                                  ("elu", "sigmoid", "quadratic")]:
            net = vgfast.Network([24, 16, 9, 6], activation=act, output=output, cost=cost,
                                 dtype=dtype, seed=2)
            Y = y if cost != "quadratic" else np.eye(6)[y]
            h = vgfast.train(net, X, Y, epochs=2, batch_size=12, seed=1, dropout=0.8,
                             record=("grad_norms", "activation_mean"),
                             optimizer=vgfast.SGD(0.05, momentum=0.5))
            out += [net.params.copy(), net.feedforward(X), h.grad_norms, h.train_cost]
            opt = vgfast.Adam(1e-3)
            vgfast.train(net, X, Y, epochs=1, batch_size=200, optimizer=opt, monitor=False,
                         seed=3)
            out += [net.params.copy(), opt.state["s2"].copy()]
        results[isa] = out
    _core.set_direct(before)
    for isa in isas[1:]:
        for a, b in zip(results["baseline"], results[isa]):
            assert np.array_equal(a, b), isa


def test_set_isa_refuses_unknown_or_unsupported_sets(restore_isa):
    with pytest.raises(ValueError, match="instruction set must be one of"):
        _core.set_isa("sse9")
    if _core.isa_supported() != "avx512":
        with pytest.raises(ValueError, match="does not run"):
            _core.set_isa("avx512")
    assert _core.set_isa("auto") == _core.isa_supported()


def test_data_bound_and_the_gather_check():
    X = np.random.default_rng(0).normal(size=(50, 33))
    assert _core.data_bound(X) == np.abs(X).max()
    assert _core.data_bound(X.astype(np.float32)) == np.abs(X.astype(np.float32)).max()
    for bad in (np.nan, np.inf, -np.inf):
        Y = X.copy()
        Y[49, 32] = bad
        assert _core.data_bound(Y) == -1.0
        assert _core.data_bound(Y.astype(np.float32)) == -1.0
    Z = np.full((3, 3), 1.7976931348623157e308)
    assert _core.data_bound(Z) == 1.7976931348623157e308


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_cross_entropy_cost_keeps_relative_precision(dtype):
    """The per-example cross-entropy softplus(z) - y z, from the vectorised log1p(e^-|z|) with
    max(z, 0) - y z kept apart: relative precision for every z, also where the cost is tiny
    (y = 1, z >> 0: e^-z, which softplus(z) - z in floating point would round to 0)."""
    lim = 700 if dtype == "float64" else 80
    z = np.concatenate([np.linspace(-lim, lim, 4001), [0.0, 1e-8, -1e-8]])
    net = vgfast.Network([1, 1], output="sigmoid", cost="cross_entropy", dtype=dtype, seed=0)
    net.weights[0][...] = 1
    net.biases[0][...] = 0
    X = z.reshape(-1, 1).astype(dtype)
    zz = X[:, 0].astype(np.float64)
    eps = np.finfo(dtype).eps
    for y in (0, 1):
        got = np.array([net.cost(X[i:i + 1], np.array([[y]], dtype)) for i in range(len(X))])
        exact = np.logaddexp(0, zz) if y == 0 else np.logaddexp(0, -zz)
        assert np.max(np.abs(got - exact) / exact) <= 8 * eps
