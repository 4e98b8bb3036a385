"""Numbers at the edge of the float range (issue 14 items 7, 8 and 10): a clear error or a
finite, correct result, never Inf or NaN handed back as an answer."""
import math
import re
from decimal import Decimal, getcontext

import numpy as np
import pytest

import vgfast
from vgfast import _reference as R
from vgfast.analysis import curvature, interval



def data(n=24, n_in=4, n_out=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, n_in)), rng.integers(0, n_out, n)


X, y = data()


def exploding_linear(dtype="float64"):
    """A linear network whose output overflows: weights 1e200 through three layers."""
    net = vgfast.Network([4, 3, 3], activation="linear", output="linear", cost="quadratic",
                         dtype=dtype, seed=0)
    big = 1e200 if dtype == "float64" else 1e30
    net.weights = [np.full((3, 4), big), np.full((3, 3), big)]
    return net


# ---------------------------------------------------------------------------- item 8, Python


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_overflowing_outputs_raise_instead_of_returning_inf_or_nan(dtype):
    net = exploding_linear(dtype)
    Xd, T = X.astype(dtype), np.zeros((len(X), 3))
    with np.errstate(all="ignore"):  # the numpy twin shows what the engine meets
        zs, acts = R.forward(net, net.params, Xd)
    assert not np.isfinite(acts[-1]).all()  # the output really overflows
    for call, what in ((lambda: net.feedforward(Xd), "the network's output"),
                       (lambda: net.predict(Xd), "the network's output"),
                       (lambda: net.accuracy(Xd, y), "the network's output"),
                       (lambda: net.cost(Xd, T), "the cost"),
                       (lambda: net.gradient(Xd, T), "the cost"),
                       (lambda: net.trace(Xd, T), "z^2")):
        with pytest.raises(FloatingPointError, match=re.escape(what) + rf".* is not finite.*"
                                                                       rf"overflowed {dtype}"):
            call()
    assert np.isfinite(net.params).all()


def test_gradient_overflow_names_the_layer():
    """A finite cost whose gradient overflows: dC/dW^1 = (W^2' delta^2) x' with W^2 and x of
    1e200, while W^1 = 1e-250 keeps every activation (and so the cost) finite."""
    net = vgfast.Network([2, 2, 1], activation="linear", output="sigmoid",
                         cost="cross_entropy", seed=0)
    net.weights = [np.full((2, 2), 1e-250), np.full((1, 2), 1e200)]
    net.biases = [np.zeros(2), np.zeros(1)]
    Xg, Yg = np.array([[1e200, 1e200]]), np.array([[0.0]])
    with np.errstate(all="ignore"):
        g_ref, c_ref, _ = R.backprop(net, net.params, Xg, Yg)
    w1, w2 = R.split(net, g_ref)[0]
    assert math.isfinite(c_ref) and not np.isfinite(w1).all() and np.isfinite(w2).all()
    with pytest.raises(FloatingPointError, match=r"the gradient is not finite in layer 0 "
                                                 r"\(W\^1, b\^1\)"):
        net.gradient(Xg, Yg)
    assert net.cost(Xg, Yg) == pytest.approx(c_ref, rel=1e-12)  # the cost alone is fine


def test_penalty_overflow_is_an_error_not_inf():
    net = vgfast.Network([4, 3, 3], seed=0)
    with pytest.raises(FloatingPointError, match="penalty overflows"):
        net.cost(X, y, lmbda=1.7e308, n=1)


def test_normal_values_are_unchanged():
    """The checks cost nothing in meaning: the same numbers as the numpy twin."""
    net = vgfast.Network([4, 5, 3], activation="tanh", output="softmax", cost="log_likelihood",
                         seed=1)
    g = net.gradient(X, y)
    g_ref, c_ref, _ = R.backprop(net, net.params, X, y)
    np.testing.assert_allclose(g.flat, g_ref, rtol=1e-12, atol=1e-15)
    assert g.cost == pytest.approx(c_ref, rel=1e-13)


# ---------------------------------------------------------------------------- item 8, engine


def _sigmoid_slope_closed_form(z):
    """sigma'(z) = e^{-|z|} / (1 + e^{-|z|})^2, exact to rounding for every z."""
    e = np.exp(-np.abs(z))
    return e / ((1 + e) * (1 + e))


