"""The gradient-flow analysis tools that run through the compiled engine, each held to
something independent of the code under test:

- speed: the pure-numpy ``_reference.backprop`` (batch and one row at a time), central finite
  differences of the engine's cost, and the ordering Nielsen reports for ``[784, 30, 30, 10]``;
- jacobian: central finite differences of ``feedforward``; the engine's/reference's delta^1;
  the closed form ``lambda^t`` of a power of a symmetric matrix;
- curvature: central differences of ``net.gradient`` for every supported activation and
  (output, cost) pair, symmetry, ``numpy.linalg.eigvalsh`` of the dense Hessian, the Taylor
  remainder of eq. 8.10, and the order of convergence of Newton's method;
- variance: statistics recomputed here from ``_reference.forward``, and the Glorot/He forward
  (and backward) variance formulas within an error bound derived from the sampling of the weights
  (see ``_weight_sampling_sd``).
"""

import numpy as np
import pytest

from vgfast import _reference as R
from vgfast.analysis import curvature, jacobian, speed, variance
from vgfast.history import History
from vgfast.network import Network
from vgfast.optim import SGD
from vgfast.train import train

from conftest import rel_err

PAIRS = [("sigmoid", "cross_entropy"), ("softmax", "log_likelihood"), ("sigmoid", "quadratic"),
         ("linear", "quadratic"), ("softmax", "quadratic")]
HIDDEN = list(curvature.SUPPORTED_HIDDEN)


def _data(rng, net, m, soft=False):
    X = rng.standard_normal((m, net.sizes[0]))
    k = net.sizes[-1]
    if net.output == "softmax" and not soft:
        return X, rng.integers(0, k, m)
    if net.output == "softmax":
        T = rng.random((m, k))
        return X, T / T.sum(axis=1, keepdims=True)
    return X, rng.random((m, k))


# ============================================================================ speed


@pytest.mark.parametrize("act,out,cost", [("sigmoid", "sigmoid", "cross_entropy"),
                                          ("tanh", "softmax", "log_likelihood"),
                                          ("relu", "linear", "quadratic")])
def test_gradient_norms_match_reference_backprop(rng, act, out, cost):
    net = Network([7, 6, 5, 4], activation=act, output=out, cost=cost, seed=3)
    X, Y = _data(rng, net, 37)
    gn = speed.gradient_norms(net, X, Y)
    g, c, _ = R.backprop(net, net.params, X, Y)
    gw, gb = net._split(g)
    np.testing.assert_allclose(gn.batch, [np.linalg.norm(b) for b in gb], rtol=1e-12)
    np.testing.assert_allclose(gn.weights, [np.linalg.norm(w) for w in gw], rtol=1e-12)
    np.testing.assert_allclose(gn.hidden, gn.batch[:-1])
    assert gn.cost == pytest.approx(c, rel=1e-12)
    # per example: one reference backprop per row, norms averaged
    per = np.zeros(net.L)
    for i in range(len(X)):
        gi, _, _ = R.backprop(net, net.params, X[i:i + 1], Y[i:i + 1])
        per += [np.linalg.norm(b) for b in net._split(gi)[1]]
    np.testing.assert_allclose(gn.per_example_mean, per / len(X), rtol=1e-12)
    assert np.all(gn.per_example_mean >= gn.batch * (1 - 1e-12))  # triangle inequality
    # chunking changes nothing but rounding
    gc = speed.gradient_norms(net, X, Y, chunk=5)
    np.testing.assert_allclose(gc.batch, gn.batch, rtol=1e-12)
    np.testing.assert_allclose(gc.per_example_mean, gn.per_example_mean, rtol=1e-12)


