"""Issue 12, second part: curvature, alpha, gradient histograms and the two-batch noise scale.

Each function is checked against something independent (the dense Hessian, explicit
per-example loops over the numpy reference, Cockpit's alpha fit written out with explicit
inverses), and each quantity train() records against that function at the parameters before
the step, replayed one step at a time on a copy of the network.
"""
import numpy as np
import pytest

import vgfast
from vgfast import _reference as ref
from vgfast.analysis import gradient_statistics, hessian
from vgfast.analysis import probes as P


def data(n, n_in, n_out, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, n_in)), rng.integers(0, n_out, n)


def per_example_gradients(net, X, y):
    """g_i by the numpy reference, one row at a time (float64)."""
    p = np.asarray(net.params, np.float64)
    return np.array([ref.backprop(net, p, X[i:i + 1], y[i:i + 1])[0] for i in range(len(X))])


# ---------------------------------------------------------------- histograms
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gradient_histogram_equals_a_histogram_of_explicit_per_example_gradients(dtype):
    X, y = data(23, 9, 4)
    net = vgfast.Network([9, 7, 6, 4], seed=2, dtype=dtype)
    net.weights[0][...] *= 3  # spread the layers' magnitudes over more bins
    got = P.gradient_histogram(net, X, y)
    G = per_example_gradients(net, X.astype(dtype), y)
    assert got.shape == (3, P.HIST_BINS)
    for l in range(3):
        Wi, bi = net._split(np.arange(net.n_params, dtype=np.float64))
        cols = np.concatenate([Wi[l].ravel(), bi[l].ravel()]).astype(np.int64)
        g = np.abs(G[:, cols]).ravel()
        with np.errstate(divide="ignore"):
            lg = np.log10(g)
        want = np.zeros(P.HIST_BINS)
        want[0] = np.sum(lg < P.HIST_EDGES[0])
        want[-1] = np.sum(lg >= P.HIST_EDGES[-1])
        inner = lg[(lg >= P.HIST_EDGES[0]) & (lg < P.HIST_EDGES[-1])]
        want[1:-1] = np.histogram(inner, bins=P.HIST_EDGES)[0]
        if dtype == np.float64:
            np.testing.assert_array_equal(got[l] * g.size, want)
        else:  # float32 gradients differ from the float64 reference in the last bits
            assert np.abs(got[l] * g.size - want).sum() <= 2
        assert got[l].sum() == pytest.approx(1.0, abs=1e-12)


def test_gradient_histogram_puts_exact_zeros_in_bin_0():
    X, y = data(5, 4, 2)
    X[:, 1] = 0.0  # a zero input: its weight gradients are exactly 0
    net = vgfast.Network([4, 3, 2], seed=0)
    h = P.gradient_histogram(net, X, y)
    zeros = 5 * 3  # the rows' gradients of the three weights from input 1
    assert h[0, 0] * 5 * (3 * 4 + 3) == pytest.approx(zeros)


# ---------------------------------------------------------------- curvature
@pytest.fixture(scope="module")
def small():
    X, y = data(30, 6, 3, seed=4)
    net = vgfast.Network([6, 5, 4, 3], seed=3)
    H = hessian(net, X, y)
    return net, X, y, (H + H.T) / 2


def test_lanczos_with_as_many_steps_as_parameters_gives_the_dense_top_eigenvalue(small):
    net, X, y, H = small
    ev = np.linalg.eigvalsh(H)
    r = P.hessian_max_eigenvalue(net, X, y, steps=net.n_params, seed=1)
    assert r.value == pytest.approx(ev[-1], rel=1e-9)
    np.testing.assert_allclose(abs(r.vector @ H @ r.vector), abs(ev[-1]), rtol=1e-9)


def test_lanczos_residual_bounds_the_distance_to_an_eigenvalue(small):
    net, X, y, H = small
    ev = np.linalg.eigvalsh(H)
    r = P.hessian_max_eigenvalue(net, X, y, steps=8, seed=0)
    assert r.steps == 8
    resid = np.linalg.norm(H @ r.vector - r.value * r.vector)
    assert resid == pytest.approx(r.residual, rel=1e-6, abs=1e-12)
    assert np.min(np.abs(ev - r.value)) <= r.residual * (1 + 1e-9) + 1e-12
    assert r.value <= ev[-1] + 1e-12  # a Ritz value never exceeds the largest eigenvalue


