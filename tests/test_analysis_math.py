"""The pure maths of vgfast.analysis (ch. 5 of Nielsen), each held to something independent.

Independent references used here: the defining inequality evaluated with ``math.exp``, a
second closed form of the width, brute-force grids, ``scipy.optimize.brentq``, the exact
``tanh`` form of the identity neuron's error, and central finite differences of a cost
computed by a forward pass written out in this file.
"""

import math
import sys

import numpy as np
import pytest

from vgfast.analysis import chain, identity, interval


def _sp(z):
    """sigma'(z) with math.exp, independent of the package."""
    e = math.exp(-abs(z))
    return e / (1.0 + e) ** 2


def _sig(z):
    return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))


W_VALUES = [4.01, 4.1, 4.5, 5.0, 6.0, 6.894, 8.0, 10.0, 17.3, 30.0, 100.0, 1000.0]
B_VALUES = [-5.0, -1.0, 0.0, 0.3, 2.0, 7.5]
WB = [(s * w, b) for w in W_VALUES for s in (1.0, -1.0) for b in B_VALUES]


# --------------------------------------------------------------------------- sigmoid


def test_sigmoid_matches_definition_and_does_not_overflow():
    z = np.linspace(-30, 30, 601)
    np.testing.assert_allclose(interval.sigmoid(z), 1.0 / (1.0 + np.exp(-z)), rtol=1e-15)
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # underflow to 0 is fine
        big = interval.sigmoid(np.array([-1000.0, 1000.0]))
        sp = interval.sigmoid_prime(np.array([-1000.0, 0.0, 1000.0]))
    assert big.tolist() == [0.0, 1.0]
    assert sp[1] == 0.25
    assert sp[0] == sp[2] == 0.0


def test_sigmoid_prime_is_the_derivative():
    z = np.linspace(-5, 5, 81)
    h = 1e-5
    fd = (interval.sigmoid(z + h) - interval.sigmoid(z - h)) / (2 * h)
    np.testing.assert_allclose(interval.sigmoid_prime(z), fd, rtol=1e-8)
    zz = np.linspace(-60, 60, 241)
    np.testing.assert_allclose(interval.sigmoid_prime(zz), [_sp(v) for v in zz], rtol=1e-14)
    # relative accuracy in the tails, where s (1 - s) would cancel
    assert interval.sigmoid_prime(40.0) == pytest.approx(math.exp(-40.0), rel=1e-14)


# ------------------------------------------------------------------------- interval


@pytest.mark.parametrize("method", ["closed_form", "root"])
@pytest.mark.parametrize("w,b", WB)
def test_endpoints_solve_the_defining_equation(w, b, method):
    iv = interval.admissible_interval(w, b, method=method)
    assert iv.lo < iv.hi
    for a in (iv.lo, iv.hi):
        assert abs(abs(w * _sp(w * a + b)) - 1.0) < 1e-12
    # inside the interval the factor is >= 1, just outside it is < 1
    for a in np.linspace(iv.lo, iv.hi, 11)[1:-1]:
        assert abs(w * _sp(w * a + b)) > 1.0
    eps = 1e-6 * iv.width
    assert abs(w * _sp(w * (iv.lo - eps) + b)) < 1.0
    assert abs(w * _sp(w * (iv.hi + eps) + b)) < 1.0


@pytest.mark.parametrize("w,b", WB)
def test_closed_form_agrees_with_root_finding(w, b):
    c = interval.admissible_interval(w, b)
    r = interval.admissible_interval(w, b, method="root")
    assert abs(c.lo - r.lo) < 1e-10
    assert abs(c.hi - r.hi) < 1e-10
    assert abs(c.width - r.width) < 1e-10


@pytest.mark.parametrize("w,b", WB)
def test_width_is_eq_123(w, b):
    iv = interval.admissible_interval(w, b)
    assert iv.width == iv.hi - iv.lo
    # eq. 123 in the package, and the equivalent form (2/|w|) ln((1+s)/(1-s)) written here
    assert iv.width == pytest.approx(float(interval.interval_width(w)), rel=1e-12, abs=1e-15)
    s = math.sqrt(1 - 4 / abs(w))
    assert iv.width == pytest.approx(2 / abs(w) * math.log((1 + s) / (1 - s)), rel=1e-11)
    assert iv.center == pytest.approx(-b / w, rel=1e-12, abs=1e-14)