def test_neuron_gradients_are_finite_differences_of_the_cost(rng):
    net = Network([8, 7, 7, 3], seed=1)
    X, Y = _data(rng, net, 50)
    h = 1e-4  # truncation O(h^2) ~ 1e-9; rounding eps C / h ~ 1e-11
    for layer in (0, 1):
        got = speed.neuron_gradients(net, X, Y, layer, k=6)
        assert got.shape == (6,)
        fd = np.empty(6)
        for j in range(6):
            b = net.biases[layer]
            old = b[j]
            b[j] = old + h
            cp = net.cost(X, Y)
            b[j] = old - h
            cm = net.cost(X, Y)
            b[j] = old
            fd[j] = (cp - cm) / (2 * h)
        np.testing.assert_allclose(got, fd, rtol=1e-6, atol=1e-7 * np.abs(fd).max())
    with pytest.raises(ValueError, match="hidden layer"):
        speed.neuron_gradients(net, X, Y, 2)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hidden_layers_learn_slower_towards_the_input(seed):
    """Nielsen ch. 5: at initialisation ||delta^1|| < ||delta^2|| (< ||delta^3||...)."""
    rng = np.random.default_rng(100 + seed)
    X = rng.random((1000, 784))  # uniform [0, 1) "pixels"
    y = rng.integers(0, 10, 1000)
    for sizes in ([784, 30, 30, 10], [784, 30, 30, 30, 10], [784, 30, 30, 30, 30, 10]):
        net = Network(sizes, seed=seed)
        gn = speed.gradient_norms(net, X, y)
        assert np.all(np.diff(gn.hidden) > 0), gn.hidden
        assert speed.speed_ratio(gn) > 1


def test_speed_ratio_and_plot_speed_on_a_training_history(rng):
    net = Network([20, 10, 10, 10, 4], seed=0)
    X = rng.random((200, 20))
    y = rng.integers(0, 4, 200)
    hist = train(net, X, y, epochs=3, batch_size=20, optimizer=SGD(0.1),
                 record=("grad_norms",), record_every=2, seed=0)
    r = speed.speed_ratio(hist)
    g = np.asarray(hist.grad_norms)
    np.testing.assert_allclose(r, g[:, -2] / g[:, 0])
    np.testing.assert_allclose(r, hist.speed_ratio())
    assert speed.speed_ratio(g[0]) == pytest.approx(g[0, -2] / g[0, 0])
    with pytest.raises(ValueError, match="two hidden layers"):
        speed.speed_ratio(np.ones(2))
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    assert isinstance(speed.plot_speed(hist), Figure)
    assert isinstance(speed.plot_speed([speed.gradient_norms(net, X, y)] * 3), Figure)
    assert isinstance(speed.plot_neuron_gradients(net, X, y), Figure)


# ========================================================================== jacobian


@pytest.mark.parametrize("out,cost", [("softmax", "log_likelihood"), ("sigmoid", "cross_entropy"),
                                      ("linear", "quadratic")])
@pytest.mark.parametrize("act", ["sigmoid", "tanh", "softplus", "elu"])
def test_input_output_jacobian_is_finite_differences_of_feedforward(rng, act, out, cost):
    net = Network([6, 5, 4, 3], activation=act, output=out, cost=cost, seed=2)
    X = rng.standard_normal((5, 6))
    J = jacobian.input_output_jacobian(net, X)
    assert J.shape == (5, 3, 6)
    h = 1e-5
    fd = np.empty_like(J)
    for k in range(6):
        e = np.zeros(6)
        e[k] = h
        fd[:, :, k] = (net.feedforward(X + e) - net.feedforward(X - e)) / (2 * h)
    assert rel_err(J, fd) < 1e-7  # FD: O(h^2) truncation + eps |a| / h rounding
    Jr = jacobian.input_output_jacobian(net, X, mode="reverse")
    np.testing.assert_allclose(Jr, J, rtol=1e-12, atol=1e-15)
    s = jacobian.jacobian_singular_values(net, X)
    np.testing.assert_allclose(s, np.linalg.svd(fd, compute_uv=False), rtol=1e-6, atol=1e-10)


