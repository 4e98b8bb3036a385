"""vgfast.analysis.gradient_statistics against explicit per-example loops (and torch.func).

The oracle: each g_i is formed on its own (``net.gradient`` of one row, ``_reference.backprop``
of one row, or torch.func's vmap of grad), and the issue-12 formulas are applied literally to
the matrix of per-example gradients. The closed forms under test never form a g_i.
"""
import numpy as np
import pytest

import vgfast
from vgfast import _reference
from vgfast.analysis import GradientStatistics, gradient_statistics

RTOL = 1e-10
SCALARS = ("grad_norm", "trace_cov", "noise_scale", "norm_test", "inner_test", "ortho_test",
           "gsnr")
LAYERED = ("layer_grad_norm", "layer_trace_cov", "layer_noise_scale", "layer_norm_test",
           "layer_gsnr")

# (sizes, hidden activation, output, cost)
ARCHS = [
    ([5, 4, 3], "sigmoid", "sigmoid", "cross_entropy"),
    ([6, 5, 4, 3], "tanh", "softmax", "log_likelihood"),
    ([4, 6, 6, 2], "relu", "linear", "quadratic"),
    ([3, 5, 4, 2], ["leaky_relu", "elu"], "sigmoid", "quadratic"),
    ([5, 7, 3], "softplus", "softmax", "quadratic"),
    ([3, 2], "sigmoid", "sigmoid", "cross_entropy"),  # one layer: L = 1
]


def make(arch, m, seed=0, dtype="float64"):
    sizes, act, out, cost = arch
    net = vgfast.Network(sizes, activation=act, output=out, cost=cost, seed=seed, dtype=dtype)
    rng = np.random.default_rng(seed + 1)
    X = rng.normal(size=(m, sizes[0]))
    if cost == "quadratic" and out == "linear":
        Y = rng.normal(size=(m, sizes[-1]))
    elif cost == "quadratic":
        Y = rng.random((m, sizes[-1]))
    else:
        Y = rng.integers(0, sizes[-1], m)
    return net, X, Y


def per_example_gradients(net, X, Y, how="engine"):
    """(m, n_params): row i is the gradient of example i's own cost, formed on its own."""
    rows = []
    for i in range(X.shape[0]):
        if how == "engine":
            rows.append(net.gradient(X[i:i + 1], Y[i:i + 1]).flat.astype(np.float64))
        else:
            g, _, _ = _reference.backprop(net, net.params.astype(np.float64), X[i:i + 1],
                                          Y[i:i + 1])
            rows.append(g)
    return np.array(rows)


def layer_slices(net):
    out, o = [], 0
    for n_in, n_out in zip(net.sizes[:-1], net.sizes[1:]):
        out.append(slice(o, o + n_out * (n_in + 1)))
        o += n_out * (n_in + 1)
    return out


def literal(G, eps=1e-5):
    """The issue's definitions applied to the per-example gradients G (m, P), term by term."""
    m = G.shape[0]
    gbar = G.mean(axis=0)
    gg = gbar @ gbar
    tc = sum(np.sum((g - gbar) ** 2) for g in G) / (m - 1)
    inner = sum((g @ gbar - gg) ** 2 for g in G) / (m - 1)
    ortho = sum(np.sum((g - (g @ gbar / gg) * gbar) ** 2) for g in G) / (m - 1)
    gsnr = np.mean(gbar ** 2 / (np.sum(G ** 2, axis=0) / m - gbar ** 2 + eps))
    return dict(sq_norms=np.array([g @ g for g in G]), grad_norm=np.sqrt(gg), trace_cov=tc,
                noise_scale=tc / gg, norm_test=np.sqrt(tc / (m * gg)),
                inner_test=np.sqrt(inner / (m * gg ** 2)), ortho_test=np.sqrt(ortho / (m * gg)),
                gsnr=gsnr)


def literal_layers(net, G, eps=1e-5):
    per = [literal(G[:, s], eps) for s in layer_slices(net)]
    return {"layer_" + k: np.array([p[k] for p in per])
            for k in ("grad_norm", "trace_cov", "noise_scale", "norm_test", "gsnr")}


def assert_matches(s, G, net, rtol=RTOL, eps=1e-5):
    want = literal(G, eps)
    want.update(literal_layers(net, G, eps))
    for k, v in want.items():
        np.testing.assert_allclose(getattr(s, k), v, rtol=rtol, atol=0, err_msg=k)


