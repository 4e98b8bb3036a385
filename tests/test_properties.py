"""Property tests (hypothesis) over random architectures, batch sizes, activations, output/cost
pairs and dtypes.

* The gradient agrees with central finite differences (float64, smooth activations: FD across
  a kink of relu/abs/leaky_relu is not a derivative, so those get the finiteness property).
* Gradient, cost and output are finite and of the right shape for every activation and dtype.
* Training with a moderate learning rate never crashes and leaves finite parameters; the
  History has one row per record and one column per layer.
"""
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vgfast
from vgfast.network import HIDDEN, VALID_PAIRS

from conftest import fd_gradient, rel_err

SMOOTH = ["sigmoid", "tanh", "linear", "elu", "softplus"]
PAIRS = sorted(VALID_PAIRS)
FAST = settings(max_examples=40, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])


@st.composite
def problems(draw, activations=tuple(sorted(HIDDEN)), dtypes=("float64", "float32")):
    """(net, X, Y) with 1-4 weight layers of width 1-12 and n rows."""
    L = draw(st.integers(1, 4), label="weight layers")
    sizes = draw(st.lists(st.integers(1, 12), min_size=L + 1, max_size=L + 1), label="sizes")
    acts = draw(st.lists(st.sampled_from(list(activations)), min_size=L - 1, max_size=L - 1),
                label="activations")
    output, cost = draw(st.sampled_from(PAIRS), label="output, cost")
    dtype = draw(st.sampled_from(list(dtypes)), label="dtype")
    seed = draw(st.integers(0, 2 ** 16), label="seed")
    n = draw(st.integers(1, 16), label="rows")
    labels = draw(st.booleans(), label="labels") and output != "linear"
    net = vgfast.Network(sizes, activation=acts, output=output, cost=cost, dtype=dtype,
                         seed=seed, leaky_slope=0.1, elu_alpha=1.0)
    rng = np.random.default_rng(seed + 1)
    X = rng.normal(size=(n, sizes[0])).astype(dtype)
    if labels:
        Y = rng.integers(0, sizes[-1], n)
    else:
        Y = rng.random((n, sizes[-1]))
        if output == "softmax":
            Y /= Y.sum(axis=1, keepdims=True)
    return net, X, Y


@FAST
@given(problems(activations=SMOOTH, dtypes=("float64",)))
def test_gradient_matches_central_differences(problem):
    """||g - g_fd|| <= 1e-6 ||g|| + 1e-9: central differences have truncation error
    O(h^2 f''') ~ 1e-12 and rounding error ~ eps |C| / h ~ 1e-10 per entry with h = 1e-6."""
    net, X, Y = problem
    g = net.gradient(X, Y)
    fd = fd_gradient(net, X, Y)
    err = np.linalg.norm(g.flat - fd)
    assert err <= 1e-6 * np.linalg.norm(fd) + 1e-9 * np.sqrt(net.n_params), \
        (rel_err(g.flat, fd), err)
    assert abs(g.cost - net.cost(X, Y)) <= 1e-13 * max(1.0, abs(g.cost))


@FAST
@given(problems())
def test_gradient_cost_and_output_are_finite_and_shaped(problem):
    net, X, Y = problem
    out = net.feedforward(X)
    g = net.gradient(X, Y)
    assert out.shape == (X.shape[0], net.sizes[-1]) and out.dtype == net.dtype
    assert g.flat.shape == (net.n_params,) and g.flat.dtype == net.dtype
    assert np.isfinite(out).all() and np.isfinite(g.flat).all() and np.isfinite(g.cost)
    assert [w.shape for w in g.weights] == [w.shape for w in net.weights]
    if net.output in ("sigmoid", "softmax"):
        assert ((out >= 0) & (out <= 1)).all()
    if net.output == "softmax":
        assert np.allclose(out.sum(axis=1), 1, atol=1e-5)
    # the gradient of the mean over rows is the mean of the per-row gradients
    rows = [net.gradient(X[i:i + 1], Y[i:i + 1]).flat for i in range(X.shape[0])]
    tol = 1e-10 if net.dtype == np.float64 else 1e-4
    assert np.allclose(g.flat, np.mean(rows, axis=0), rtol=tol, atol=tol)


OPTIMIZERS = [lambda: vgfast.SGD(0.05), lambda: vgfast.SGD(0.02, momentum=0.9),
              lambda: vgfast.Adam(1e-3), lambda: vgfast.RMSProp(1e-3),
              lambda: vgfast.AdaGrad(0.02)]


@FAST
@given(problems(), st.data())
def test_training_never_crashes_and_stays_finite(problem, data):
    net, X, Y = problem
    n = X.shape[0]
    bs = data.draw(st.integers(1, n), label="batch size")
    make = data.draw(st.sampled_from(OPTIMIZERS), label="optimizer")
    dropout = data.draw(st.sampled_from([None, 0.8, (0.9, 0.5)]), label="dropout")
    lmbda = data.draw(st.sampled_from([0.0, 0.1]), label="lmbda")
    record_every = data.draw(st.sampled_from(["epoch", "step", 2]), label="record_every")
    epochs = 3
    h = vgfast.train(net, X, Y, epochs=epochs, batch_size=bs, optimizer=make(), seed=0,
                     dropout=dropout, lmbda=lmbda, record=("grad_norms", "cost"),
                     record_every=record_every)
    assert np.isfinite(net.params).all()
    steps = (n + bs - 1) // bs
    per = {"epoch": steps, "step": 1, 2: 2}[record_every]
    records = epochs * ((steps + per - 1) // per)
    assert h.grad_norms.shape == (records, net.L) and h.cost.shape == (records,)
    assert np.isfinite(h.grad_norms).all() and np.isfinite(h.cost).all()
    assert h.train_cost.shape == (epochs,) and np.isfinite(h.train_cost).all()
    assert ((h.train_accuracy >= 0) & (h.train_accuracy <= 1)).all()
    assert h.record_steps[-1] == epochs * steps


@FAST
@given(problems(dtypes=("float64",)), st.integers(1, 5))
def test_batch_gradient_step_equals_one_sgd_epoch_with_full_batch(problem, k):
    """One full-batch SGD step moves the parameters by exactly -lr * gradient."""
    net, X, Y = problem
    g = net.gradient(X, Y).flat
    p0 = net.params.copy()
    lr = 0.01 * k
    vgfast.train(net, X, Y, epochs=1, batch_size=X.shape[0], optimizer=vgfast.SGD(lr),
                 shuffle=False, monitor=False)
    assert np.allclose(net.params, p0 - lr * g, rtol=1e-12, atol=1e-15)