@pytest.mark.parametrize("out,cost", PAIRS)
def test_backprop_product_delta1_equals_the_gradient(rng, out, cost):
    net = Network([5, 6, 4, 4, 3], activation="sigmoid", output=out, cost=cost, seed=4)
    x = rng.standard_normal(5)
    y = 1 if out == "softmax" else rng.random(3)
    bp = jacobian.backprop_product(net, x, y)
    Y1 = np.array([y]) if out == "softmax" else y[None, :]
    g = net.gradient(x[None, :], Y1)  # one example: dC/db^1 = delta^1
    np.testing.assert_allclose(bp.delta1, g.biases[0], rtol=1e-12, atol=1e-16)
    np.testing.assert_allclose(bp.backprop, g.biases[0], rtol=1e-12, atol=1e-16)
    _, _, ref = R.backprop(net, net.params, x[None, :], Y1)
    for d, r in zip(bp.deltas, ref):
        np.testing.assert_allclose(d, r[0], rtol=1e-12, atol=1e-16)
    # the factors of eq. 124 multiplied out explicitly
    prod = np.eye(bp.factors[0].shape[0])
    for F in bp.factors:
        prod = prod @ F
    np.testing.assert_allclose(prod @ bp.grad_a, bp.delta1, rtol=1e-10, atol=1e-16)
    # G_j = Sigma'(z^j) (W^{j+1})^T: ||G_j|| <= ||W^{j+1}|| / 4 for sigmoid
    for j in range(net.L - 1):
        assert bp.factor_norms[j] <= np.linalg.norm(net.weights[j + 1], 2) / 4 + 1e-15
    assert bp.singular_values[0] <= np.prod(bp.factor_norms[:-1]) * (1 + 1e-12)
    np.testing.assert_allclose(np.linalg.svd(bp.product, compute_uv=False), bp.singular_values)


def test_backprop_product_survives_a_saturated_output():
    net = Network([2, 3, 1], activation="sigmoid", output="sigmoid", cost="cross_entropy",
                  init="large", seed=0)
    net.biases[-1][...] = 60.0  # a^L rounds to exactly 1: grad_a C is infinite
    bp = jacobian.backprop_product(net, np.array([0.3, -0.2]), np.array([0.0]))
    assert not np.isfinite(bp.grad_a).all()
    g = net.gradient(np.array([[0.3, -0.2]]), np.array([[0.0]]))
    np.testing.assert_allclose(bp.delta1, g.biases[0], rtol=1e-12)


def test_power_illustration_scales_components_by_lambda_to_the_t():
    lam = [0.5, 0.9, 1.0, 1.1, 2.0]
    res = jacobian.power_illustration(lam, 30, seed=1)
    np.testing.assert_allclose(res.Q.T @ res.Q, np.eye(5), atol=1e-14)
    # repeated multiplication = the closed form, to rounding relative to ||W^s v|| (in floating
    # point the vanishing components are swamped by the exploding one's rounding error)
    err = np.abs(res.components - res.predicted)
    assert np.all(err <= 1e-13 * (res.steps[:, None] + 1) * res.norms[:, None])
    np.testing.assert_allclose(res.scale, np.abs(lam) ** 30)
    np.testing.assert_allclose(np.linalg.matrix_power(res.W, 30) @ res.v,
                               res.Q @ res.components[-1], rtol=1e-9)
    c = np.abs(res.predicted[-1] / res.predicted[0])
    np.testing.assert_allclose(c, res.scale)
    assert c[0] < 1e-8 and c[4] > 1e8 and c[2] == pytest.approx(1.0)
    assert res.norms[-1] == pytest.approx(2.0 ** 30 * abs(res.predicted[0, 4]), rel=1e-6)
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    assert isinstance(jacobian.plot_power_illustration(res), Figure)


# ========================================================================= curvature


def _fd_hvp(net, X, Y, v, lmbda=0.0, h=1e-5):
    """Central differences of the engine's gradient (+ the L2 term) along v."""
    p0 = net.params.copy()
    m = len(X)

    def grad(p):
        net.params[...] = p
        g = net.gradient(X, Y).flat.copy()
        for gw, w in zip(net._split(g)[0], net._split(p)[0]):
            gw += (lmbda / m) * w
        return g

    try:
        return (grad(p0 + h * v) - grad(p0 - h * v)) / (2 * h)
    finally:
        net.params[...] = p0


@pytest.mark.parametrize("out,cost", PAIRS)
@pytest.mark.parametrize("act", HIDDEN)
def test_hvp_matches_central_differences_of_the_gradient(rng, act, out, cost):
    net = Network([4, 5, 3, 3], activation=act, output=out, cost=cost, seed=3, bias_init=0.1)
    X, Y = _data(rng, net, 13, soft=True)
    for lmbda in (0.0, 0.7):
        v = rng.standard_normal(net.n_params)
        Hv = curvature.hvp(net, X, Y, v, lmbda=lmbda)
        assert rel_err(Hv, _fd_hvp(net, X, Y, v, lmbda)) < 1e-6
    # symmetry: v^T H u = u^T H v
    op = curvature.HessianOperator(net, X, Y)
    u, v = rng.standard_normal((2, net.n_params))
    a, b = v @ op.matvec(u), u @ op.matvec(v)
    assert abs(a - b) <= 1e-12 * max(abs(a), np.linalg.norm(op.matvec(u)) * np.linalg.norm(v))


