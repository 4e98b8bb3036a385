"""The first layer read where its rows lie (issue 9; csrc/vg_direct.c), held to independent
references:

- the dense kernels (X[idx] W^T and D^T X[idx] by AVX-512 FMA tiles, no gather) and the sparse
  kernels (each row compressed to its nonzeros) train to _reference.sgd_epoch's parameters, with
  the fused and the general update, momentum, Nesterov and L2, in plain and chunked mini-batches,
  first-layer widths and input widths that are not multiples of a vector;
- Adam (the general path) on both equals the same run with every product through BLAS;
- which path runs is the documented one (Engine.first_layer), and set_direct(False) or
  VGFAST_DIRECT=0 switch it off;
- a NaN/Inf row is refused with its index and the state untouched, as with the gather.
"""
import importlib
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import vgfast
from vgfast import _core
from vgfast import _reference as R

T = importlib.import_module("vgfast.train")

pytestmark = pytest.mark.skipif(not _core.direct_available(),
                                reason="the direct first layer needs the AVX-512 kernels")


def _switched_on(setter):
    """A fixture's body: a switch of _core (set_direct, _set_adam_t, _set_tiles) on for the test,
    then back as it was."""
    before = setter(True)
    yield
    setter(before)


@pytest.fixture
def direct_on():
    yield from _switched_on(_core.set_direct)


def make_data(n, n_in, n_out, density, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.random((n, n_in))
    X[rng.random(X.shape) >= density] = 0.0
    return X, rng.integers(0, n_out, n)


CASES = [  # (batch, lr, lmbda, momentum, nesterov)
    (64, 0.5, 0.0, 0.0, False),
    (100, 0.5, 3.0, 0.0, False),
    (80, 0.2, 1.0, 0.9, False),
    (100, 0.1, 2.0, 0.9, True),
    (300, 1.0, 2.0, 0.0, False),   # chunked: the general path, weight gradients summed per chunk
    (300, 0.5, 0.0, 0.9, True),
]


@pytest.mark.parametrize("bs,lr,lmbda,momentum,nesterov", CASES)
@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("kind,n_in,width,density", [
    ("direct", 37, 20, 1.0),     # 37 inputs: a vector and a masked tail of each row
    ("direct", 40, 29, 0.9),     # 29 units: three vectors and a masked one (float64)
    ("sparse", 37, 20, 0.2),     # mostly zeros, narrow: float64 takes the sparse kernels
    ("sparse", 45, 70, 0.1),     # wider than the dense kernels take
    ("sparse", 30, 33, 0.2),
])
def test_direct_first_layer_equals_the_reference(kind, n_in, width, density, bs, lr, lmbda,
                                                 momentum, nesterov, fused, monkeypatch,
                                                 direct_on):
    net = vgfast.Network([n_in, width, 12, 5], seed=1)
    X, y = make_data(600, n_in, 5, density, seed=3)
    p0 = net.params.copy()
    ref = R.sgd_epoch(net, p0, X, y, np.arange(600), bs, lr, lmbda, 0.0, momentum, nesterov)
    monkeypatch.setattr(T, "_FUSED", fused)
    vgfast.train(net, X, y, epochs=1, batch_size=bs, shuffle=False, monitor=False, lmbda=lmbda,
                 optimizer=vgfast.SGD(lr, momentum=momentum, nesterov=nesterov))
    assert net._engine.first_layer == kind
    assert np.max(np.abs(net.params - ref)) <= 1e-12 * np.max(np.abs(ref))
    assert np.max(np.abs(net.params - p0)) > 1e-3  # it trained


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("density,width,kind", [(1.0, 30, "direct"), (0.2, 30, None),
                                                (0.2, 100, "sparse"), (1.0, 100, "blas")])
def test_direct_and_blas_first_layers_agree_to_rounding(dtype, density, width, kind, direct_on):
    """Adam (general path, chunked at 200 rows) and momentum SGD (fused at 100), with a last
    partial batch below the direct kernels' 64 rows (that step gathers), 784 inputs as MNIST."""
    X, y = make_data(1030, 784, 10, density, seed=5)
    X = X.astype(dtype)
    if kind is None:  # mostly zeros, 30 units: the sparse kernels in float64, dense in float32
        kind = "sparse" if dtype == "float64" else "direct"
    runs = {}
    for on in (True, False):
        _core.set_direct(on)
        out = []
        for bs, make in ((200, lambda: vgfast.Adam(1e-3)),
                         (100, lambda: vgfast.SGD(0.1, momentum=0.9))):
            net = vgfast.Network([784, width, 10], activation="relu", dtype=dtype, seed=0)
            h = vgfast.train(net, X, y, epochs=2, batch_size=bs, optimizer=make(), seed=4)
            out += [net.params.copy(), h.train_cost, h.train_accuracy]
            if on:  # 100 dense units: too wide for the dense kernels, so BLAS
                assert net._engine.first_layer == kind
            if not on:
                assert net._engine.first_layer == "blas"
        runs[on] = out
    tol = 1e-12 if dtype == "float64" else 2e-5
    for a, b in zip(runs[True], runs[False]):
        assert np.max(np.abs(a - b)) <= tol * max(1.0, np.max(np.abs(b)))


def test_small_batches_input_dropout_and_noise_recordings_keep_the_gather(direct_on):
    X, y = make_data(300, 40, 4, 1.0)
    net = vgfast.Network([40, 16, 4], seed=0)
    vgfast.train(net, X, y, epochs=1, batch_size=32)
    assert net._engine.first_layer == "blas"   # below 64 rows
    vgfast.train(net, X, y, epochs=1, batch_size=100)
    assert net._engine.first_layer == "direct"
    vgfast.train(net, X, y, epochs=1, batch_size=100, dropout=(0.8, 1.0))
    assert net._engine.first_layer == "blas"   # input dropout changes A_0 in place
    vgfast.train(net, X, y, epochs=1, batch_size=100, record=("noise_scale",),
                 record_every="step")
    assert net._engine.first_layer == "blas"   # reads the gathered rows' norms
    _core.set_direct(False)
    vgfast.train(net, X, y, epochs=1, batch_size=100)
    assert net._engine.first_layer == "blas"


def test_environment_switches_the_direct_first_layer_off(tmp_path):
    code = "from vgfast import _core; print(_core.get_direct())"
    for value, want in (("0", "False"), ("1", "True")):
        env = dict(os.environ, VGFAST_DIRECT=value)
        # not the checkout: "-c" puts the cwd first on sys.path
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, check=True, cwd=tmp_path).stdout.strip()
        assert out == want