def _chain(dtype):
    """x -> z = x -> sigmoid -> linear output a = sigma(z), quadratic cost against t = 0:
    the per-example dC/db^1 is sigma(z) sigma'(z)."""
    net = vgfast.Network([1, 1, 1], activation="sigmoid", output="linear", cost="quadratic",
                         dtype=dtype, seed=0)
    net.weights = [np.ones((1, 1)), np.ones((1, 1))]
    net.biases = [np.zeros(1), np.zeros(1)]
    return net


def _check_slope(got, z, dtype):
    s = np.where(z >= 0, 1 / (1 + np.exp(-np.abs(z))), np.exp(-np.abs(z)) /
                 (1 + np.exp(-np.abs(z))))
    want = s * _sigmoid_slope_closed_form(z)  # float64
    fi = np.finfo(dtype)
    normal = want > fi.tiny
    rel = np.abs(got[normal] - want[normal]) / want[normal]
    assert rel.max() <= 64 * fi.eps, (z[normal][np.argmax(rel)], rel.max())
    assert np.all(np.abs(got[~normal] - want[~normal]) <= fi.tiny)


Z = np.linspace(-700, 700, 2801)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_engine_sigmoid_slope_matches_the_closed_form_across_the_range(dtype):
    """Issue 14 item 8: sigma' taken as a(1-a) vanishes for z >= 37 (float64) / 17 (float32)
    and is 4-17% off just below; the slope must be formed without cancellation."""
    net = _chain(dtype)
    _, _, deltas = net.trace(Z[:, None].astype(dtype), np.zeros((len(Z), 1)))
    _check_slope(deltas[0][:, 0].astype(np.float64), Z, dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_reference_sigmoid_slope_matches_the_closed_form_across_the_range(dtype):
    net = _chain(dtype)
    _, _, deltas = R.backprop(net, net.params, Z[:, None].astype(dtype),
                              np.zeros((len(Z), 1)))
    _check_slope(deltas[0][:, 0].astype(np.float64), Z, dtype)


def test_max_norm_rescales_rows_whose_norm_overflows():
    """A row of 1e200s has norm 1.4e200 (its square overflows): max_norm must scale it to norm
    c, not to 0."""
    net = vgfast.Network([2, 1], output="sigmoid", cost="cross_entropy", seed=0)
    net.weights = [np.full((1, 2), 1e200)]
    Xm, Ym = np.full((4, 2), 0.5), np.ones((4, 1))  # saturated at the target: gradient 0
    vgfast.train(net, Xm, Ym, epochs=1, batch_size=2, optimizer=vgfast.SGD(0.0), max_norm=1.0,
                 monitor=False)
    np.testing.assert_allclose(net.weights[0], np.full((1, 2), 1 / math.sqrt(2)), rtol=1e-15)


@pytest.mark.parametrize("sign", [1, -1])
def test_softmax_of_an_infinite_logit(sign):
    """A logit that overflows to +inf takes all the probability; one at -inf takes none."""
    net = vgfast.Network([1, 3], output="softmax", cost="log_likelihood", seed=0)
    net.weights = [np.array([[sign * 1e308], [1.0], [0.0]])]
    net.biases = [np.array([sign * 1e308, 0.0, 0.0])]
    out = net.feedforward(np.array([[1.0]]))
    if sign > 0:
        assert np.array_equal(out, [[1.0, 0.0, 0.0]])
    else:
        e = np.exp([1.0, 0.0])
        np.testing.assert_allclose(out, [[0.0, *(e / e.sum())]], rtol=1e-15)
    with np.errstate(all="ignore"):
        ref = R.activate(np.array([[sign * np.inf, 1.0, 0.0]]), "softmax")
    np.testing.assert_allclose(ref, out, rtol=1e-15)


# ---------------------------------------------------------------------------- analysis


def _eq123_decimal(w):
    """Eq. 123 exactly as the book writes it, in 60-digit decimal arithmetic."""
    getcontext().prec = 60
    w = abs(Decimal(w))
    s = (1 - 4 / w).sqrt()
    return float((2 / w) * (w * (1 + s) / 2 - 1).ln())


@pytest.mark.parametrize("w", [4.5, 6.894, 100.0, 1e10, 1e200, 1e308, -1e308,
                               np.finfo(np.float64).max])
def test_interval_width_is_eq_123_up_to_the_float_maximum(w):
    got = interval.interval_width(w)
    assert math.isfinite(got) and got == pytest.approx(_eq123_decimal(w), rel=1e-13)


@pytest.mark.parametrize("call,exc,pattern", [
    (lambda: interval.interval_width(np.nan), ValueError, r"w must be finite; got NaN"),
    (lambda: interval.interval_width([1.0, np.inf]), ValueError, r"w must be finite"),
    (lambda: interval.interval_width("7"), TypeError, r"w must be a number"),
    (lambda: interval.interval_width(True), TypeError, r"real numbers"),
    (lambda: interval.admissible_interval("7"), TypeError, r"w must be a number"),
    (lambda: interval.admissible_interval(7.0, b="1"), TypeError, r"\bb must be a number"),
    (lambda: interval.has_solution("5"), TypeError, r"w must be a number"),
    (lambda: interval.max_interval_width(xatol=np.nan), ValueError, r"xatol must be finite"),
    (lambda: interval.max_interval_width(xatol=0.0), ValueError, r"xatol must be > 0"),
])
def test_interval_functions_refuse_what_is_not_a_number(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()


def test_admissible_interval_at_the_float_maximum():
    iv = interval.admissible_interval(1e308, b=1.0)
    assert iv.width == pytest.approx(_eq123_decimal(1e308), rel=1e-13)
    assert iv.lo < iv.hi and all(map(math.isfinite, (iv.lo, iv.hi)))


@pytest.mark.parametrize("v0,exc,pattern", [
    (0.0, ValueError, r"v0 is the zero vector"),
    (np.nan, ValueError, r"v0 contains NaN"),
    ("x", TypeError, r"v0 must be a real vector"),
])
def test_top_eigenvalue_refuses_a_degenerate_start(v0, exc, pattern):
    net = vgfast.Network([4, 3, 3], seed=0)
    start = np.full(net.n_params, v0) if not isinstance(v0, str) else np.full(net.n_params, v0)
    with pytest.raises(exc, match=pattern):
        curvature.top_eigenvalue(net, X, y, v0=start)


def test_top_eigenvalue_from_a_huge_start_vector_is_scaled_not_overflowed():
    net = vgfast.Network([4, 3, 3], seed=0)
    v = np.random.default_rng(3).standard_normal(net.n_params)
    a = curvature.top_eigenvalue(net, X, y, v0=v, iters=300, tol=1e-10)
    b = curvature.top_eigenvalue(net, X, y, v0=1e300 * v, iters=300, tol=1e-10)
    H = curvature.hessian(net, X, y)
    top = max(np.linalg.eigvalsh(H), key=abs)
    assert a.value == pytest.approx(top, rel=1e-8) and b.value == pytest.approx(top, rel=1e-8)


def test_sizes_with_inf_or_nan_are_a_value_error():
    for sizes in ([4, np.inf, 3], [4, float("nan"), 3], [4, 1e30, 3]):
        with pytest.raises(ValueError, match=r"sizes"):
            vgfast.Network(sizes)


# ---------------------------------------------------------------------------- item 7


@pytest.mark.parametrize("fit", [vgfast.fit_lbfgs, vgfast.fit_cg])
@pytest.mark.parametrize("lmbda", [1e200, 1e306])
def test_full_batch_fit_that_overflows_keeps_finite_parameters(fit, lmbda):
    net = vgfast.Network([4, 5, 3], seed=0)
    res = fit(net, X, y, lmbda=lmbda, maxiter=20)
    assert np.isfinite(net.params).all()
    assert math.isfinite(res.cost) and math.isfinite(res.grad_norm)
    # the reported cost is the objective at the returned parameters, computed independently
    assert res.cost == pytest.approx(net.cost(X, y, lmbda=lmbda), rel=1e-12)
    assert res.history[0] >= res.cost  # never worse than where it started
    if not res.success:
        assert res.message


def test_lbfgs_no_longer_reports_success_with_nan():
    """Issue 14 item 7: lmbda=1e200 returned success=True, cost=nan and NaN parameters."""
    net = vgfast.Network([4, 5, 3], seed=0)
    res = vgfast.fit_lbfgs(net, X, y, lmbda=1e200)
    assert not (res.success and not math.isfinite(res.cost))
    assert not res.success and "overflowed" in res.message


@pytest.mark.parametrize("fit", [vgfast.fit_lbfgs, vgfast.fit_cg])
def test_full_batch_fit_refuses_a_start_where_the_objective_overflows(fit):
    net = vgfast.Network([4, 5, 3], activation="linear", output="linear", cost="quadratic",
                         seed=0)
    before = net.params.copy()
    with pytest.raises(FloatingPointError, match=r"not finite at the starting parameters"):
        fit(net, X, np.full((len(X), 3), 1e154))  # (a - 1e154)^2 overflows
    assert np.array_equal(net.params, before)


@pytest.mark.parametrize("dtype,theta,pattern", [
    ("float64", np.nan, r"theta contains NaN or Inf \(in float64\)"),
    ("float64", np.inf, r"theta contains NaN or Inf"),
    ("float32", 1e39, r"theta contains NaN or Inf \(in float32\)"),
])
def test_full_batch_objective_never_writes_nan_into_the_network(dtype, theta, pattern):
    net = vgfast.Network([4, 5, 3], dtype=dtype, seed=0)
    obj = vgfast.full_batch_objective(net, X, y)
    before = net.params.copy()
    bad = obj.x0.copy()
    bad[3] = theta
    with pytest.raises(ValueError, match=pattern):
        obj(bad)
    assert np.array_equal(net.params, before)
    f, g = obj(obj.x0)
    assert math.isfinite(f) and np.isfinite(g).all()


def test_full_batch_objective_reports_overflow_as_inf():
    net = vgfast.Network([4, 5, 3], seed=0)
    obj = vgfast.full_batch_objective(net, X, y, lmbda=1e300)
    f, _ = obj(obj.x0 * 1e160)  # the L2 term overflows
    assert f == math.inf


def test_record_every_beyond_int64_records_once_per_epoch():
    """Issue 14 item 10 (raw OverflowError): record_every larger than an epoch means one record
    per epoch, as record_every="epoch" gives."""
    runs = []
    for every in (2 ** 64 - 1, "epoch"):
        net = vgfast.Network([4, 5, 3], seed=0)
        runs.append(vgfast.train(net, X, y, epochs=2, batch_size=4, seed=1, monitor=False,
                                 record=("cost", "grad_norms"), record_every=every))
    assert np.array_equal(runs[0].cost, runs[1].cost)
    assert np.array_equal(runs[0].record_steps, runs[1].record_steps)


def _sigmoid_derivatives_decimal(z):
    """sigma'(z) = s(1-s) and sigma''(z) = s(1-s)(1-2s) in 50-digit decimal arithmetic, with
    t = e^{-z}: s = 1/(1+t), 1-s = t/(1+t), 1-2s = (t-1)/(t+1) (no 1 - s rounding away)."""
    getcontext().prec = 50
    t = (-Decimal(z)).exp()
    slope = t / ((1 + t) * (1 + t))
    return float(slope), float(slope * (t - 1) / (t + 1))


def test_hessian_sigmoid_curvature_is_exact_in_the_saturated_regime():
    """The R-operator's sigma'' (and the output's sigma') are formed from z: at z = 40 the
    stored activation rounds to 1 and a(1-a)(1-2a) would be exactly 0."""
    z = np.array([-60.0, -40.0, -5.0, 0.0, 0.3, 5.0, 40.0, 60.0, 700.0])
    a = R.sigmoid(z)
    got2 = curvature._second_derivative(z, a, "sigmoid", 0.0)
    got1 = curvature._sigmoid_slope(z)
    for zi, g1, g2 in zip(z, got1, got2):
        w1, w2 = _sigmoid_derivatives_decimal(zi)
        assert g1 == pytest.approx(w1, rel=1e-14, abs=1e-320)
        assert g2 == pytest.approx(w2, rel=1e-14, abs=1e-320)