def test_hvp_refuses_unsupported_combinations_by_name(rng, monkeypatch):
    # as if the engine had grown an activation and a cost the R-operator does not know (the
    # architecture itself is read-only, so the supported lists shrink instead)
    net = Network([3, 4, 2], activation="softplus", output="sigmoid", cost="quadratic", seed=0)
    X, Y = _data(rng, net, 5)
    monkeypatch.setattr(curvature, "SUPPORTED_HIDDEN",
                        tuple(a for a in curvature.SUPPORTED_HIDDEN if a != "softplus"))
    with pytest.raises(NotImplementedError, match="softplus"):
        curvature.hvp(net, X, Y, np.zeros(net.n_params))
    monkeypatch.undo()
    monkeypatch.setattr(curvature, "SUPPORTED_OUTPUT", (("sigmoid", "cross_entropy"),))
    with pytest.raises(NotImplementedError, match="quadratic"):
        curvature.hessian(net, X, Y)


def test_dense_hessian_is_symmetric_and_top_eigenvalue_matches_eigvalsh(rng):
    net = Network([3, 4, 3, 2], activation="tanh", output="softmax", cost="log_likelihood",
                  seed=5)
    X, Y = _data(rng, net, 30)
    H = curvature.hessian(net, X, Y, lmbda=0.1)
    assert H.shape == (net.n_params, net.n_params)
    assert np.abs(H - H.T).max() <= 1e-12 * np.abs(H).max()
    # a column is a finite-difference Hessian column too
    e = np.zeros(net.n_params)
    e[7] = 1.0
    assert rel_err(H[:, 7], _fd_hvp(net, X, Y, e, 0.1)) < 1e-6
    ev = np.linalg.eigvalsh((H + H.T) / 2)
    top = ev[np.argmax(np.abs(ev))]
    res = curvature.top_eigenvalue(net, X, Y, iters=2000, tol=1e-8, lmbda=0.1)
    assert res.converged
    assert res.value == pytest.approx(top, rel=1e-9)
    assert rel_err(H @ res.vector, res.value * res.vector) < 1e-7
    with pytest.raises(ValueError, match="max_params"):
        curvature.hessian(net, X, Y, max_params=10)


def test_curvature_along_is_the_second_order_model_of_a_gradient_step(rng):
    net = Network([5, 6, 3], activation="tanh", output="sigmoid", cost="cross_entropy", seed=1)
    X, Y = _data(rng, net, 40)
    H = curvature.hessian(net, X, Y)
    g = net.gradient(X, Y).flat
    eps = np.array([1e-3, 2e-3, 4e-3])
    ca = curvature.curvature_along(net, X, Y, eps=eps)
    assert ca.gTg == pytest.approx(g @ g, rel=1e-12)
    assert ca.gHg == pytest.approx(g @ H @ g, rel=1e-10)
    assert ca.rayleigh == pytest.approx(ca.gHg / ca.gTg)
    assert ca.best_step == pytest.approx(ca.gTg / ca.gHg)
    np.testing.assert_allclose(ca.predicted, ca.predicted_change(eps))
    # eq. 8.10 is exact to second order: the remainder shrinks like eps^3
    rem = np.abs(ca.actual - ca.predicted)
    assert np.all(rem < 1e-3 * np.abs(ca.actual))
    assert rem[2] / rem[0] == pytest.approx(64, rel=0.2)


def _teacher_problem(seed, m=16):
    """A [2, 2, 1] tanh network fit to 16 points it can fit exactly (its own outputs).

    With 16 >= 9 points the zero-residual minimum is isolated and the Hessian there is
    J^T J of full rank (well conditioned); with the 4 points of XOR the minima of a 9-parameter
    net form a manifold and the Hessian is singular, so Newton would converge only linearly.
    """
    rng = np.random.default_rng(5)
    X = rng.uniform(-2, 2, (m, 2))
    teacher = Network([2, 2, 1], activation="tanh", output="linear", cost="quadratic",
                      init="large", seed=100 + seed, bias_init="normal")
    Y = teacher.feedforward(X)
    net = teacher.copy()
    net.params[...] += 0.3 * np.random.default_rng(seed).standard_normal(net.n_params)
    return teacher, net, X, Y