def test_hutchinson_is_the_mean_of_v_H_v_and_unbiased(small):
    net, X, y, H = small
    r = P.hessian_trace(net, X, y, samples=5, seed=7)
    rng = np.random.default_rng(7)
    vs = [rng.integers(0, 2, net.n_params) * 2.0 - 1.0 for _ in range(5)]
    q = np.array([v @ H @ v for v in vs])
    assert r.value == pytest.approx(q.mean(), rel=1e-10)
    assert r.std_error == pytest.approx(q.std(ddof=1) / np.sqrt(5), rel=1e-8)
    big = P.hessian_trace(net, X, y, samples=3000, seed=1)
    assert abs(big.value - np.trace(H)) < 5 * big.std_error


# ---------------------------------------------------------------- alpha
def cockpit_alpha(t, fs, dfs, var_fs, var_dfs):
    """Cockpit's _fit_quadratic and _get_alpha (cockpit/quantities/alpha.py), as written there."""
    Phi = np.array([[1, 0, 0], [1, t, t ** 2], [0, 1, 0], [0, 1, 2 * t]]).T
    var_fs = [1e-10 if v == 0 else v for v in var_fs]
    var_dfs = [1e-10 if v == 0 else v for v in var_dfs]
    lam_inv = np.linalg.inv(np.diag(var_fs + var_dfs))
    mu = np.linalg.inv(Phi @ lam_inv @ Phi.T) @ Phi @ lam_inv @ (fs + dfs)
    if mu[2] < 0:
        return -1
    return (2 * t) / (-mu[1] / mu[2]) - 1


@pytest.mark.parametrize("cost,output", [("cross_entropy", "sigmoid"),
                                         ("log_likelihood", "softmax"),
                                         ("quadratic", "sigmoid")])
def test_step_alpha_equals_cockpits_fit_on_explicit_per_example_values(cost, output):
    X, y = data(40, 8, 3, seed=5)
    net = vgfast.Network([8, 6, 3], seed=4, cost=cost, output=output)
    step = -0.8 * net.gradient(X, y).flat  # a gradient step of the mean cost
    r = P.step_alpha(net, X, y, step)
    p0 = net.params.copy()
    d = step / np.linalg.norm(step)
    fs, dfs, vf, vd = [], [], [], []
    for p in (p0, p0 + step):
        twin = net.copy()
        twin.params[...] = p
        T = ref.targets(y, 3, np.float64)
        zs, acts = ref.forward(twin, p, X)
        c = ref.cost_per_example(twin, zs[-1], acts[-1], T)
        s = per_example_gradients(twin, X, y) @ d
        fs.append(c.mean()), dfs.append(s.mean())
        vf.append(c.var(ddof=1)), vd.append(s.var(ddof=1))
    want = cockpit_alpha(np.linalg.norm(step), fs, dfs, vf, vd)
    np.testing.assert_array_equal(net.params, p0)  # left as it was
    assert r.t == pytest.approx(np.linalg.norm(step), rel=1e-14)
    np.testing.assert_allclose(r.f, fs, rtol=1e-10)
    np.testing.assert_allclose(r.df, dfs, rtol=1e-9)
    assert r.alpha == pytest.approx(want, rel=1e-8, abs=1e-10)


def test_step_alpha_edge_cases():
    X, y = data(10, 4, 2)
    net = vgfast.Network([4, 3, 2], seed=0)
    assert P.step_alpha(net, X, y, np.zeros(net.n_params)).alpha == -1.0
    one = P.step_alpha(net, X[:1], y[:1], -net.gradient(X[:1], y[:1]).flat)
    assert np.isnan(one.alpha)  # one row: no variance to weight the fit by
    with pytest.raises(ValueError, match="step must be a real vector of shape"):
        P.step_alpha(net, X, y, np.zeros(3))
    with pytest.raises(ValueError, match="NaN or Inf"):
        P.step_alpha(net, X, y, np.full(net.n_params, np.nan))


def test_probe_functions_refuse_batch_norm():
    X, y = data(10, 4, 2)
    net = vgfast.Network([4, 3, 2], seed=0, batch_norm=True)
    for f in (P.gradient_histogram, P.hessian_trace, P.hessian_max_eigenvalue):
        with pytest.raises(ValueError, match="batch-normalised"):
            f(net, X, y)