@pytest.mark.parametrize("density", [1.0, 0.2])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("bs", [100, 300])
def test_a_bad_row_is_refused_with_its_index_and_nothing_changes(density, bad, bs, direct_on,
                                                                 tiles_on):
    X, y = make_data(600, 50, 3, density, seed=2)
    X[437, 49] = bad  # the last column: the masked tail of the row
    net = vgfast.Network([50, 6 if density == 1.0 else 40, 3], seed=0)
    opt = vgfast.SGD(0.1, momentum=0.9)
    vgfast.train(net, X[:400], y[:400], epochs=1, batch_size=bs, optimizer=opt, monitor=False)
    assert net._engine.first_layer == ("direct" if density == 1.0 else "sparse")
    p, t, v = net.params.copy(), opt.t, opt.state["s1"].copy()
    with pytest.raises(ValueError, match=r"X contains NaN or Inf \(first at row 437, column 49\)"):
        vgfast.train(net, X, y, epochs=3, batch_size=bs, optimizer=opt, seed=1)
    assert net._engine.first_layer_tiles == (density < 1.0)  # the bad row's compacted -1
    assert np.array_equal(net.params, p) and opt.t == t and np.array_equal(opt.state["s1"], v)


def test_a_caller_that_checked_x_gets_no_snapshot_and_still_the_error(direct_on):
    """train(_x_finite=True), vgfast.sklearn's call after scikit-learn's validation, takes no
    snapshot of the network; a bad row all the same (X changed behind its back) is still
    refused with its index, at the step that reads it, the steps before it kept."""
    X, y = make_data(600, 50, 3, 0.2, seed=2)
    X[437, 49] = np.nan
    net = vgfast.Network([50, 40, 3], seed=0)
    p0 = net.params.copy()
    with pytest.raises(ValueError, match=r"X contains NaN or Inf \(first at row 437, column 49\)"):
        vgfast.train(net, X, y, epochs=1, batch_size=100, shuffle=False, monitor=False,
                     _x_finite=True)
    assert np.isfinite(net.params).all() and not np.array_equal(net.params, p0)


@pytest.mark.parametrize("dtype,width", [("float64", 40), ("float32", 70)])
def test_outputs_of_mostly_zero_rows_by_the_sparse_kernels_equal_blas(dtype, width):
    """Network.feedforward (and so predict, score) on mostly-zero rows: the first layer by the
    sparse kernels, 256 rows at a time (700 rows: a short last chunk), equals the BLAS path to
    rounding; a NaN row still reaches the output check (its chunk through BLAS)."""
    X, _ = make_data(700, 45, 3, 0.15, seed=6)
    X = X.astype(dtype)
    net = vgfast.Network([45, width, 3], activation="relu", dtype=dtype, seed=0)
    before = _core.set_direct(True)
    try:
        a = net.feedforward(X)
        _core.set_direct(False)
        b = net.feedforward(X)
        tol = 1e-13 if dtype == "float64" else 2e-6
        assert np.max(np.abs(a - b)) <= tol * np.abs(b).max()
        assert not np.array_equal(a, b) or dtype == "float32"  # a different order of sums
        _core.set_direct(True)
        X[613, 44] = np.nan
        with pytest.raises(ValueError, match=r"row 613, column 44"):  # refused up front
            net.feedforward(X)
        out, ref = np.empty_like(a), np.empty_like(a)  # the engine itself: that chunk (rows
        net._engine.forward(net.params, X, out)        # 512..699) as the BLAS path has it
        _core.set_direct(False)
        net._engine.forward(net.params, X, ref)
        assert np.array_equal(np.isnan(out), np.isnan(ref))
        assert np.nanmax(np.abs(out - ref)) <= tol * np.abs(b).max()
        assert np.array_equal(out[:512], a[:512])  # the chunks before it: the sparse kernels'
    finally:
        _core.set_direct(before)


def test_the_sparsity_verdict_follows_the_array(direct_on):
    """The first rows are probed once per array (its address, shape, strides and dtype): on one
    network, each array passed gets its own verdict, whatever came before."""
    Xs, ys = make_data(600, 60, 3, 0.15, seed=3)
    Xd, yd = make_data(600, 60, 3, 1.0, seed=3)
    net = vgfast.Network([60, 40, 3], seed=0)
    for X, y, kind in ((Xs, ys, "sparse"), (Xs, ys, "sparse"), (Xd, yd, "blas"),
                       (Xs, ys, "sparse"), (Xd[:300], yd[:300], "blas"),
                       (Xs[:300], ys[:300], "sparse")):
        vgfast.train(net, X, y, epochs=1, batch_size=100, monitor=False)
        assert net._engine.first_layer == kind