@pytest.mark.parametrize("arch", ARCHS, ids=lambda a: f"{a[0]}-{a[1]}-{a[3]}")
@pytest.mark.parametrize("m", [2, 13])
def test_equals_per_example_loop(arch, m):
    net, X, Y = make(arch, m)
    s = gradient_statistics(net, X, Y)
    assert isinstance(s, GradientStatistics) and s.m == m
    assert s.sq_norms.shape == (m,)
    for k in LAYERED:
        assert getattr(s, k).shape == (net.L,)
    assert_matches(s, per_example_gradients(net, X, Y), net)


def test_equals_reference_backprop_loop_and_other_epsilon():
    arch = ARCHS[1]
    net, X, Y = make(arch, 9, seed=3)
    G = per_example_gradients(net, X, Y, how="reference")
    assert_matches(gradient_statistics(net, X, Y), G, net)
    assert_matches(gradient_statistics(net, X, Y, epsilon=0.25), G, net, eps=0.25)


def test_after_training_and_identities():
    """Away from initialisation (a few epochs of SGD), and the identities between quantities."""
    net, X, Y = make(ARCHS[0], 40, seed=5)
    vgfast.train(net, X, Y, epochs=3, batch_size=8, optimizer=vgfast.SGD(0.5), seed=0,
                 monitor=False)
    s = gradient_statistics(net, X[:17], Y[:17])
    assert_matches(s, per_example_gradients(net, X[:17], Y[:17]), net)
    assert np.isclose(s.noise_scale, 17 * s.norm_test ** 2, rtol=1e-12)
    assert np.isclose(s.grad_norm ** 2, np.sum(s.layer_grad_norm ** 2), rtol=1e-12)
    assert np.isclose(s.trace_cov, np.sum(s.layer_trace_cov), rtol=1e-12)
    assert np.isclose(s.grad_norm, np.linalg.norm(net.gradient(X[:17], Y[:17]).flat),
                      rtol=1e-12)


def test_identical_rows_have_no_variance():
    """m copies of one example: g_i = gbar, so every variance is 0 (up to rounding)."""
    net, X, Y = make(ARCHS[1], 1, seed=2)
    s = gradient_statistics(net, np.repeat(X, 6, axis=0), np.repeat(Y, 6, axis=0))
    scale = np.sum(s.sq_norms)
    assert 0 <= s.trace_cov <= 1e-14 * scale
    assert np.all(s.layer_trace_cov >= 0)
    assert 0 <= s.norm_test <= 1e-6 and 0 <= s.ortho_test <= 1e-6 and s.inner_test <= 1e-6
    assert np.all(np.isfinite(s.layer_gsnr))


def test_one_row_gives_nan_variances():
    net, X, Y = make(ARCHS[0], 1)
    s = gradient_statistics(net, X, Y)
    g = net.gradient(X, Y).flat
    np.testing.assert_allclose(s.sq_norms, [g @ g], rtol=RTOL)
    np.testing.assert_allclose(s.grad_norm, np.linalg.norm(g), rtol=RTOL)
    np.testing.assert_allclose(s.layer_grad_norm,
                               [np.linalg.norm(g[sl]) for sl in layer_slices(net)], rtol=RTOL)
    for k in SCALARS[1:]:
        assert np.isnan(getattr(s, k)), k
    for k in LAYERED[1:]:
        assert np.isnan(getattr(s, k)).all(), k


def test_zero_mean_gradient_gives_nan_ratios():
    """Linear output, quadratic cost, targets = outputs: every delta is 0, so gbar = 0."""
    net = vgfast.Network([3, 4, 2], activation="tanh", output="linear", cost="quadratic",
                         seed=0)
    X = np.random.default_rng(0).normal(size=(5, 3))
    s = gradient_statistics(net, X, net.feedforward(X))
    assert s.grad_norm == 0 and s.trace_cov == 0 and s.gsnr == 0
    np.testing.assert_array_equal(s.sq_norms, 0)
    for k in ("noise_scale", "norm_test", "inner_test", "ortho_test"):
        assert np.isnan(getattr(s, k)), k
    assert np.isnan(s.layer_noise_scale).all() and np.isnan(s.layer_norm_test).all()