# ---------------------------------------------------------------- in train()
RECORDS = ("grad_norms", "trace_cov", "gns", "activation_std", "update_size", "distance",
           "inner_test", "gsnr", "layer_noise_scale")
PROBES = ("grad_hist", "alpha", "hessian_trace", "hessian_max")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("opt", ["sgd", "nesterov", "adam"])
def test_probes_leave_training_and_records_bitwise_unchanged(dtype, opt):
    X, y = data(203, 10, 3, seed=1)

    def run(record, **kw):
        net = vgfast.Network([10, 8, 7, 3], seed=1, dtype=dtype)
        o = {"sgd": vgfast.SGD(0.2), "nesterov": vgfast.SGD(0.2, momentum=0.7, nesterov=True),
             "adam": vgfast.Adam(0.01)}[opt]
        h = vgfast.train(net, X, y, epochs=3, batch_size=10, optimizer=o, seed=4, record=record,
                         record_every=6, **kw)
        return net, h

    n1, h1 = run(RECORDS)
    n2, h2 = run(RECORDS + PROBES, probe_every=5)
    np.testing.assert_array_equal(n1.params, n2.params)
    for f in RECORDS + ("train_cost", "train_accuracy", "record_steps"):
        np.testing.assert_array_equal(getattr(h1, f), getattr(h2, f), err_msg=f)
    steps = 3 * 21
    np.testing.assert_array_equal(h2.probe_steps, np.arange(0, steps, 5))
    for f in ("alpha", "hessian_trace", "hessian_max"):
        assert getattr(h2, f).shape == (len(h2.probe_steps),)
        assert np.isfinite(getattr(h2, f)).all()
    assert h2.grad_hist.shape == (len(h2.probe_steps), 3, P.HIST_BINS)


def replay(net, X, y, bs, make_opt, steps):
    """The parameters before each of the first `steps` steps, one train() call per step on a
    copy (shuffle=False, so step s takes rows s*bs.. of X repeated)."""
    twin = net.copy()
    opt = make_opt()
    Xr, yr = np.vstack([X, X]), np.concatenate([y, y])
    out = []
    for s in range(steps):
        sl = slice(s * bs, (s + 1) * bs)
        out.append((twin.params.copy(), Xr[sl], yr[sl]))
        vgfast.train(twin, Xr[sl], yr[sl], epochs=1, batch_size=bs, shuffle=False,
                     optimizer=opt, monitor=False)
    out.append((twin.params.copy(), None, None))
    return out


def test_recorded_probes_equal_the_functions_before_each_probed_step():
    X, y = data(60, 7, 3, seed=2)
    bs, k = 10, 4
    net = vgfast.Network([7, 6, 5, 3], seed=5)

    def make_opt():
        return vgfast.SGD(0.5, momentum=0.3)

    states = replay(net, X, y, bs, make_opt, 12)
    h = vgfast.train(net, X, y, epochs=2, batch_size=bs, shuffle=False, optimizer=make_opt(),
                     record=PROBES, probe_every=k,
                     instrument_options={"hutchinson_samples": 3, "lanczos_steps": 5,
                                         "seed": 11})
    np.testing.assert_array_equal(h.probe_steps, [0, 4, 8])
    from vgfast.analysis.curvature import HessianOperator
    for j, t in enumerate(h.probe_steps):
        p, Xb, yb = states[t]
        twin = net.copy()
        twin.params[...] = p
        np.testing.assert_allclose(h.grad_hist[j], P.gradient_histogram(twin, Xb, yb),
                                   rtol=0, atol=0)
        rng = np.random.default_rng([11, t])
        op = HessianOperator(twin, Xb, yb)
        assert h.hessian_trace[j] == pytest.approx(P._hutchinson(op, 3, rng).value, rel=1e-12)
        assert h.hessian_max[j] == pytest.approx(P._lanczos_max(op, 5, rng).value, rel=1e-12)
        step = states[t + 1][0] - p
        assert h.alpha[j] == pytest.approx(P.step_alpha(twin, Xb, yb, step).alpha, rel=1e-10)