def _equivalents(net):
    """The 8 parameter vectors of a [2, 2, 1] tanh net computing the same function (swap the
    hidden units; flip the sign of a unit's incoming weights, bias and outgoing weight)."""
    out = []
    for perm in ([0, 1], [1, 0]):
        for signs in ([1, 1], [1, -1], [-1, 1], [-1, -1]):
            c = net.copy()
            s = np.array(signs, float)
            c.weights[0][...] = net.weights[0][perm] * s[:, None]
            c.biases[0][...] = net.biases[0][perm] * s
            c.weights[1][...] = net.weights[1][:, perm] * s
            out.append(c.params.copy())
    return out


@pytest.mark.parametrize("seed", [0, 3, 4])
@pytest.mark.parametrize("solver", ["dense", "cg"])
def test_newton_converges_quadratically_near_a_well_conditioned_minimum(solver, seed):
    teacher, net, X, Y = _teacher_problem(seed)
    H = curvature.hessian(teacher, X, Y)
    ev = np.linalg.eigvalsh((H + H.T) / 2)
    assert ev[0] > 1e-4  # the minimum is isolated and well conditioned
    stars = _equivalents(teacher)
    for p in stars:  # the symmetries really are symmetries
        other = teacher.copy()
        other.params[...] = p
        np.testing.assert_allclose(other.feedforward(X), Y, atol=1e-14)
    errs = [min(np.linalg.norm(net.params - p) for p in stars)]

    def record(k, n):
        errs.append(min(np.linalg.norm(n.params - p) for p in stars))

    res = curvature.newton(net, X, Y, iters=40, solver=solver, callback=record)
    e = np.array(errs)
    assert res.converged and res.grad_norm[-1] < 1e-12 and e[-1] < 1e-13, (e, res.grad_norm)
    assert np.all(np.diff(res.cost) <= 0)  # never accepts an increase
    assert len(e) == len(res.cost)
    # e_k = distance to the (exact, zero-residual) minimiser. Newton: e_{k+1} <= C e_k^2 with
    # C = M / (2 mu) (M the Lipschitz constant of H, mu = lambda_min). Linear convergence at
    # rate r would give e_{k+1} / e_k^2 = r / e_k, unbounded as e_k -> 0. Check the steps that
    # start within 1e-3 of the minimiser and end well above the float64 floor
    # (eps ||theta|| ~ 1e-15).
    steps = [k for k in range(len(e) - 1) if e[k] < 1e-3 and e[k + 1] > 1e-12]
    assert len(steps) >= 2, e
    ratios = e[[k + 1 for k in steps]] / e[steps] ** 2
    assert ratios.max() < 1e3, (e, ratios)


def test_newton_with_l2_decreases_the_regularised_objective(rng):
    net = Network([3, 4, 2], activation="relu", output="softmax", cost="log_likelihood", seed=0)
    X, Y = _data(rng, net, 40)
    res = curvature.newton(net, X, Y, iters=10, lmbda=1.0, solver="cg")
    assert res.cost[-1] < res.cost[0]
    assert np.all(np.diff(res.cost) <= 0)
    assert res.cost[-1] == pytest.approx(net.cost(X, Y, lmbda=1.0))
    assert res.solver == "cg" and len(res.damping) == len(res.cost) - 1


# ========================================================================== variance