def test_opposite_examples_cancel():
    """Two rows whose gradients are exact opposites: gbar = 0 while the variance is not."""
    net = vgfast.Network([2, 2], output="linear", cost="quadratic", seed=0)
    net.params = np.zeros(net.n_params)  # output 0, so delta_i = -y_i
    X = np.array([[1.0, 2.0], [1.0, 2.0]])
    Y = np.array([[1.0, -1.0], [-1.0, 1.0]])  # delta_1 = -delta_0, a_1 = a_0: g_1 = -g_0
    s = gradient_statistics(net, X, Y)
    G = per_example_gradients(net, X, Y)
    np.testing.assert_array_equal(G[0], -G[1])
    np.testing.assert_allclose(s.sq_norms, [G[0] @ G[0], G[1] @ G[1]], rtol=RTOL)
    assert s.grad_norm == 0
    np.testing.assert_allclose(s.trace_cov, G[0] @ G[0] + G[1] @ G[1], rtol=RTOL)
    assert s.gsnr == 0
    for k in ("noise_scale", "norm_test", "inner_test", "ortho_test"):
        assert np.isnan(getattr(s, k)), k


def test_dead_layer_is_nan_in_its_own_ratios_only():
    """ReLU layer 1 dead for every row: layer 0's gradient is 0 (NaN ratios, gsnr 0), the
    other layers and the whole network stay defined and match the loop."""
    net, X, Y = make(ARCHS[2], 8)
    net.biases[0][...] = -1e3
    s = gradient_statistics(net, X, Y)
    assert s.layer_grad_norm[0] == 0 and s.layer_trace_cov[0] == 0 and s.layer_gsnr[0] == 0
    assert np.isnan(s.layer_noise_scale[0]) and np.isnan(s.layer_norm_test[0])
    assert np.all(np.isfinite(s.layer_noise_scale[1:])) and np.isfinite(s.noise_scale)
    G = per_example_gradients(net, X, Y)
    want = literal(G)
    for k in SCALARS:
        np.testing.assert_allclose(getattr(s, k), want[k], rtol=RTOL, err_msg=k)


@pytest.mark.parametrize("arch", ARCHS[:3], ids=lambda a: f"{a[0]}-{a[1]}")
def test_float32_within_rounding_of_its_trace(arch):
    """A float32 network: the statistics are exactly those of its float32 deltas and activations
    (sums in float64, so 1e-10 still holds), and they differ from the float64 network's at the
    same parameters by no more than the bound propagated from the measured difference of the two
    traces (triangle inequalities, below)."""
    net32, X, Y = make(arch, 11, dtype="float32")
    net64, _, _ = make(arch, 11)
    net64.params = net32.params.astype(np.float64)
    X = X.astype(np.float32).astype(np.float64)
    s32, s64 = gradient_statistics(net32, X, Y), gradient_statistics(net64, X, Y)
    assert s32.sq_norms.dtype == np.float64
    # (1) exact given the float32 trace: g_i^l = (delta_i a_i^T, delta_i) formed in float64
    _, A32, D32 = net32.trace(X, Y)
    G32 = np.hstack([np.hstack([(D[:, :, None] * A[:, None, :]).reshape(len(D), -1), D])
                     for D, A in zip((d.astype(np.float64) for d in D32),
                                     (a.astype(np.float64) for a in A32[:-1]))])
    assert_matches(s32, G32, net32)
    # (2) against float64: eps_i = max over layers of the relative row errors of delta and a.
    # ||g_i^l||^2 = ||delta||^2 (||a||^2 + 1) moves by at most (1 + eps)^4 - 1 relatively; the
    # vector g_i^l by at most eta = (1 + eps)^2 - 1 relatively, so ||gbar32 - gbar64|| <= beta.
    _, A64, D64 = net64.trace(X, Y)
    eps = np.zeros(X.shape[0])
    for Da, Db, Aa, Ab in zip(D32, D64, A32[:-1], A64[:-1]):
        for P, Q in ((Da, Db), (Aa, Ab)):
            num = np.linalg.norm(P.astype(np.float64) - Q, axis=1)
            eps = np.maximum(eps, num / np.maximum(np.linalg.norm(Q, axis=1), 1e-300))
    assert eps.max() < 1e-5  # float32 rounding, not a different function
    slack = 1e-13
    rel_sq = (1 + eps) ** 4 - 1 + slack
    assert np.all(np.abs(s32.sq_norms - s64.sq_norms) <= rel_sq * s64.sq_norms)
    eta = (1 + eps) ** 2 - 1 + slack
    beta = np.mean(eta * np.sqrt(s64.sq_norms))
    assert abs(s32.grad_norm - s64.grad_norm) <= beta + slack * s64.grad_norm
    m, gg = X.shape[0], s64.grad_norm ** 2
    d_gg = beta * (2 * s64.grad_norm + beta)
    d_tc = (np.sum(rel_sq * s64.sq_norms) + m * d_gg) / (m - 1)
    assert abs(s32.trace_cov - s64.trace_cov) <= d_tc
    d_ns = (d_tc + s64.noise_scale * d_gg) / (gg - d_gg)  # |d(a/b)| <= (da + |a/b| db)/(b - db)
    assert abs(s32.noise_scale - s64.noise_scale) <= d_ns
    assert abs(s32.norm_test - s64.norm_test) <= d_ns / m / s64.norm_test