@pytest.fixture
def adam_t():
    yield from _switched_on(_core._set_adam_t)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("make_opt", [
    lambda: vgfast.Adam(3e-3),                  # torch's form
    lambda: vgfast.Adam(3e-3, eps_hat=True),    # scikit-learn's
    lambda: vgfast.AdamW(3e-3, weight_decay=0.1),
], ids=["adam", "adam-eps-hat", "adamw"])
@pytest.mark.parametrize("n_in,width,density,bs,lmbda", [
    (45, 70, 0.15, 100, 2.0),   # sparse, 70 units: a last block of 6, 45 inputs: a masked tail
    (37, 100, 0.15, 64, 0.0),   # sparse, 100 units: 12 blocks of 8 and 4 units alone
    (40, 29, 1.0, 150, 1.0),    # dense in place (float64; BLAS in float32), 29 units
    (64, 13, 1.0, 300, 1.0),    # 300 rows: two chunks summed, then the step
])
def test_adam_that_also_transposes_w0_is_the_three_passes_bit_for_bit(
        dtype, make_opt, n_in, width, density, bs, lmbda, direct_on, adam_t):
    """vg_adam_t (the L2 term, Adam's step and W^0's transpose for the next forward product,
    in one pass over 8 x 8 blocks) leaves the parameters and moments of vg_add_l2_l1 +
    vg_opt_step + vg_pack_t exactly; the last short batch (600 % bs rows, under 64) runs on
    gathered rows and still steps W^0 this way."""
    X, y = make_data(600, n_in, 5, density, seed=4)
    out = {}
    for on in (True, False):
        _core._set_adam_t(on)
        net = vgfast.Network([n_in, width, 5], dtype=dtype, seed=1)
        opt = make_opt()
        vgfast.train(net, X, y, epochs=2, batch_size=bs, optimizer=opt, lmbda=lmbda, seed=2,
                     monitor=False)
        out[on] = (net.params.copy(), opt.state["s1"].copy(), opt.state["s2"].copy(),
                   net._engine.first_layer)
    assert out[True][3] == out[False][3] != "blas"
    for a, b in zip(out[True][:3], out[False][:3]):
        assert np.array_equal(a, b)
    p0 = vgfast.Network([n_in, width, 5], dtype=dtype, seed=1).params
    assert np.max(np.abs(out[True][0] - p0)) > 1e-3  # it trained


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("make_opt", [
    lambda: vgfast.Adam(3e-3),
    lambda: vgfast.Adam(3e-3, eps_hat=True),
    lambda: vgfast.AdamW(3e-3, weight_decay=0.1),
], ids=["adam", "adam-eps-hat", "adamw"])
@pytest.mark.parametrize("n_in,width,bs,lmbda,record,in_regs", [
    (45, 70, 100, 2.0, (), 6),     # 6 steps an epoch, each from the registers
    # 9 steps of 64 rows, then 24 rows gathered (BLAS reads the flat W^0: written back first)
    (37, 100, 64, 0.0, (), 9),
    (64, 70, 300, 1.0, (), 0),     # 300 rows: two chunks summed, the formed gradient
    (45, 70, 100, 2.0, ("weight_grad_norms",), 0),  # a recording reads dC/dW^0
])
def test_adam_on_w0_from_the_registers_is_the_formed_gradients_step_bit_for_bit(
        dtype, make_opt, n_in, width, bs, lmbda, record, in_regs, direct_on, adam_t):
    """W^0's Adam step from the sparse weight gradient's registers, on W^0 and its moments kept
    transposed through the epoch (vg_swgrad_adam), leaves the parameters, the moments and the
    recorded costs of the formed gradient's step (vg_adam_t) exactly, over three epochs; it is
    taken on every full batch read in place, and not when a chunked batch sums its gradient or
    a recording reads it."""
    X, y = make_data(600, n_in, 5, 0.15, seed=4)
    out = {}
    try:
        for on in (True, False):
            _core._set_swgrad_adam(on)
            net = vgfast.Network([n_in, width, 5], dtype=dtype, seed=1)
            opt = make_opt()
            h = vgfast.train(net, X, y, epochs=3, batch_size=bs, optimizer=opt, lmbda=lmbda,
                             seed=2, monitor=False, record=("cost",) + record,
                             record_every="step")
            eng = net._engine
            out[on] = (net.params.copy(), opt.state["s1"].copy(), opt.state["s2"].copy(),
                       np.array(h.cost), eng.first_layer, eng.w0_steps_in_registers)
    finally:
        _core._set_swgrad_adam(True)
    assert out[True][4] == out[False][4] == "sparse"
    assert (out[True][5], out[False][5]) == (in_regs, 0)
    for a, b in zip(out[True][:4], out[False][:4]):
        assert np.array_equal(a, b)
    p0 = vgfast.Network([n_in, width, 5], dtype=dtype, seed=1).params
    assert np.max(np.abs(out[True][0] - p0)) > 1e-3  # it trained


def _adam_run(X, y, on, callback, **kw):
    """Train [45, 70, 5] with Adam (scikit-learn's form) for up to 4 epochs, W^0's step from the
    registers or not (on), with callback(epoch, net, history, optimiser); returns (network,
    optimiser, the exception raised or None)."""
    net = vgfast.Network([45, 70, 5], seed=1)
    opt = vgfast.Adam(3e-3, eps_hat=True)
    _core._set_swgrad_adam(on)
    try:
        vgfast.train(net, X, y, epochs=4, batch_size=100, optimizer=opt, seed=2, monitor=False,
                     callback=lambda e, n, h: callback(e, n, h, opt), **kw)
    except KeyboardInterrupt as e:
        return net, opt, e
    finally:
        _core._set_swgrad_adam(True)
    return net, opt, None


def test_a_callback_reads_the_adam_moments_of_every_epoch(direct_on, adam_t):
    """Between epochs the engine may keep W^0's moments transposed for the next epoch; a
    callback (which may read the optimiser's state) sees them as they are, every epoch."""
    X, y = make_data(600, 45, 5, 0.15, seed=4)
    seen = {True: [], False: []}
    for on in (True, False):
        _adam_run(X, y, on, lambda e, n, h, opt: seen[on].append(
            (opt.state["s1"].copy(), opt.state["s2"].copy())))
    for (a1, a2), (b1, b2) in zip(seen[True], seen[False]):
        assert np.array_equal(a1, b1) and np.array_equal(a2, b2)
    assert len(seen[True]) == 4 and np.abs(seen[True][0][1]).max() > 0