def test_interval_width_is_vectorised_and_zero_at_or_below_four():
    w = np.array([-100.0, -6.0, -4.0, -3.9, 0.0, 2.0, 4.0, 4.5, 6.894, 50.0])
    got = interval.interval_width(w)
    assert got.shape == w.shape
    assert [float(interval.interval_width(v)) for v in w] == got.tolist()
    assert np.all(got[np.abs(w) <= 4] == 0.0)
    assert np.all(got[np.abs(w) > 4] > 0.0)
    assert interval.interval_width(-6.0) == interval.interval_width(6.0)
    assert interval.interval_width(np.zeros((2, 3))).shape == (2, 3)


@pytest.mark.parametrize("w", [4.2, 6.894, 12.0, -9.0, 250.0])
def test_width_does_not_depend_on_b(w):
    widths = [interval.admissible_interval(w, b).width for b in (-50, -3, 0, 0.1, 4, 50)]
    np.testing.assert_allclose(widths, widths[0], rtol=1e-12)
    # and the interval is the b = 0 one shifted by -b/w
    base = interval.admissible_interval(w, 0.0)
    moved = interval.admissible_interval(w, 3.0)
    assert moved.lo == pytest.approx(base.lo - 3.0 / w, abs=1e-13)


@pytest.mark.parametrize("w", [0.0, 1.0, -2.5, 3.99, -3.999999])
def test_no_solution_below_four(w):
    assert not interval.has_solution(w)
    iv = interval.admissible_interval(w, 0.7)
    assert iv.empty and iv.width == 0.0
    assert math.isnan(iv.lo) and math.isnan(iv.hi)
    assert interval.admissible_interval(w, 0.7, method="root").empty
    # the independent reason: |w| sigma' never reaches 1 (its maximum is |w|/4 at z = 0)
    z = np.linspace(-20, 20, 4001)
    assert np.max(abs(w) * interval.sigmoid_prime(z)) < 1.0


def test_exactly_four_is_a_single_point():
    assert interval.has_solution(4.0) and interval.has_solution(-4.0)
    iv = interval.admissible_interval(-4.0, 2.0)
    assert iv.lo == iv.hi == 0.5 and iv.width == 0.0
    assert abs(-4.0 * _sp(-4.0 * 0.5 + 2.0)) == 1.0


def test_max_interval_width_matches_the_book():
    w_star, width_star = interval.max_interval_width()
    assert round(w_star, 3) == 6.894 or abs(w_star - 6.894) < 5e-4
    assert round(width_star, 4) == 0.4477
    # the derivative of eq. 123 vanishes there (central difference)
    h = 1e-5
    slope = (interval.interval_width(w_star + h) - interval.interval_width(w_star - h)) / (2 * h)
    assert abs(slope) < 1e-8


def test_max_interval_width_brute_force():
    w = np.linspace(4.0, 60.0, 2_800_001)  # step 2e-5
    widths = interval.interval_width(w)
    i = int(np.argmax(widths))
    w_star, width_star = interval.max_interval_width()
    assert abs(w[i] - w_star) <= 2e-5
    assert width_star >= widths[i] - 1e-15
    assert width_star - widths[i] < 1e-9
    # and the interval found for that weight really has that width
    assert interval.admissible_interval(w_star, -1.3).width == pytest.approx(width_star, rel=1e-12)


def test_interval_validation():
    with pytest.raises(ValueError, match="method"):
        interval.admissible_interval(5.0, method="bisect")
    with pytest.raises(ValueError, match="finite"):
        interval.admissible_interval(float("nan"))
    with pytest.raises(ValueError, match="finite"):
        interval.has_solution(float("inf"))


# ------------------------------------------------------------------------- identity


def test_identity_neuron_parameters_and_values():
    n = identity.identity_neuron(0.5)
    assert (n.w1, n.b, n.w2, n.c) == (0.5, -0.25, 8.0, -3.5)
    x = np.linspace(0, 1, 101)
    ref = np.array([n.w2 * _sig(n.w1 * v + n.b) + n.c for v in x])
    np.testing.assert_allclose(n(x), ref, rtol=0, atol=1e-13)
    assert np.max(np.abs(n(x) - x)) <= n.max_error + 1e-15
    # negative w1 is the same function
    m = identity.identity_neuron(-0.5)
    np.testing.assert_allclose(m(x), n(x), atol=1e-13)


@pytest.mark.parametrize("w1", [3.0, 1.0, 0.3, 0.1, 0.01, 1e-3])
def test_identity_max_error_is_the_exact_tanh_form(w1):
    got = identity.identity_neuron(w1).max_error
    exact = 0.5 - (2.0 / w1) * math.tanh(w1 / 4.0)  # at the ends x = 0, 1
    assert got == pytest.approx(exact, rel=1e-6, abs=1e-15)
    assert identity.identity_error_exact(w1) == pytest.approx(got, rel=1e-6, abs=1e-15)