def test_gns_is_the_ema_of_the_unbiased_two_batch_estimates():
    X, y = data(80, 6, 3, seed=3)
    bs, beta = 16, 0.9
    net = vgfast.Network([6, 8, 3], seed=2)

    def make_opt():
        return vgfast.SGD(0.4)

    states = replay(net, X, y, bs, make_opt, 10)
    h = vgfast.train(net, X, y, epochs=2, batch_size=bs, shuffle=False, optimizer=make_opt(),
                     record=("gns",), record_every="step",
                     instrument_options={"gns_beta": beta})
    es = eg = 0.0
    want = []
    for p, Xb, yb in states[:-1]:
        twin = net.copy()
        twin.params[...] = p
        st = gradient_statistics(twin, Xb, yb)
        m, S, G = st.m, st.sq_norms.sum(), st.grad_norm ** 2
        es = beta * es + (1 - beta) * (S - m * G) / (m - 1)
        eg = beta * eg + (1 - beta) * (m * G - S / m) / (m - 1)
        want.append(es / eg)
    np.testing.assert_allclose(h.gns, want, rtol=1e-10)
    assert h.gns_state == pytest.approx([es, eg], rel=1e-10)


def test_gns_and_probes_survive_checkpoint_and_resume(tmp_path):
    X, y = data(50, 5, 2, seed=6)
    rec = ("gns", "alpha", "hessian_max", "grad_hist")

    def fresh():
        return vgfast.Network([5, 4, 2], seed=3), vgfast.SGD(0.3)

    net, opt = fresh()
    h_all = vgfast.train(net, X, y, epochs=3, batch_size=10, optimizer=opt, seed=1, record=rec,
                         probe_every=3)
    net2, opt2 = fresh()
    ck = tmp_path / "run.vgf"
    vgfast.train(net2, X, y, epochs=2, batch_size=10, optimizer=opt2, seed=1, record=rec,
                 probe_every=3, checkpoint=ck)
    net3, _ = fresh()
    h_res = vgfast.train(net3, X, y, epochs=3, batch_size=10, record=rec, probe_every=3,
                         resume=ck)
    np.testing.assert_array_equal(net.params, net3.params)
    for f in ("gns", "probe_steps", "alpha", "hessian_max", "grad_hist"):
        np.testing.assert_array_equal(getattr(h_all, f), getattr(h_res, f), err_msg=f)
    back = vgfast.History.from_json(h_res.to_json())
    for f in ("gns", "probe_steps", "alpha", "hessian_max", "grad_hist"):
        np.testing.assert_array_equal(getattr(back, f), getattr(h_res, f), err_msg=f)


def test_probe_arguments_are_checked():
    X, y = data(30, 4, 2)
    net = vgfast.Network([4, 3, 2], seed=0)
    with pytest.raises(ValueError, match="probe_every"):
        vgfast.train(net, X, y, record=("alpha",), probe_every=0)
    with pytest.raises(TypeError, match="probe_every"):
        vgfast.train(net, X, y, probe_every="often")
    with pytest.raises(ValueError, match="unknown key"):
        vgfast.train(net, X, y, instrument_options={"lanczos": 3})
    with pytest.raises(ValueError, match="gns_beta"):
        vgfast.train(net, X, y, record=("gns",), instrument_options={"gns_beta": 1.0})
    with pytest.raises(ValueError, match="dropout"):
        vgfast.train(net, X, y, record=("hessian_max",), dropout=0.5)
    bn = vgfast.Network([4, 3, 2], seed=0, batch_norm=True)
    with pytest.raises(ValueError, match="batch"):
        vgfast.train(bn, X, y, record=("grad_hist",))


def test_one_row_batches_give_documented_nans_not_errors():
    X, y = data(12, 4, 2)
    net = vgfast.Network([4, 3, 2], seed=0)
    h = vgfast.train(net, X, y, epochs=1, batch_size=1, record=("gns", "alpha", "hessian_max"),
                     probe_every=4, record_every="step")
    assert np.isnan(h.gns).all()        # m = 1: no second batch size, the averages never move
    assert np.isnan(h.alpha).all()      # no variance over one row to weight the fit by
    assert np.isfinite(h.hessian_max).all()
    assert np.isfinite(net.params).all()


def test_a_nan_row_met_at_a_probe_is_refused_like_any_other():
    X, y = data(40, 5, 2, seed=8)
    X[25, 3] = np.nan
    net = vgfast.Network([5, 4, 2], seed=1)
    before = net.params.copy()
    with pytest.raises(ValueError, match="row 25"):
        vgfast.train(net, X, y, epochs=2, batch_size=5, shuffle=False, record=PROBES,
                     probe_every=5)  # step 5 (a probe) is the batch holding row 25
    np.testing.assert_array_equal(net.params, before)