def test_held_adam_moments_go_back_when_training_is_interrupted(direct_on, adam_t):
    """With a callback that does not read the optimiser's state (_callback_private, as the
    scikit-learn estimators declare theirs) W^0's moments stay transposed from one epoch to the
    next; training interrupted between epochs (KeyboardInterrupt) leaves the parameters and the
    optimiser's state of the epochs done, as without that."""
    X, y = make_data(600, 45, 5, 0.15, seed=4)

    def stop(epoch, net, hist, opt):
        if epoch == 1:
            raise KeyboardInterrupt

    got = {}
    for on in (True, False):
        net, opt, e = _adam_run(X, y, on, stop, _callback_private=True)
        assert isinstance(e, KeyboardInterrupt)
        got[on] = (net.params.copy(), opt.state["s1"].copy(), opt.state["s2"].copy(), opt.t)
    assert got[True][3] == got[False][3] == 12
    for a, b in zip(got[True][:3], got[False][:3]):
        assert np.array_equal(a, b)
    assert np.abs(got[True][2]).max() > 0


def _refused_step(dtype, activation, l2, prepare, huge, layer):
    """Train [40, 70, 3] with Adam for 4 steps (prepare(net) first), then put huge(net) in and
    train with the L2 coefficient l2: the 5th step must overflow in `layer` and be refused,
    every parameter and the step count as before it; with vg_adam_t and without it, the same
    parameters, and for layer 0 the same moments (a refused step leaves the moments of the
    layers it stepped before the failure advanced; W^0's deferred step, under its bounds, is
    not taken at all)."""
    X, y = make_data(400, 40, 3, 0.15, seed=5)
    got = {}
    for on in (True, False):
        _core._set_adam_t(on)
        net = vgfast.Network([40, 70, 3], activation=activation, dtype=dtype, seed=0)
        prepare(net)
        opt = vgfast.Adam(1e-3, eps_hat=True)
        vgfast.train(net, X, y, epochs=1, batch_size=100, optimizer=opt, seed=0, monitor=False)
        huge(net)
        before = net.params.copy()
        with pytest.raises(vgfast.DivergenceError) as ei:
            vgfast.train(net, X, y, epochs=1, batch_size=100, optimizer=opt, lmbda=l2 * 400,
                         seed=1, monitor=False)
        assert ei.value.what == "update" and ei.value.layer == layer and ei.value.step == 5
        assert np.array_equal(net.params, before) and opt.t == 4
        assert net._engine.first_layer == "sparse"
        got[on] = [net.params.copy()] + ([opt.state[k].copy() for k in ("s1", "s2")]
                                         if layer == 0 else [])
    for a, b in zip(got[True], got[False]):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("dtype,w,l2", [("float64", 1e200, 1e-30), ("float32", 1e30, 1e-5)])
def test_an_overflowing_adam_step_on_w0_is_undone(dtype, w, l2, direct_on, adam_t):
    """A finite gradient whose square overflows Adam's second moment (a huge weight times the
    L2 coefficient): the step is refused with the layer named, and the parameters and the step
    count are those before it, as without vg_adam_t."""
    def huge(net):
        net.weights[0][5, 7] = w

    _refused_step(dtype, "sigmoid", l2, lambda net: None, huge, 0)


@pytest.mark.parametrize("dtype,w,l2", [("float64", 1e200, 1e-30), ("float32", 1e30, 1e-5)])
def test_a_later_layer_overflowing_leaves_w0_as_it_was(dtype, w, l2, direct_on, adam_t):
    """W^0's step, when its bounds prove it safe, is taken last and without saving W^0: an
    overflow in a later layer's step (a huge weight on a dead unit's output, times the L2
    coefficient) is refused, and every parameter, W^0 included, is the one before the step."""
    def dead_unit(net):  # unit 9 of the hidden layer: never active (x >= 0)
        net.weights[0][9] = -1.0
        net.biases[0][9] = -1.0

    def huge(net):
        net.weights[1][2, 9] = w

    _refused_step(dtype, "relu", l2, dead_unit, huge, 1)


@pytest.mark.parametrize("sparse", [True, False])
def test_batch_norm_and_the_whole_batch_in_one_chunk(sparse, direct_on):
    """Batch norm keeps a 300-row batch in one chunk: the sparse buffers then hold all of it; and
    the dense in-place kernels with batch norm."""
    X, y = make_data(900, 60, 4, 0.15, seed=8)
    before = _core._set_sparse(sparse)
    try:
        runs = {}
        for on in (True, False):
            _core.set_direct(on)
            net = vgfast.Network([60, 40 if sparse else 24, 4], batch_norm=True, seed=2)
            vgfast.train(net, X, y, epochs=2, batch_size=300, seed=1,
                         optimizer=vgfast.SGD(0.1, momentum=0.9))
            assert net._engine.first_layer == (("sparse" if sparse else "direct") if on else "blas")
            runs[on] = (net.params.copy(), net._engine.running.copy())
    finally:
        _core._set_sparse(before)
    for a, b in zip(runs[True], runs[False]):
        assert np.max(np.abs(a - b)) <= 1e-12 * np.max(np.abs(b))