def test_against_torch_func():
    torch = pytest.importorskip("torch")
    from torch.func import grad, vmap

    for arch in ARCHS[:5]:
        net, X, Y = make(arch, 12, seed=7)
        sizes, _, out, cost = arch
        acts = net.activations
        Ws = [torch.from_numpy(w.copy()) for w in net.weights]
        bs = [torch.from_numpy(b.copy()) for b in net.biases]
        T = torch.from_numpy(Y.astype(np.float64) if Y.ndim == 2 else np.eye(sizes[-1])[Y])
        hidden = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu,
                  "softplus": torch.nn.functional.softplus,
                  "elu": torch.nn.functional.elu,
                  "leaky_relu": lambda z: torch.nn.functional.leaky_relu(z, net.leaky_slope)}

        def loss(params, x, t):
            a = x
            for l in range(len(Ws)):
                z = params[2 * l] @ a + params[2 * l + 1]
                a = hidden[acts[l]](z) if l < len(Ws) - 1 else z
            if cost == "cross_entropy":
                return torch.sum(torch.nn.functional.softplus(a) - t * a)
            if cost == "log_likelihood":
                return torch.logsumexp(a, 0) - torch.sum(t * a)
            y = {"linear": a, "sigmoid": torch.sigmoid(a), "softmax": torch.softmax(a, 0)}[out]
            return 0.5 * torch.sum((y - t) ** 2)

        params = [p for wb in zip(Ws, bs) for p in wb]
        per = vmap(grad(loss), in_dims=(None, 0, 0))(params, torch.from_numpy(X), T)
        G = torch.cat([p.reshape(X.shape[0], -1) for p in per], dim=1).numpy()
        assert_matches(gradient_statistics(net, X, Y), G, net)


def test_bad_input():
    net, X, Y = make(ARCHS[0], 4)
    with pytest.raises(TypeError, match="net must be a vgfast.Network"):
        gradient_statistics("net", X, Y)
    with pytest.raises(ValueError, match="epsilon"):
        gradient_statistics(net, X, Y, epsilon=0)
    with pytest.raises(ValueError, match="epsilon"):
        gradient_statistics(net, X, Y, epsilon=float("nan"))
    with pytest.raises(ValueError, match="epsilon"):
        gradient_statistics(net, X, Y, epsilon=True)
    with pytest.raises(ValueError, match="columns"):
        gradient_statistics(net, X[:, :2], Y)
    with pytest.raises(ValueError, match="X"):
        gradient_statistics(net, np.where(np.eye(4, 5) > 0, np.nan, X), Y)
    with pytest.raises(ValueError):
        gradient_statistics(net, X, Y[:3])
    with pytest.raises(ValueError):
        gradient_statistics(net, X, np.array([0, 1, 2, 3]))  # label 3 out of range (3 outputs)
    with pytest.raises(TypeError):
        gradient_statistics(net, X.astype(int), Y)
    with pytest.raises(ValueError, match="empty"):
        gradient_statistics(net, X[:0], Y[:0])
    bn = vgfast.Network([5, 4, 3], batch_norm=True, seed=0)
    with pytest.raises(ValueError, match="batch-normalised"):
        gradient_statistics(bn, X, Y)


def test_overflow_is_an_error_not_nan():
    net = vgfast.Network([3, 4, 2], activation="relu", output="linear", cost="quadratic", seed=0)
    net.params = np.full(net.n_params, 1e150)
    X = np.ones((3, 3))
    with pytest.raises(FloatingPointError, match="overflow"):
        gradient_statistics(net, X, np.zeros((3, 2)))