def test_identity_error_leading_constant_is_one_over_96():
    assert identity.LEADING_ERROR_CONSTANT == 1.0 / 96.0
    w1 = np.array([0.4, 0.2, 0.1, 0.05, 0.02])
    err = identity.identity_error_curve(w1)
    assert np.all(np.diff(err) < 0)  # decreases as w1 -> 0
    # err = w1^2/96 - w1^4/3840 + O(w1^6): the constant, and the size of the next term
    ratio = err / w1**2  # = (1/96)(1 - w1^2/40 + ...)
    assert np.all(np.abs(96 * ratio - 1) <= 1.01 * w1**2 / 40)
    assert np.all(np.abs(err - w1**2 / 96) <= 1.01 * w1**4 / 3840 + 1e-15)
    # empirical order of convergence ~ 2
    slopes = np.diff(np.log(err)) / np.diff(np.log(w1))
    np.testing.assert_allclose(slopes, 2.0, atol=5e-3)


def test_identity_error_is_the_cubic_taylor_term_pointwise():
    # e(x) ~ -w1^2 Delta^3 / 12 at every interior point, Delta = x - 1/2
    w1 = 1e-2
    n = identity.identity_neuron(w1)
    delta = np.array([-0.5, -0.3, 0.1, 0.25, 0.5])
    x = 0.5 + delta
    e = (n.w2 * (interval.sigmoid(n.w1 * x + n.b) - 0.5) + 0.5) - x
    np.testing.assert_allclose(e / (w1**2 * delta**3), -1 / 12, rtol=1e-4)


def test_identity_needs_the_output_offset():
    # without c the output is x shifted by 2/w1 - 1/2: nowhere near the identity
    for w1 in (0.1, 1.0, 3.0):
        n = identity.identity_neuron(w1)
        x = np.linspace(0, 1, 1001)
        pure = n.w2 * interval.sigmoid(n.w1 * x + n.b)
        assert np.max(np.abs(pure - x)) >= abs(2 / w1 - 0.5) - n.max_error


def test_identity_validation():
    with pytest.raises(ValueError, match="w1"):
        identity.identity_neuron(0.0)
    with pytest.raises(ValueError, match="n_grid"):
        identity.identity_neuron(1.0, n_grid=1)


# --------------------------------------------------------------------------- chain


def _cost_here(weights, biases, x, y, cost):
    """A forward pass and cost written independently of vgfast."""
    a = x
    for w, b in zip(weights, biases):
        a = _sig(w * a + b)
    if cost == "quadratic":
        return 0.5 * (a - y) ** 2
    return -(y * math.log(a) + (1 - y) * math.log(1 - a))


def _fd(f, h):
    """Central difference (f(h) - f(-h)) / 2h."""
    return (f(h) - f(-h)) / (2 * h)


def _fd_richardson(f, h=1e-2, levels=3):
    """Central differences at h, h/2, h/4 combined by Richardson extrapolation (error O(h^6)).

    Plain central differences cannot reach 1e-7 relative error when the gradient is 1e-6 of
    the cost (deep chains, the vanishing gradient itself): h small enough to kill the O(h^2)
    term leaves rounding of size eps * C / h.
    """
    table = [_fd(f, h / 2**k) for k in range(levels)]
    for m in range(1, levels):
        table = [(4**m * table[k + 1] - table[k]) / (4**m - 1) for k in range(len(table) - 1)]
    return table[0]


@pytest.mark.parametrize("cost", ["quadratic", "cross_entropy"])
@pytest.mark.parametrize("seed", range(8))
def test_chain_product_formula_matches_finite_differences(seed, cost):
    rng = np.random.default_rng(seed)
    depth = int(rng.integers(2, 7))
    w = rng.normal(0.0, 2.0, depth)
    b = rng.normal(0.0, 1.0, depth)
    x, y = float(rng.uniform()), float(rng.uniform())
    t = chain.chain_terms(w, b, x, y=y, cost=cost)
    assert t.cost_value == pytest.approx(_cost_here(w, b, x, y, cost), rel=1e-13)

    for j in range(depth):
        def cb(d, j=j):
            bb = b.copy()
            bb[j] += d
            return _cost_here(w, bb, x, y, cost)

        def cw(d, j=j):
            ww = w.copy()
            ww[j] += d
            return _cost_here(ww, b, x, y, cost)

        fd_b, fd_w = _fd_richardson(cb), _fd_richardson(cw)
        assert abs(t.grad_b[j] - fd_b) <= 1e-7 * abs(fd_b) + 1e-13
        assert abs(t.grad_w[j] - fd_w) <= 1e-7 * abs(fd_w) + 1e-13
        if j == 0:
            assert abs(t.product - fd_b) <= 1e-7 * abs(fd_b)

    assert t.product == pytest.approx(t.grad_b[0], rel=1e-12)
    # the factors are what they say they are
    np.testing.assert_allclose(t.terms, w * t.sigma_primes, rtol=0)
    assert np.all(t.sigma_primes <= 0.25)
    np.testing.assert_allclose(t.grad_b[:-1], t.growth * t.grad_b[1:], rtol=1e-14)
    assert t.activations[0] == x and t.activations.shape == (depth + 1,)