@pytest.fixture
def tiles_on(monkeypatch):
    """Compacted rows on, and built from 2 epochs on (train(), the estimators) so that short
    runs take them."""
    monkeypatch.setattr(T, "TILES_MIN_EPOCHS", 2)
    try:
        base = importlib.import_module("vgfast.sklearn._base")
    except ImportError:  # scikit-learn absent: no estimator to set
        base = None
    if base is not None:
        monkeypatch.setattr(base, "TILES_MIN_EPOCHS", 2)
    yield from _switched_on(_core._set_tiles)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("bs,opt", [
    (100, lambda: vgfast.Adam(3e-3)),
    (300, lambda: vgfast.SGD(0.5, momentum=0.9)),  # chunks of 150 rows, offsets into idx
    (130, lambda: vgfast.Adam(3e-3, eps_hat=True)),  # a last batch of 80 rows
    (560, lambda: vgfast.SGD(0.5)),  # a last batch of 40 rows: gathered, through BLAS
])
def test_rows_compacted_once_train_as_the_scan_bit_for_bit(dtype, bs, opt, direct_on, tiles_on):
    """train() over several epochs compacts X's rows once (TileRows) and the sparse first layer
    lists each mini-batch's tiles from them: the same parameters, bit for bit, as the scan of X's
    rows at every step (_set_tiles(False)); one epoch, nothing is compacted."""
    X, y = make_data(600, 45, 5, 0.15, seed=4)
    out = {}
    for on in (True, False):
        _core._set_tiles(on)
        net = vgfast.Network([45, 70, 5], dtype=dtype, seed=1)
        o = opt()
        vgfast.train(net, X, y, epochs=3, batch_size=bs, optimizer=o, lmbda=1.0, seed=2,
                     monitor=False)
        out[on] = net.params.copy(), net._engine.first_layer, net._engine.first_layer_tiles
    assert out[True][1:] == ("sparse", True) and out[False][1:] == ("sparse", False)
    assert np.array_equal(out[True][0], out[False][0])
    vgfast.train(net, X, y, epochs=1, batch_size=bs, monitor=False)
    assert not net._engine.first_layer_tiles


def test_a_callback_that_changes_x_in_place_is_read_afresh(direct_on, tiles_on):
    """With a callback (which may change X in place between epochs, as an augmentation does),
    train() compacts nothing: each epoch reads X as it is then, as without compacted rows."""
    X, y = make_data(600, 45, 5, 0.15, seed=4)
    out = []
    for on in (True, False):
        _core._set_tiles(on)
        Xa = X.copy()

        def shift(epoch, net, hist):
            Xa[::2, 5 + epoch] = 0.25  # a new column of nonzeros each epoch

        net = vgfast.Network([45, 70, 5], seed=1)
        vgfast.train(net, Xa, y, epochs=3, batch_size=100, optimizer=vgfast.Adam(3e-3), seed=2,
                     monitor=False, callback=shift)
        out.append(net.params.copy())
        assert net._engine.first_layer == "sparse" and not net._engine.first_layer_tiles
    assert np.array_equal(out[0], out[1])


def test_train_compacts_rows_from_tiles_min_epochs_on(direct_on):
    """train() builds compacted rows only for runs of TILES_MIN_EPOCHS epochs or more (below,
    the build costs more than it saves: bench/epochs.py)."""
    X, y = make_data(600, 45, 5, 0.15, seed=4)
    net = vgfast.Network([45, 70, 5], seed=1)
    for epochs, want in ((T.TILES_MIN_EPOCHS - 1, False), (T.TILES_MIN_EPOCHS, True)):
        vgfast.train(net, X, y, epochs=epochs, batch_size=100, monitor=False)
        assert net._engine.first_layer_tiles == want


def test_rows_are_compacted_only_where_the_sparse_kernels_read_them(direct_on, tiles_on):
    """Engine.tile_rows builds TileRows on the conditions train_epoch's sparse path has: mostly
    zeros, batches of 64 rows or more, no input dropout, no gradient-noise recording, X of the
    network's dtype and width."""
    X, _ = make_data(600, 45, 5, 0.15, seed=4)
    eng = vgfast.Network([45, 70, 5], seed=1)._engine
    assert isinstance(eng.tile_rows(X, 100), _core.TileRows)
    assert eng.tile_rows(X, 100, 1.0, ("cost", "grad_norms")).source is X
    for args in ((X, 10), (X, 100, 0.8), (X, 100, 1.0, ("trace_cov",)), (X, 100, 1.0, ("gns",)),
                 (make_data(600, 45, 5, 1.0)[0], 100), (X.astype(np.float32), 100),
                 (X[:, :40].copy(), 100)):
        assert eng.tile_rows(*args) is None
    _core._set_tiles(False)
    assert eng.tile_rows(X, 100) is None