def test_layer_statistics_match_a_numpy_recomputation(rng):
    net = Network([6, 8, 7, 3], activation="tanh", output="softmax", cost="log_likelihood",
                  seed=2)
    X, Y = _data(rng, net, 300)
    st = variance.layer_statistics(net, X, Y, chunk=64)
    zs, acts = R.forward(net, net.params, X)
    g, _, deltas = R.backprop(net, net.params, X, Y)
    np.testing.assert_allclose(st.var_z, [np.var(z) for z in zs], rtol=1e-10)
    np.testing.assert_allclose(st.mean_z, [np.mean(z) for z in zs], rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(st.var_a, [np.var(a) for a in acts[1:]], rtol=1e-10)
    np.testing.assert_allclose(st.mean_sq_a, [np.mean(a * a) for a in acts[1:]], rtol=1e-10)
    assert st.mean_sq_input == pytest.approx(np.mean(X * X), rel=1e-12)
    np.testing.assert_allclose(st.mean_sq_fprime, [np.mean((1 - a * a) ** 2) for a in acts[1:-1]],
                               rtol=1e-10)
    np.testing.assert_allclose(st.var_delta, [np.var(d) for d in deltas], rtol=1e-10)
    np.testing.assert_allclose(st.var_grad_w, [np.var(w) for w in net._split(g)[0]], rtol=1e-10)
    assert variance.layer_statistics(net, X).var_delta is None


def _weight_sampling_sd(A, m):
    """Relative sd of the pooled Var(z) = (1/m) sum_j w_j^T S w_j around sigma^2 tr(S).

    Given the previous layer's activations A (n rows), S = A^T A / n, and the m rows w_j of the
    layer's weights drawn i.i.d. N(0, sigma^2 I) independently of A: w^T S w has mean
    sigma^2 tr S and variance 2 sigma^4 tr(S^2). The prediction uses the realised weight
    variance np.var(W) (= sigma^2 tr(w w^T)/d on average), which removes the isotropic part:
    the error is (1/m) sum_j w_j^T S_c w_j with S_c = S - (tr S / d) I, of sd
    sigma^2 sqrt(2 / m) ||S_c||_F. Relative to sigma^2 tr S this is
    sqrt(2 / m) ||S_c||_F / tr S. For the first layer with standard normal inputs,
    ||S_c||_F^2 ~ d^2 / n (Marchenko-Pastur), giving sqrt(2 / (n m)) -- 0.22 % for
    n = 2000, m = 200; deeper layers are more anisotropic and the sd grows.
    """
    S = A.T @ A / A.shape[0]
    d = S.shape[0]
    Sc = S - np.trace(S) / d * np.eye(d)
    return np.sqrt(2.0 / m) * np.linalg.norm(Sc) / np.trace(S)


@pytest.mark.parametrize("act,init,gain", [("linear", "lecun_normal", 1.0),
                                           ("tanh", "lecun_normal", 0.3),
                                           ("relu", "he_normal", 1.0),
                                           ("sigmoid", "glorot_normal", 1.0)])
def test_forward_variance_theory_within_weight_sampling_error(act, init, gain):
    """Var(z^l) = n_{l-1} Var(w) E[(a^{l-1})^2] (He et al. eq. 7) at depth 5, width 200,
    n = 2000, within 5 sd of the sampling of the weights (``_weight_sampling_sd``)."""
    rng = np.random.default_rng(2024)  # data seed unrelated to the weights' seed
    X = rng.standard_normal((2000, 200))
    net = Network([200] * 6 + [10], activation=act, output="softmax", cost="log_likelihood",
                  init=init, seed=7, gain=gain, bias_init="zeros")
    th = variance.theory_forward(net, X)
    zs, acts = R.forward(net, net.params, X)
    measured = np.array([np.var(z) for z in zs])
    np.testing.assert_allclose(th.measured, measured, rtol=1e-10)
    sd = np.array([_weight_sampling_sd(acts[l], net.sizes[l + 1]) for l in range(net.L)])
    assert sd[0] == pytest.approx(np.sqrt(2 / (2000 * 200)), rel=0.1)
    rel = np.abs(th.one_step / measured - 1)
    assert np.all(rel < 5 * sd), (rel, sd)
    if act in ("linear", "tanh"):
        # propagated from the input alone: the per-layer errors add up (independently)
        rel_p = np.abs(th.propagated / measured - 1)
        assert np.all(rel_p < 5 * np.sqrt(np.cumsum(sd ** 2)) + 1e-3), (rel_p, sd)
    if act == "linear":  # Glorot & Bengio eq. 5: Var(z^l) = Var(x) prod n Var(w)
        np.testing.assert_allclose(th.propagated, np.mean(X * X) * np.cumprod(th.gain))


@pytest.mark.parametrize("act,init,gain", [("linear", "lecun_normal", 1.0),
                                           ("tanh", "lecun_normal", 0.3)])
def test_backward_variance_theory_within_weight_sampling_error(act, init, gain):
    """Var(delta^l) = n_{l+1} Var(w^{l+1}) Var(delta^{l+1}) E[f'^2] (He et al. eq. 13), the
    same bound with the roles of rows and columns swapped: S = delta^T delta / n of the layer
    above, m = n_l columns. (delta^{l+1} depends on W^{l+1} only through the output, weakly.)"""
    rng = np.random.default_rng(77)
    X = rng.standard_normal((2000, 200))
    y = rng.integers(0, 10, 2000)
    net = Network([200] * 6 + [10], activation=act, output="softmax", cost="log_likelihood",
                  init=init, seed=8, gain=gain, bias_init="zeros")
    tb = variance.theory_backward(net, X, y)
    _, _, deltas = R.backprop(net, net.params, X, y)
    meas = np.array([np.mean(d * d) for d in deltas])
    np.testing.assert_allclose(tb.measured, meas, rtol=1e-10)
    for l in range(net.L - 1):
        sd = _weight_sampling_sd(deltas[l + 1], net.sizes[l + 1])
        nonlin = 0.0 if act == "linear" else 0.02  # E[f'^2] taken as independent of delta
        assert abs(tb.one_step[l] / meas[l] - 1) < 5 * sd + nonlin, (l, tb.one_step, meas)


def test_gaussian_mean_square_closed_forms_and_quadrature():
    mu = np.array([-1.0, 0.0, 0.7])
    np.testing.assert_allclose(variance.gaussian_mean_square("linear", mu, 2.0), mu ** 2 + 2)
    assert variance.gaussian_mean_square("relu", np.zeros(1), 3.0)[0] == pytest.approx(1.5)
    z = np.random.default_rng(0).standard_normal(2_000_000)
    for name, alpha in [("relu", 0), ("leaky_relu", 0.1), ("tanh", 0), ("sigmoid", 0),
                        ("elu", 1.0), ("softplus", 0), ("abs", 0)]:
        got = variance.gaussian_mean_square(name, mu, 1.7, alpha)
        mc = [np.mean(R.activate(m + np.sqrt(1.7) * z, name, alpha) ** 2) for m in mu]
        np.testing.assert_allclose(got, mc, rtol=5e-3)


def test_saturation_high_for_large_init_and_low_for_nielsen():
    rng = np.random.default_rng(3)
    X = rng.random((1000, 784))
    big = variance.saturation(Network([784, 30, 30, 30, 10], init="large", seed=0), X)
    small = variance.saturation(Network([784, 30, 30, 30, 10], init="nielsen", seed=0), X)
    assert np.all(big.saturated > 0.3) and big.saturated[0] > 0.8
    assert np.all(small.saturated < 0.05)
    assert np.all(big.saturated > small.saturated)
    assert big.threshold == pytest.approx(0.19)


def test_saturation_and_dead_units_by_definition(rng):
    net = Network([5, 40, 30, 2], activation="sigmoid", init="large", seed=1)
    X = rng.standard_normal((200, 5))
    s = variance.saturation(net, X, chunk=33)
    _, acts = R.forward(net, net.params, X)
    want = [np.mean((a < 0.05) | (a > 0.95)) for a in acts[1:-1]]
    np.testing.assert_allclose(s.saturated, want)
    relu = Network([5, 40, 30, 2], activation="relu", init="he_normal", seed=1)
    relu.biases[0][:10] = -100.0  # ten units that never fire
    s = variance.saturation(relu, X)
    zs, acts = R.forward(relu, relu.params, X)
    np.testing.assert_allclose(s.dead, [np.mean(np.all(a == 0, axis=0)) for a in acts[1:-1]])
    assert s.dead[0] >= 10 / 40
    np.testing.assert_allclose(s.saturated, [np.mean(z <= 0) for z in zs[:-1]])


def test_variance_study_table_shows_what_each_init_is_for():
    t = variance.variance_study(depth=6, width=64, n=400, seed=0)
    k = 3 * 5
    assert t["activation"].shape == t["init"].shape == (k,)
    for key in ("var_z", "var_a", "var_delta", "var_grad_w", "theory_var_z", "saturated",
                "gain"):
        assert t[key].shape == (k, 6) and np.isfinite(t[key]).all()

    def row(act, init):
        return np.flatnonzero((t["activation"] == act) & (t["init"] == init))[0]

    # He keeps ReLU pre-activations at scale (ratio last/first layer near 1);
    # "large" (Var(w) = 1, n Var(w) = 64) blows them up by about (64/2)^5
    he, large = row("relu", "he_normal"), row("relu", "large")
    assert 0.2 < t["var_z"][he, -1] / t["var_z"][he, 0] < 5
    assert t["var_z"][large, -1] / t["var_z"][large, 0] > 1e6
    # the lecture's U(-1/sqrt(n), 1/sqrt(n)) (n Var(w) = 1/3) shrinks tanh activations
    lu = row("tanh", "lecun_uniform")
    assert t["var_a"][lu, -1] < 0.01 * t["var_a"][lu, 0]
    np.testing.assert_allclose(t["gain"][lu], 1 / 3, rtol=0.1)
    # and a 'large' sigmoid network is saturated
    assert t["saturated"][row("sigmoid", "large")].min() > 0.3


def test_variance_plots_return_figures(rng):
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    t = variance.variance_study(depth=3, width=16, n=50, activations=("tanh", "relu"),
                                inits=("nielsen", "he_normal"))
    assert isinstance(variance.plot_variance_study(t, "var_delta"), Figure)
    net = Network([6, 8, 8, 3], activation="tanh", seed=0)
    X = rng.standard_normal((100, 6))
    y = rng.integers(0, 3, 100)
    assert isinstance(variance.plot_histograms(net, X, y), Figure)
    assert isinstance(variance.plot_histograms(net, X), Figure)


def test_history_plot_speed_is_consistent_with_gradient_norms(rng):
    """A History built from gradient_norms results plots like one recorded by train()."""
    net = Network([10, 6, 6, 3], seed=0)
    X = rng.random((60, 10))
    y = rng.integers(0, 3, 60)
    gn = speed.gradient_norms(net, X, y)
    h = History()
    h.grad_norms = [gn.batch.tolist()]
    h._finish(net.L)
    assert speed.speed_ratio(h)[0] == pytest.approx(speed.speed_ratio(gn))


# ==================================================================== batch norm


def _bn_net(rng, **kw):
    net = Network([5, 6, 4, 3], activation="tanh", output="softmax", cost="log_likelihood",
                  batch_norm=True, seed=2, **kw)
    for l in range(2):  # non-trivial running statistics and affine parameters
        net.bn_running_mean[l][...] = rng.standard_normal(net.sizes[l + 1])
        net.bn_running_var[l][...] = rng.uniform(0.5, 2.0, net.sizes[l + 1])
        net.bn_gamma[l][...] = rng.uniform(0.5, 1.5, net.sizes[l + 1])
        net.bn_beta[l][...] = 0.1 * rng.standard_normal(net.sizes[l + 1])
    return net


def test_batch_normalised_networks_jacobian_and_norms_use_running_statistics(rng):
    net = _bn_net(rng)
    X = rng.standard_normal((4, 5))
    y = rng.integers(0, 3, 4)
    J = jacobian.input_output_jacobian(net, X)
    h = 1e-5
    fd = np.empty_like(J)
    for k in range(5):
        e = np.zeros(5)
        e[k] = h
        fd[:, :, k] = (net.feedforward(X + e) - net.feedforward(X - e)) / (2 * h)
    assert rel_err(J, fd) < 1e-7
    np.testing.assert_allclose(jacobian.input_output_jacobian(net, X, "reverse"), J,
                               rtol=1e-12, atol=1e-15)
    gn = speed.gradient_norms(net, X, y)
    g, _, _ = R.backprop(net, net.params, X, y, batch_stats=False)
    np.testing.assert_allclose(gn.batch, [np.linalg.norm(b) for b in net._split(g)[1]],
                               rtol=1e-12)


def test_batch_normalised_networks_are_refused_where_the_formulas_do_not_apply(rng):
    net = _bn_net(rng)
    X = rng.standard_normal((4, 5))
    y = rng.integers(0, 3, 4)
    for f in (lambda: curvature.hvp(net, X, y, np.zeros(net.n_params)),
              lambda: curvature.newton(net, X, y),
              lambda: jacobian.backprop_product(net, X[0], y[0]),
              lambda: variance.theory_forward(net, X),
              lambda: variance.theory_backward(net, X, y)):
        with pytest.raises(NotImplementedError, match="batch_norm"):
            f()