def test_chain_cost_derivative_at_the_output():
    w, b, x, y = [1.5, -0.7], [0.2, 0.4], 0.3, 0.9
    for cost in chain.COSTS:
        t = chain.chain_terms(w, b, x, y=y, cost=cost)

        def c_of_a(d):
            a = t.activations[-1] + d
            return 0.5 * (a - y) ** 2 if cost == "quadratic" else -(
                y * math.log(a) + (1 - y) * math.log(1 - a))

        assert t.dC_da == pytest.approx(_fd(c_of_a, 1e-6), rel=1e-8)
        assert chain.chain_cost(w, b, x, y=y, cost=cost) == t.cost_value


@pytest.mark.parametrize("depth", [1, 2, 4, 7])
def test_exploding_chain_terms_are_exactly_25(depth):
    t = chain.exploding_chain(depth=depth, w=100.0, x=1.0)
    assert np.all(t.zs == 0.0)
    assert np.all(t.sigma_primes == 0.25)
    assert np.all(t.terms == 25.0)
    assert t.growth.shape == (depth - 1,)
    assert np.all(t.growth == 25.0)
    assert np.all(t.grad_b[:-1] / t.grad_b[1:] == 25.0)
    # a_L = 1/2, y = 0: dC/da_L = 1/2, dC/db_L = 1/8, dC/db_1 = 25^(L-1) / 8
    assert t.grad_b[-1] == 0.125
    assert t.grad_b[0] == t.product == 0.125 * 25.0 ** (depth - 1)
    assert t.biases[0] == -100.0 and np.all(t.biases[1:] == -50.0)


def test_exploding_chain_other_weights_and_inputs():
    t = chain.exploding_chain(depth=5, w=-12.0, x=0.37, y=1.0, cost="cross_entropy")
    assert np.all(t.zs == 0.0)
    assert np.all(t.terms == -3.0)
    assert t.grad_b[-1] == -0.5  # a_L - y
    assert t.grad_b[0] == pytest.approx(-0.5 * (-3.0) ** 4, rel=1e-15)


def test_chain_validation():
    with pytest.raises(ValueError, match="same length"):
        chain.chain_terms([1.0, 2.0], [0.0], 0.5)
    with pytest.raises(ValueError, match="cost"):
        chain.chain_terms([1.0], [0.0], 0.5, cost="hinge")
    with pytest.raises(ValueError, match="finite"):
        chain.chain_terms([np.nan], [0.0], 0.5)
    with pytest.raises(ValueError, match="depth"):
        chain.exploding_chain(depth=0)


# ---------------------------------------------------------------------------- plots


@pytest.fixture
def plt():
    mpl = pytest.importorskip("matplotlib")
    mpl.use("Agg", force=True)
    import matplotlib.pyplot as plt

    yield plt
    plt.close("all")


def test_plots_return_figures(plt):
    from matplotlib.figure import Figure

    for fig in (
        interval.plot_interval_width(),
        interval.plot_interval_width(w_max=10),
        interval.plot_admissible_interval(6.894, 1.0),
        interval.plot_admissible_interval(-20.0, 3.0),
        interval.plot_admissible_interval(2.0, 0.0),  # empty interval still draws
        identity.plot_identity_error(),
    ):
        assert isinstance(fig, Figure)
        assert fig.axes and fig.axes[0].lines
    fig, ax = plt.subplots()
    assert interval.plot_admissible_interval(8.0, 0.0, ax=ax) is fig
    assert identity.plot_identity_error(ax=ax) is fig


def test_plot_without_matplotlib_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    for f in (interval.plot_interval_width, identity.plot_identity_error,
              lambda: interval.plot_admissible_interval(5.0, 0.0)):
        with pytest.raises(ImportError, match=r"vgfast\[plot\]"):
            f()