def test_compacted_rows_are_what_the_epoch_reads(direct_on):
    """train(_x_tiles=TileRows(X)) (vgfast.sklearn's call) reads the compacted rows, not X: X
    changed after they were built trains as the X they were built from. Rows compacted from
    another array than the X given are not used."""
    X, y = make_data(600, 45, 5, 0.15, seed=4)
    tiles = _core.TileRows(X)
    X0 = X.copy()
    X[::3, 10] = 0.5  # behind the compacted rows' back (still mostly zeros)
    out = []
    for Xa, t in ((X0, None), (X, tiles), (X, _core.TileRows(X0)), (X, None)):
        net = vgfast.Network([45, 70, 5], seed=1)
        vgfast.train(net, Xa, y, epochs=1, batch_size=100, optimizer=vgfast.Adam(3e-3), seed=2,
                     monitor=False, _x_tiles=t)
        out.append((net.params.copy(), net._engine.first_layer_tiles))
    assert out[1][1] and not out[2][1]
    assert np.array_equal(out[0][0], out[1][0])  # the X the tiles were built from
    assert np.array_equal(out[2][0], out[3][0])  # another array's tiles: X itself
    assert not np.array_equal(out[0][0], out[3][0])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_tile_rows_hold_each_rows_nonzero_tiles(dtype, isas):
    """TileRows against numpy: each row's tiles of 4 columns with a nonzero (-0.0 is zero, NaN
    is not), in order, their 4 values (zero past the last column), max |x| of the row (-1 for
    NaN/Inf); on both instruction sets; bad arguments refused."""
    rng = np.random.default_rng(5)
    for isa in isas:
        _core.set_isa(isa)
        for n_in in (1, 4, 13, 37, 64, 101):
            X = rng.standard_normal((40, n_in)).astype(dtype)
            X[rng.random(X.shape) < 0.7] = 0
            X[3] = 0
            X[4, -1] = -0.0
            X[5, 0], X[6, -1], X[7, n_in // 2] = np.nan, np.inf, -np.inf
            t = _core.TileRows(X)
            nt = (n_in + 3) // 4
            P = np.zeros((40, 4 * nt), dtype)
            P[:, :n_in] = X
            P = P.reshape(40, nt, 4)
            keep = (P != 0).any(axis=2)
            assert np.array_equal(t.rp, np.concatenate([[0], np.cumsum(keep.sum(1))]))
            assert np.array_equal(t.rt, np.nonzero(keep)[1]) if keep.any() else True
            assert np.array_equal(t.rv.reshape(-1, 4)[:keep.sum()], P[keep], equal_nan=True)
            with np.errstate(invalid="ignore"):
                mx = np.where(np.isfinite(X).all(1), np.abs(X).max(1), -1.0)
            assert np.array_equal(t.rmax, mx), isa
            assert t.nbytes >= t.rv.nbytes > 0
    for bad in (np.zeros(5), np.zeros((4, 3), np.int64), np.zeros((4, 6))[:, ::2]):
        with pytest.raises(ValueError, match="TileRows: X must be a C-contiguous 2-D float64"):
            _core.TileRows(bad)


def test_the_estimator_compacts_its_rows_once_per_fit(direct_on, tiles_on):
    """vgfast.sklearn's fit builds TileRows of its training rows once and hands them to every
    epoch: the same fit, bit for bit, as without them."""
    pytest.importorskip("sklearn")
    from vgfast.sklearn import MLPClassifier
    X, y = make_data(600, 45, 5, 0.15, seed=4)
    fits = {}
    from sklearn.exceptions import ConvergenceWarning
    for on in (True, False):
        _core._set_tiles(on)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # 3 epochs do not converge
            est = MLPClassifier(hidden_layer_sizes=(70,), batch_size=100, max_iter=3,
                                random_state=0).fit(X, y)
        fits[on] = est
        assert est._net._engine.first_layer_tiles == on
    for a, b in zip(fits[True].coefs_ + fits[True].intercepts_,
                    fits[False].coefs_ + fits[False].intercepts_):
        assert np.array_equal(a, b)
    assert fits[True].loss_curve_ == fits[False].loss_curve_


#: (inputs, units, rows) that exercise every tail of the first-layer kernels: rows not a
#: multiple of the tile, units not a multiple of a vector, inputs not a multiple of a vector
TAIL_SHAPES = [(1, 1, 1), (7, 3, 5), (37, 29, 13), (64, 33, 64), (100, 70, 7), (17, 130, 9)]


@pytest.fixture
def isas():
    """The instruction sets a kernel test runs on (it selects each with _core.set_isa); the
    selection as it was after the test."""
    before = _core.get_isa()
    yield _isas_to_try()
    _core.set_isa(before)


def _isas_to_try():
    return ["avx512", "baseline"] if _core.isa_supported() == "avx512" else ["baseline"]


@pytest.mark.parametrize("sparse,group_rows", [(False, None), (True, None), (True, 0),
                                               (True, 4), (True, 12), ("tiles", None),
                                               ("tiles", 4)])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_the_kernels_alone_equal_numpy(dtype, sparse, group_rows, isas):
    """Each kernel (the AVX-512 tiles and the portable loops the baseline selects) against numpy
    on shapes that exercise every tail: rows not a multiple of the tile, units not a multiple
    of a vector, inputs not a multiple of a vector, bands of zero columns; repeated rows in idx;
    beta = 0 does not read G (NaN there stays out); max |x| exact. The sparse forward product
    with its rows in one group (0), in groups of 4 rows and of 12 (rounded to balanced groups,
    a last one shorter), and the default. With "tiles", the rows compacted once (TileRows) feed
    the sparse kernels instead of X: the same results as the scan of X's rows, bit for bit."""
    rng = np.random.default_rng(11)
    rows_before = _core._sparse_group_rows(group_rows)
    tol = 1e-13 if dtype == "float64" else 2e-5
    try:
        for isa in isas:
            _core.set_isa(isa)
            for n_in, n_out, m in TAIL_SHAPES + [(784, 30, 125)]:
                X = rng.standard_normal((50 + m, n_in)).astype(dtype)
                X[rng.random(X.shape) < 0.6] = 0
                X[:, : n_in // 4] = 0  # bands of zero columns (MNIST's borders): empty tiles
                X[:, n_in // 2: n_in // 2 + 9] = 0
                idx = rng.integers(0, X.shape[0], m).astype(np.int64)
                idx[m // 2] = idx[0]
                W = rng.standard_normal((n_out, n_in)).astype(dtype)
                D = rng.standard_normal((m, n_out)).astype(dtype)
                A = X[idx].astype(np.float64)
                for beta in (0.0, 0.5):
                    G0 = rng.standard_normal((n_out, n_in)).astype(dtype)
                    G = np.full_like(G0, np.nan) if beta == 0 else G0.copy()
                    Z, mx = _core.first_layer_products(X, idx, W, D, G, -0.3, beta,
                                                       bool(sparse), sparse == "tiles")
                    if sparse == "tiles":  # the lists the scan of X's rows makes
                        G1 = G0.copy() if beta else np.full_like(G0, np.nan)
                        Z1, mx1 = _core.first_layer_products(X, idx, W, D, G1, -0.3, beta, True)
                        assert np.array_equal(Z, Z1) and np.array_equal(G, G1) and mx == mx1
                    Zr = A @ W.astype(np.float64).T
                    Gr = -0.3 * D.astype(np.float64).T @ A + beta * G0.astype(np.float64)
                    assert mx == np.abs(A).max()
                    assert np.max(np.abs(Z - Zr)) <= tol * max(1.0, np.abs(Zr).max()), (isa, n_in)
                    assert np.max(np.abs(G - Gr)) <= tol * max(1.0, np.abs(Gr).max()), (isa, n_in)
                for bad in (np.nan, np.inf, -np.inf):
                    Xb = X.copy()
                    Xb[idx[-1], n_in - 1] = bad
                    assert _core.first_layer_products(Xb, idx, W, D, G0.copy(), 1.0, 0.0,
                                                      bool(sparse), sparse == "tiles")[1] == -1.0
    finally:
        _core._sparse_group_rows(rows_before)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_the_sgd_step_from_the_registers_is_the_gradient_then_the_step(dtype, isas):
    """vg_wgrad_sgd (the SGD step taking alpha D^T X[idx] straight from the weight-gradient
    kernel's registers) against numpy on shapes that exercise every tail (units not a multiple of
    the 6-row tile, inputs not a multiple of 4 vectors), rows through idx or the first m rows,
    plain SGD, heavy ball and Nesterov, with L2 and decay: within rounding of the float64
    formulas; and bit for bit the direct kernel's gradient G followed by vg_sgd_apply's
    operations in their order (numpy rounds each as C does), on each instruction set."""
    rng = np.random.default_rng(5)
    tol = 1e-13 if dtype == "float64" else 2e-5
    for isa in isas:
        _core.set_isa(isa)
        for n_in, n_out, m in TAIL_SHAPES + [(784, 100, 10)]:
            X = rng.standard_normal((20 + m, n_in)).astype(dtype)
            X[rng.random(X.shape) < 0.5] = 0
            D = rng.standard_normal((m, n_out)).astype(dtype)
            W0 = rng.standard_normal((n_out, n_in)).astype(dtype)
            V0 = rng.standard_normal((n_out, n_in)).astype(dtype)
            for idx in (None, rng.integers(0, X.shape[0], m).astype(np.int64)):
                rows = np.arange(m, dtype=np.int64) if idx is None else idx
                for mu, nesterov, l2, f in [(0.0, False, 0.0, 1.0), (0.9, False, 0.3, 1.0),
                                            (0.9, True, 0.3, 0.99), (0.5, True, 0.0, 1.0)]:
                    alpha, lr = 1.0 / m, 0.05
                    W, V = W0.copy(), V0.copy()
                    _core.wgrad_sgd_step(X, idx, D, W, V, alpha, lr, l2, mu, f, nesterov)
                    # the same kernel's gradient, then the step as vg_sgd_apply takes it
                    G = np.empty_like(W0)
                    _core.first_layer_products(X, rows, W0, D, G, alpha, 0.0)
                    c = [np.asarray(v, dtype) for v in (l2, mu, f, lr)]
                    g = G + c[0] * W0
                    v = c[1] * V0 + g if mu else V0
                    step = (g + c[1] * v if nesterov else v) if mu else g
                    assert np.array_equal(W, c[2] * W0 - c[3] * step), (isa, n_in, mu)
                    assert np.array_equal(V, v), (isa, n_in, mu)
                    # and the float64 formulas
                    A = X[rows].astype(np.float64)
                    gr = alpha * D.astype(np.float64).T @ A + l2 * W0.astype(np.float64)
                    vr = mu * V0.astype(np.float64) + gr if mu else V0.astype(np.float64)
                    sr = (gr + mu * vr if nesterov else vr) if mu else gr
                    wr = f * W0.astype(np.float64) - lr * sr
                    assert np.max(np.abs(W - wr)) <= tol * max(1.0, np.abs(wr).max())
                    assert np.max(np.abs(V - vr)) <= tol * max(1.0, np.abs(vr).max())


def _adam_numpy(G, W0, M0, V0, h, t, l2, dtype):
    """vg_adam_t's operations on the formed gradient G, in their order, rounded as C rounds them
    in dtype (its constants as vg_opt_step rounds them): (W, M, V) after the step."""
    d = np.dtype(dtype).type
    bc1, bc2 = 1.0 - h[1] ** t, 1.0 - h[2] ** t
    b1, b2 = d(h[1]), d(h[2])
    step = d(h[0] * np.sqrt(bc2) / bc1) if h[6] else d(h[0] / bc1)
    g = G + d(l2) * W0 if d(l2) != 0 else G
    w = W0 * d(1.0 - h[0] * h[4]) if h[4] != 0 else W0
    m = b1 * M0 + (d(1) - b1) * g
    v = b2 * V0 + (d(1) - b2) * g * g
    r = np.sqrt(v) if h[6] else np.sqrt(v) / d(np.sqrt(bc2))
    return w - step * m / (r + d(h[3])), m, v


ADAM_STEPS = [  # (h = [lr, beta1, beta2, eps, weight decay, 0, eps_hat], t, l2)
    ([1e-3, 0.9, 0.999, 1e-8, 0.0, 0.0, 1.0], 1, 0.0),      # scikit-learn's, first step
    ([3e-3, 0.8, 0.99, 1e-6, 0.1, 0.0, 0.0], 7, 0.2),       # torch's form, decay and L2
    ([1e-2, 0.9, 0.999, 1e-8, 0.0, 0.0, 0.0], 3, 1e-3),
]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_the_adam_step_from_the_sparse_registers_is_the_gradient_then_the_step(dtype, isas):
    """vg_swgrad_adam (Adam's step on W^0 and its moments kept transposed, taking D^T X[idx] / m
    straight from the sparse weight-gradient kernel's registers) on shapes that exercise every
    tail (inputs not a multiple of the 4-column tile, units not a multiple of a vector, bands of
    zero columns: empty tiles), with and without eps_hat, decay and L2: bit for bit the sparse
    kernel's gradient followed by vg_adam_t's operations in their order, on each instruction set;
    and within rounding of the float64 formulas."""
    rng = np.random.default_rng(6)
    tol = 1e-12 if dtype == "float64" else 1e-4
    for isa in isas:
        _core.set_isa(isa)
        for n_in, n_out, m in TAIL_SHAPES + [(784, 100, 200)]:
            X = rng.standard_normal((20 + m, n_in)).astype(dtype)
            X[rng.random(X.shape) < 0.6] = 0
            X[:, : n_in // 4] = 0
            idx = rng.integers(0, X.shape[0], m).astype(np.int64)
            D = rng.standard_normal((m, n_out)).astype(dtype)
            W0 = rng.standard_normal((n_out, n_in)).astype(dtype)
            M0 = (0.1 * rng.standard_normal((n_out, n_in))).astype(dtype)
            V0 = (0.1 * rng.random((n_out, n_in))).astype(dtype)
            G = np.empty_like(W0)
            _core.first_layer_products(X, idx, W0, D, G, 1.0 / m, 0.0, True)
            for h, t, l2 in ADAM_STEPS:
                W, M, V = W0.copy(), M0.copy(), V0.copy()
                assert _core.swgrad_adam_step(X, idx, D, W, M, V, h, t, l2) == 0
                for got, want in zip((W, M, V), _adam_numpy(G, W0, M0, V0, h, t, l2, dtype)):
                    assert got.dtype == want.dtype and np.array_equal(got, want), (isa, n_in, h)
                # and the float64 formulas
                A = X[idx].astype(np.float64)
                g = D.astype(np.float64).T @ A / m + l2 * W0.astype(np.float64)
                mr = h[1] * M0.astype(np.float64) + (1 - h[1]) * g
                vr = h[2] * V0.astype(np.float64) + (1 - h[2]) * g * g
                bc1, bc2 = 1 - h[1] ** t, 1 - h[2] ** t
                den = np.sqrt(vr) + h[3] if h[6] else np.sqrt(vr) / np.sqrt(bc2) + h[3]
                lr = h[0] * np.sqrt(bc2) / bc1 if h[6] else h[0] / bc1
                wr = (1 - h[0] * h[4]) * W0.astype(np.float64) - lr * mr / den
                assert np.max(np.abs(W - wr)) <= tol * max(1.0, np.abs(wr).max()), (isa, n_in)
            # a gradient whose square overflows the second moment: reported
            W, M, V = W0.copy(), M0.copy(), V0.copy()
            W[0, -1] = np.finfo(dtype).max / 4
            assert _core.swgrad_adam_step(X, idx, D, W, M, V, ADAM_STEPS[0][0], 1, 10.0) == 1


def test_the_adam_step_hook_refuses_bad_arguments():
    X, D, W = np.zeros((4, 3)), np.zeros((2, 2)), np.zeros((2, 3))
    M, V, idx = np.zeros((2, 3)), np.zeros((2, 3)), np.array([0, 3])
    h = ADAM_STEPS[0][0]
    with pytest.raises(ValueError, match="idx must be int64 row indices"):
        _core.swgrad_adam_step(X, np.array([0, 4]), D, W, M, V, h, 1, 0.0)
    with pytest.raises(ValueError, match="V must be a C-contiguous"):
        _core.swgrad_adam_step(X, idx, D, W, M, V.astype(np.float32), h, 1, 0.0)
    with pytest.raises(ValueError, match="h must be 7 finite numbers"):
        _core.swgrad_adam_step(X, idx, D, W, M, V, h[:6], 1, 0.0)
    with pytest.raises(ValueError, match="t must be >= 1"):
        _core.swgrad_adam_step(X, idx, D, W, M, V, h, 0, 0.0)
    M.flags.writeable = False
    with pytest.raises(ValueError, match="M must be writeable"):
        _core.swgrad_adam_step(X, idx, D, W, M, V, h, 1, 0.0)


def test_the_sgd_step_hook_refuses_bad_arguments():
    X, D, W, V = np.zeros((4, 3)), np.zeros((2, 2)), np.zeros((2, 3)), np.zeros((2, 3))
    with pytest.raises(ValueError, match="fewer rows than D"):
        _core.wgrad_sgd_step(X[:1], None, D, W, V, 1.0, 0.1, 0.0, 0.9, 1.0, True)
    with pytest.raises(ValueError, match="idx must be int64 row indices"):
        _core.wgrad_sgd_step(X, np.array([0, 4]), D, W, V, 1.0, 0.1, 0.0, 0.9, 1.0, True)
    with pytest.raises(ValueError, match="V must be a C-contiguous"):
        _core.wgrad_sgd_step(X, None, D, W, V.T, 1.0, 0.1, 0.0, 0.9, 1.0, True)
    with pytest.raises(ValueError, match="shapes do not match"):
        _core.wgrad_sgd_step(X, None, D, np.zeros((2, 4)), V, 1.0, 0.1, 0.0, 0.9, 1.0, True)
    W.flags.writeable = False
    with pytest.raises(ValueError, match="W must be writeable"):
        _core.wgrad_sgd_step(X, None, D, W, V, 1.0, 0.1, 0.0, 0.9, 1.0, True)


def test_the_kernel_hook_refuses_bad_arguments():
    X = np.zeros((4, 3))
    W, D, G = np.zeros((2, 3)), np.zeros((2, 2)), np.zeros((2, 3))
    idx = np.array([0, 3])
    with pytest.raises(ValueError, match="idx must be int64 row indices"):
        _core.first_layer_products(X, np.array([0, 4]), W, D, G, 1.0, 0.0)
    with pytest.raises(ValueError, match="shapes do not match"):
        _core.first_layer_products(X, idx, np.zeros((2, 4)), D, G, 1.0, 0.0)
    with pytest.raises(ValueError, match="W must be a C-contiguous"):
        _core.first_layer_products(X, idx, W.astype(np.float32), D, G, 1.0, 0.0)
    with pytest.raises(TypeError, match="float64 or float32"):
        _core.first_layer_products(X.astype(int), idx, W, D, G, 1.0, 0.0)
