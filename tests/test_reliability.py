"""Reliability: bad inputs at every public entry point, divergence, determinism, threads, memory,
checkpoints (format, atomic writes, refusal of foreign or damaged files, resume)."""
import inspect
import json
import os
import re
import threading
import time

import numpy as np
import pytest

import vgfast
from vgfast import checkpoint as ckpt
from vgfast.network import HIDDEN

N_IN, N_OUT = 4, 3


def data(n=20, n_in=N_IN, n_out=N_OUT, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, n_in)), rng.integers(0, n_out, n)


X, y = data()


def net(**kw):
    return vgfast.Network([N_IN, 5, N_OUT], seed=0, **kw)


def train(**kw):
    args = dict(net=net(), X=X, Y=y, epochs=1, batch_size=4, monitor=False)
    args.update(kw)
    return vgfast.train(args.pop("net"), args.pop("X"), args.pop("Y"), **args)


def ro(a):
    a = np.array(a)
    a.flags.writeable = False
    return a


class NegativeLR(vgfast.Schedule):
    def value(self, k):
        return -1.0 + 0 * np.asarray(k, dtype=np.float64)


class ShortLR(vgfast.Schedule):
    """A schedule whose values() hands back fewer values than the epoch has steps."""

    def values(self, first_step, n_steps, epoch):
        return np.array([0.1])


class Float32LR(vgfast.Schedule):
    def values(self, first_step, n_steps, epoch):
        return np.full(n_steps, 0.1, np.float32)


def _x(*shape, fill=None, dtype=np.float64):
    a = np.random.default_rng(1).random(shape).astype(dtype)
    if fill is not None:
        a.flat[3] = fill
    return a


def _net_with_bad_state():
    opt = vgfast.Adam()
    n = net().n_params
    opt.state = {"s1": np.zeros(n)[::-1], "s2": np.zeros(n)[::-1]}
    return opt


def _xfail(reason):
    return pytest.mark.xfail(strict=True, reason=reason)


VALID_ACTS = re.escape(str(sorted(HIDDEN)))
V = pytest.param
CASES = [
    # ------------------------------------------------------------------ Network(...)
    V(lambda: vgfast.Network([4]), ValueError, r"sizes", id="net-sizes-one-layer"),
    V(lambda: vgfast.Network([4, 0, 3]), ValueError, r"sizes", id="net-sizes-zero"),
    V(lambda: vgfast.Network([4, -2]), ValueError, r"sizes", id="net-sizes-negative"),
    V(lambda: vgfast.Network(None), ValueError, r"sizes", id="net-sizes-none"),
    V(lambda: vgfast.Network([2 ** 25, 1]), ValueError, r"sizes", id="net-sizes-huge"),
    V(lambda: vgfast.Network([4, 2.5]), ValueError, r"sizes", id="net-sizes-fractional"),
    V(lambda: vgfast.Network("43"), ValueError, r"sizes", id="net-sizes-string"),
    V(lambda: vgfast.Network([True, 3]), ValueError, r"sizes", id="net-sizes-bool"),
    V(lambda: vgfast.Network([4, 5, 3], activation="relux"), ValueError,
      r"activation must be one of " + VALID_ACTS, id="net-activation-unknown"),
    V(lambda: vgfast.Network([4, 5, 3], activation=["relu", "tanh"]), ValueError,
      r"activation", id="net-activation-count"),
    V(lambda: vgfast.Network([4, 5, 3], activation=5), TypeError, r"activation",
      id="net-activation-not-str"),
    V(lambda: vgfast.Network([4, 3], output="softmaxx"), ValueError,
      r"output must be one of \['linear', 'sigmoid', 'softmax'\]", id="net-output-unknown"),
    V(lambda: vgfast.Network([4, 3], cost="mse"), ValueError,
      r"cost must be one of \['cross_entropy', 'log_likelihood', 'quadratic'\]",
      id="net-cost-unknown"),
    V(lambda: vgfast.Network([4, 3], output="softmax", cost="cross_entropy"), ValueError,
      r"cost='cross_entropy' does not go with output='softmax'.*log_likelihood",
      id="net-cost-output-pair"),
    V(lambda: vgfast.Network([4, 3], init="xavier"), ValueError,
      r"init must be one of \[.*'glorot_uniform'.*'nielsen'", id="net-init-unknown"),
    V(lambda: vgfast.Network([4, 3], dtype="float16"), ValueError, r"dtype", id="net-dtype-f16"),
    V(lambda: vgfast.Network([4, 3], dtype="int32"), ValueError, r"dtype", id="net-dtype-int"),
    V(lambda: vgfast.Network([4, 3], dtype=np.complex128), ValueError, r"dtype",
      id="net-dtype-complex"),
    V(lambda: vgfast.Network([4, 3], seed=-1), ValueError, r"seed", id="net-seed-negative"),
    V(lambda: vgfast.Network([4, 3], seed=1.5), TypeError, r"seed", id="net-seed-float"),
    V(lambda: vgfast.Network([4, 3], leaky_slope=np.nan), ValueError, r"leaky_slope",
      id="net-leaky-nan"),
    V(lambda: vgfast.Network([4, 3], elu_alpha=-1.0), ValueError, r"elu_alpha",
      id="net-elu-negative"),
    V(lambda: vgfast.Network([4, 3], gain="big"), TypeError, r"gain", id="net-gain-str"),
    V(lambda: vgfast.Network([4, 3], bias_init="foo"), ValueError, r"bias_init",
      id="net-bias-init"),
    V(lambda: net().set_params(np.zeros(3)), ValueError, r"flat", id="set-params-shape"),
    V(lambda: net().set_params(np.full(net().n_params, np.nan)), ValueError, r"flat.*NaN",
      id="set-params-nan"),
    # ------------------------------------------------------------------ feedforward / trace
    V(lambda: net().feedforward(_x(6, 5)), ValueError, r"X must have 4 columns",
      id="ff-columns"),
    V(lambda: net().feedforward(np.ones((6, 4), np.int64)), TypeError,
      r"X must be a floating-point.*scale", id="ff-int"),
    V(lambda: net().feedforward(np.ones((6, 4), object)), TypeError, r"X must be a floating",
      id="ff-object"),
    V(lambda: net().feedforward(np.ones((6, 4), complex)), TypeError, r"X must be a floating",
      id="ff-complex"),
    V(lambda: net().feedforward(_x(6, 4, fill=np.nan)), ValueError, r"X contains NaN or Inf",
      id="ff-nan"),
    V(lambda: net().feedforward(_x(6, 4, fill=-np.inf)), ValueError, r"X contains NaN or Inf",
      id="ff-inf"),
    V(lambda: net().feedforward(_x(2, 3, 4)), ValueError, r"X must be 2-D", id="ff-3d"),
    V(lambda: net().feedforward(np.zeros((0, 4))), ValueError, r"X is empty", id="ff-empty"),
    V(lambda: net().feedforward([[1.0, 2.0], [3.0]]), TypeError, r"X must be", id="ff-ragged"),
    V(lambda: net().feedforward("abcd"), TypeError, r"X must be", id="ff-str"),
    V(lambda: net().trace(_x(6, 2)), ValueError, r"X must have 4 columns", id="trace-columns"),
    # ------------------------------------------------------------------ gradient / cost / accuracy
    V(lambda: net().gradient(X, y + 1), ValueError, r"Y: labels must be in 0\.\.2",
      id="grad-label-high"),
    V(lambda: net().gradient(X, y - 1), ValueError, r"Y: labels must be in 0\.\.2",
      id="grad-label-negative"),
    V(lambda: net().gradient(X, y.astype(float)), TypeError, r"Y.*integer class labels",
      id="grad-float-labels"),
    V(lambda: net().gradient(X, y[:-1]), ValueError, r"Y must have one label per row",
      id="grad-label-count"),
    V(lambda: net().gradient(X, np.zeros((20, 2))), ValueError, r"Y target matrix.*\(20, 3\)",
      id="grad-target-shape"),
    V(lambda: net().gradient(X, np.full((20, 3), np.nan)), ValueError, r"Y contains NaN",
      id="grad-target-nan"),
    V(lambda: net().gradient(X, np.ones((20, 3), bool)), TypeError, r"Y target matrix",
      id="grad-target-bool"),
    V(lambda: net().gradient(X, np.zeros((20, 3, 1))), ValueError, r"Y must be 1-D",
      id="grad-target-3d"),
    V(lambda: net().gradient(X, None), ValueError, r"Y must be", id="grad-y-none"),
    V(lambda: net().gradient(X[:, :3], y), ValueError, r"X must have 4 columns",
      id="grad-x-columns"),
    V(lambda: net().cost(X, y, lmbda=-1.0), ValueError, r"lmbda", id="cost-lmbda-negative"),
    V(lambda: net().cost(X, y, l1=np.nan), ValueError, r"l1", id="cost-l1-nan"),
    V(lambda: net().cost(X, y, n=0), ValueError, r"\bn must be", id="cost-n-zero"),
    V(lambda: net().accuracy(X, y + 3), ValueError, r"labels.* must be in", id="acc-labels"),
    V(lambda: net().accuracy(X, y[:5]), ValueError, r"labels must have one label",
      id="acc-label-count"),
    # ------------------------------------------------------------------ train(...)
    V(lambda: vgfast.train("net", X, y), TypeError, r"net must be a vgfast.Network",
      id="train-net"),
    V(lambda: train(X=np.zeros((0, 4)), Y=np.zeros(0, int)), ValueError, r"X is empty",
      id="train-empty"),
    V(lambda: train(X=X.astype(np.int32)), TypeError, r"X must be a floating", id="train-x-int"),
    V(lambda: train(X=_x(20, 4, fill=np.inf)), ValueError, r"X contains NaN or Inf",
      id="train-x-inf"),
    V(lambda: train(Y=y[:10]), ValueError, r"Y must have one label per row", id="train-y-count"),
    V(lambda: train(Y=y + 5), ValueError, r"Y: labels must be in", id="train-y-range"),
    V(lambda: train(epochs=-1), ValueError, r"epochs", id="train-epochs-negative"),
    V(lambda: train(epochs=2.0), TypeError, r"epochs", id="train-epochs-float"),
    V(lambda: train(batch_size=0), ValueError, r"batch_size", id="train-batch-zero"),
    V(lambda: train(batch_size=21), ValueError, r"batch_size \(21\) must be <= .* \(20\)",
      id="train-batch-too-big"),
    V(lambda: train(batch_size=True), TypeError, r"batch_size", id="train-batch-bool"),
    V(lambda: train(optimizer="adam"), TypeError, r"optimizer must be a vgfast optimizer",
      id="train-optimizer-str"),
    V(lambda: train(optimizer=vgfast.Adam), TypeError, r"optimizer", id="train-optimizer-class"),
    V(lambda: train(lmbda=-0.1), ValueError, r"lmbda", id="train-lmbda-negative"),
    V(lambda: train(lmbda=np.nan), ValueError, r"lmbda", id="train-lmbda-nan"),
    V(lambda: train(l1="1"), TypeError, r"l1", id="train-l1-str"),
    V(lambda: train(record=("grad_norm",)), ValueError,
      r"record entry must be one of \[.*'grad_norms'.*\]; got 'grad_norm'",
      id="train-record-unknown"),
    V(lambda: train(record_every=0), ValueError, r"record_every", id="train-record-every-0"),
    V(lambda: train(record_every="batch"), TypeError, r"record_every",
      id="train-record-every-str"),
    V(lambda: train(record=("grad_norm_preclip",)), ValueError, r"grad_norm_preclip.*clip",
      id="train-preclip-without-clip"),
    V(lambda: train(clip=-1.0), ValueError, r"clip", id="train-clip-negative"),
    V(lambda: train(clip=np.nan), ValueError, r"clip", id="train-clip-nan"),
    V(lambda: train(clip="norm"), ValueError, r"clip must be None.*layer_norm",
      id="train-clip-str"),
    V(lambda: train(clip=("max", 1.0)), ValueError,
      r"clip mode must be one of \['layer_norm', 'norm', 'value'\]", id="train-clip-mode"),
    V(lambda: train(clip=("norm", 0.0)), ValueError, r"clip threshold", id="train-clip-zero"),
    V(lambda: train(max_norm=0.0), ValueError, r"max_norm", id="train-max-norm-zero"),
    V(lambda: train(dropout=0.0), ValueError, r"dropout keep_hidden", id="train-dropout-zero"),
    V(lambda: train(dropout=1.5), ValueError, r"dropout keep_hidden", id="train-dropout-big"),
    V(lambda: train(dropout=(np.nan, 0.5)), ValueError, r"dropout keep_input",
      id="train-dropout-nan"),
    V(lambda: train(dropout=(0.5,)), ValueError, r"dropout must be", id="train-dropout-tuple"),
    V(lambda: train(early_stopping=3), TypeError, r"early_stopping", id="train-es-type"),
    V(lambda: train(early_stopping=vgfast.EarlyStopping(metric="validation_cost")), ValueError,
      r"early_stopping on validation_cost needs validation", id="train-es-no-validation"),
    V(lambda: train(validation=X), ValueError, r"validation must be a pair",
      id="train-validation-not-pair"),
    V(lambda: train(validation=(X[:, :3], y)), ValueError, r"validation X must have 4 columns",
      id="train-validation-columns"),
    V(lambda: train(validation=(X, y + 3)), ValueError, r"validation y: labels must be in",
      id="train-validation-labels"),
    V(lambda: train(seed=-5), ValueError, r"seed", id="train-seed-negative"),
    V(lambda: train(optimizer=vgfast.SGD(NegativeLR())), ValueError, r"learning-rate schedule",
      id="train-schedule-negative"),
    V(lambda: train(callback=5), TypeError, r"callback", id="train-callback-not-callable"),
    V(lambda: train(optimizer=vgfast.SGD(0.1, momentum=vgfast.Constant(1.5))), ValueError,
      r"momentum schedule gave a value outside \[0, 1\]", id="train-momentum-schedule-above-1"),
    V(lambda: train(optimizer=vgfast.SGD(ShortLR())), ValueError, r"learning-rate schedule",
      id="train-schedule-too-short"),
    V(lambda: train(optimizer=_net_with_bad_state(), epochs=0), ValueError, r"optimizer state",
      id="train-optimizer-state-negative-stride"),
    V(lambda: vgfast.EarlyStopping(restore_best="no"), TypeError, r"restore_best",
      id="es-restore-best-str"),
    # ------------------------------------------------------------------ optimisers, schedules
    V(lambda: vgfast.SGD(lr=-0.1), ValueError, r"\blr must be >= 0", id="sgd-lr-negative"),
    V(lambda: vgfast.SGD(lr=np.nan), ValueError, r"\blr must be finite", id="sgd-lr-nan"),
    V(lambda: vgfast.SGD(lr="0.1"), TypeError, r"\blr must be a number", id="sgd-lr-str"),
    V(lambda: vgfast.SGD(momentum=1.5), ValueError, r"momentum must be <= 1",
      id="sgd-momentum-big"),
    V(lambda: vgfast.SGD(momentum=0.9, nesterov=1), TypeError, r"nesterov",
      id="sgd-nesterov-int"),
    V(lambda: vgfast.SGD(nesterov=True), ValueError, r"nesterov=True needs momentum",
      id="sgd-nesterov-no-momentum"),
    V(lambda: vgfast.Adam(beta1=1.0), ValueError, r"beta1 must be < 1", id="adam-beta1"),
    V(lambda: vgfast.Adam(beta2=-0.1), ValueError, r"beta2", id="adam-beta2"),
    V(lambda: vgfast.Adam(eps=-1e-8), ValueError, r"eps", id="adam-eps-negative"),
    V(lambda: vgfast.Adam(eps=0.0), ValueError, r"eps", id="adam-eps-zero"),
    V(lambda: vgfast.RMSProp(rho=1.0), ValueError, r"rho", id="rmsprop-rho"),
    V(lambda: vgfast.AdaGrad(lr_decay=-1.0), ValueError, r"lr_decay", id="adagrad-lr-decay"),
    V(lambda: vgfast.AdamW(weight_decay=-0.01), ValueError, r"weight_decay", id="adamw-wd"),
    V(lambda: vgfast.StepDecay(0.1, step_size=0), ValueError, r"step_size",
      id="stepdecay-step-size"),
    V(lambda: vgfast.Cosine(0.1, T=0), ValueError, r"\bT must be", id="cosine-T"),
    V(lambda: vgfast.Exponential(0.1, gamma=-1.0), ValueError, r"gamma", id="exp-gamma"),
    V(lambda: vgfast.LinearDecay(0.1, 0.01, tau=0), ValueError, r"tau", id="linear-tau"),
    V(lambda: vgfast.InverseTime(0.1, decay=np.inf), ValueError, r"decay", id="inverse-decay"),
    V(lambda: vgfast.Constant(0.1, per="batch"), ValueError,
      r"per must be one of \['epoch', 'step'\]", id="schedule-per"),
    V(lambda: vgfast.EarlyStopping(patience=0), ValueError, r"patience", id="es-patience"),
    V(lambda: vgfast.EarlyStopping(metric="acc"), ValueError,
      r"metric must be one of \[.*'validation_accuracy'", id="es-metric"),
    V(lambda: vgfast.EarlyStopping(min_delta=-1.0), ValueError, r"min_delta", id="es-min-delta"),
    V(lambda: vgfast.blas_threads(0).__enter__(), ValueError, r"\bn must be",
      id="blas-threads-zero"),
    # ------------------------------------------------------------------ checkpoint save
    V(lambda: ckpt.save(net(), "/nonexistent-dir/x.ckpt"), ValueError, r"path.*directory",
      id="ckpt-save-no-dir"),
    V(lambda: ckpt.save(net(), 123), TypeError, r"path", id="ckpt-save-path-type"),
    V(lambda: ckpt.save("net", "/tmp/x.ckpt"), TypeError, r"net must be", id="ckpt-save-net"),
    V(lambda: ckpt.save(net(), "/tmp/x.ckpt", optimizer="adam"), TypeError, r"optimizer",
      id="ckpt-save-optimizer"),
    V(lambda: ckpt.save(net(), "/tmp/x.ckpt", optimizer=vgfast.SGD(NegativeLR())), ValueError,
      r"optimizer\.lr.*NegativeLR.*cannot be checkpointed", id="ckpt-save-custom-schedule"),
    V(lambda: ckpt.save(net(), "/tmp/x.ckpt", extra={"f": object()}), TypeError, r"extra",
      id="ckpt-save-extra"),
    V(lambda: ckpt.save(net(), "/tmp/x.ckpt", epoch=-1), ValueError, r"epoch",
      id="ckpt-save-epoch"),
    V(lambda: ckpt.save(net(), "/tmp/x.ckpt", rng_state=42), ValueError, r"rng_state",
      id="ckpt-save-rng"),
]


@pytest.mark.parametrize("call,exc,pattern", CASES)
def test_bad_input_is_refused_with_a_message_naming_the_argument(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()


def test_there_are_many_bad_input_cases():
    assert len(CASES) >= 40


# ---------------------------------------------------------------------------- inputs that work


def layouts(a):
    """The same values as Fortran-ordered, strided, negative-stride and read-only arrays."""
    wide = np.zeros((a.shape[0], 2 * a.shape[1]))
    wide[:, ::2] = a
    return {"fortran": np.asfortranarray(a), "strided": wide[:, ::2], "read-only": ro(a),
            "negative-stride": a[::-1].copy()[::-1]}


@pytest.mark.parametrize("layout", ["fortran", "strided", "read-only", "negative-stride"])
def test_non_contiguous_and_read_only_inputs_work(layout):
    n0 = net()
    Xl = layouts(X)[layout]
    assert np.array_equal(Xl, X) and (layout == "read-only") != (not Xl.flags.c_contiguous)
    yl = ro(y) if layout == "read-only" else np.repeat(y, 2)[::2]
    assert np.array_equal(n0.feedforward(Xl), n0.feedforward(X))
    assert np.array_equal(n0.gradient(Xl, yl).flat, n0.gradient(X, y).flat)
    assert n0.cost(Xl, yl) == n0.cost(X, y)
    assert n0.accuracy(Xl, yl) == n0.accuracy(X, y)
    a, b = net(), net()
    ha = vgfast.train(a, Xl, yl, epochs=2, batch_size=3, seed=1, validation=(Xl, yl))
    hb = vgfast.train(b, X, y, epochs=2, batch_size=3, seed=1, validation=(X, y))
    assert np.array_equal(a.params, b.params)
    assert np.array_equal(ha.validation_cost, hb.validation_cost)
    if layout == "read-only":
        assert not Xl.flags.writeable  # untouched


def test_float32_and_list_inputs_are_converted():
    n0 = net()
    assert np.array_equal(n0.feedforward(X.astype(np.float32)),
                          n0.feedforward(X.astype(np.float32).astype(np.float64)))
    assert np.array_equal(n0.feedforward(X.tolist()), n0.feedforward(X))
    assert np.array_equal(n0.gradient(X, y.tolist()).flat, n0.gradient(X, y).flat)
    assert n0.feedforward(X[0]).shape == (N_OUT,)


def test_batch_size_equal_to_n_and_one():
    for bs in (1, len(X)):
        h = train(batch_size=bs, epochs=2, record=("cost",), record_every="step")
        assert h.cost.shape == (2 * ((len(X) + bs - 1) // bs),)


# ---------------------------------------------------------------------------- divergence


def _exploding_chain():
    n = vgfast.Network([1, 1, 1, 1, 1], activation="linear", output="linear", cost="quadratic",
                       seed=0)
    for w in n.weights:
        w[...] = 100.0
    return n, np.array([[1.0]]), np.array([[0.0]])


def test_divergence_error_names_step_and_layer_and_carries_the_history():
    n, Xd, yd = _exploding_chain()
    snapshots = []

    def keep(epoch, net_, hist):
        snapshots.append(net_.params.copy())

    with pytest.raises(vgfast.DivergenceError) as ei:
        vgfast.train(n, Xd, yd, epochs=100, batch_size=1, optimizer=vgfast.SGD(1.0),
                     record=("grad_norms", "cost"), record_every="step", callback=keep)
    err = ei.value
    assert re.search(rf"step {err.step}\b", str(err)) and re.search(rf"layer {err.layer}\b",
                                                                    str(err))
    assert 0 <= err.layer < n.L and err.epoch == len(snapshots) and err.step == err.epoch + 1
    # parameters of the last finite step: those the callback saw after the last full epoch
    assert np.isfinite(n.params).all() and np.array_equal(n.params, snapshots[-1])
    h = err.history
    assert isinstance(h, vgfast.History)
    # one record per finished step, all finite; epoch metrics for the finished epochs
    assert h.grad_norms.shape == (err.step - 1, n.L) and np.isfinite(h.grad_norms).all()
    assert h.cost.shape == (err.step - 1,) and np.isfinite(h.cost).all()
    # (the monitored full-set cost of the last finite parameters may itself overflow to inf)
    assert h.train_cost.shape == (err.epoch,)
    assert np.array_equal(h.record_steps, np.arange(1, err.step))
    assert h.epochs == err.epoch + 1  # the failing epoch's learning rate is recorded


@pytest.mark.parametrize("dtype,lr", [("float64", 1e307), ("float32", 3e38)])
def test_update_divergence_keeps_the_last_finite_parameters(dtype, lr):
    """A finite gradient times a huge (finite) learning rate overflows in the update itself:
    the engine restores the parameters from before the step."""
    n = vgfast.Network([3, 4, 2], activation="linear", output="linear", cost="quadratic",
                       dtype=dtype, seed=0)
    X = np.random.default_rng(0).random((8, 3))
    Y = np.full((8, 2), 1e3)  # far targets: gradient ~1e3, finite
    opt = vgfast.SGD(0.01)
    vgfast.train(n, X, Y, epochs=1, batch_size=4, optimizer=opt, monitor=False)
    before = n.params.copy()
    opt.lr = vgfast.Constant(lr)
    with pytest.raises(vgfast.DivergenceError) as ei:
        vgfast.train(n, X, Y, epochs=1, batch_size=4, optimizer=opt, monitor=False)
    assert ei.value.what == "update" and ei.value.step == 3 and ei.value.layer == 0
    assert np.array_equal(n.params, before)
    assert opt.t == 2  # the failed step is not counted


# ---------------------------------------------------------------------------- determinism


def _run(seed, n_seed=0):
    Xd, yd = data(60, 10, 4, seed=3)
    Xv, yv = data(15, 10, 4, seed=4)
    n = vgfast.Network([10, 8, 6, 4], activation="relu", output="softmax",
                       cost="log_likelihood", seed=n_seed)
    h = vgfast.train(n, Xd, yd, epochs=3, batch_size=7, seed=seed, dropout=(0.9, 0.6),
                     optimizer=vgfast.Adam(vgfast.Cosine(0.01, 20)), validation=(Xv, yv),
                     record=("grad_norms", "weight_grad_norms", "cost"), record_every="step",
                     clip=("norm", 5.0), lmbda=0.1)
    return n.params.copy(), h


HIST_FIELDS = ("train_cost", "train_accuracy", "validation_cost", "validation_accuracy", "lr",
               "grad_norms", "weight_grad_norms", "cost", "record_steps")


def same_history(a, b):
    return all(np.array_equal(getattr(a, f), getattr(b, f)) for f in HIST_FIELDS)


def test_same_seed_is_bitwise_identical_and_seeds_differ():
    p1, h1 = _run(7)
    p2, h2 = _run(7)
    p3, h3 = _run(8)
    assert np.array_equal(p1, p2) and same_history(h1, h2)
    assert not np.array_equal(p1, p3)
    assert not np.array_equal(h1.cost, h3.cost)


# ---------------------------------------------------------------------------- threads


def test_two_networks_in_two_threads_equal_sequential_training():
    sequential = [_run(s, n_seed=s) for s in (1, 2)]
    results = [None, None]
    barrier = threading.Barrier(2)

    def work(i):
        barrier.wait()
        results[i] = _run(i + 1, n_seed=i + 1)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for (p, h), (ps, hs) in zip(results, sequential):
        assert np.array_equal(p, ps) and same_history(h, hs)


def test_one_network_from_two_threads_is_refused():
    n = vgfast.Network([50, 64, 10], seed=0)
    Xb, yb = data(60_000, 50, 10, seed=5)
    barrier = threading.Barrier(2)
    outcome = {}

    def long_training():
        barrier.wait()
        try:
            outcome["trainer"] = vgfast.train(n, Xb, yb, epochs=3, batch_size=5, monitor=False)
        except RuntimeError as e:
            outcome["trainer"] = e

    def intruder():
        barrier.wait()
        deadline = time.monotonic() + 30
        while not n._lock.locked() and time.monotonic() < deadline:
            time.sleep(0.0005)
        try:
            n.feedforward(Xb[:3])
            outcome["intruder"] = "ran"
        except RuntimeError as e:
            outcome["intruder"] = e

    threads = [threading.Thread(target=long_training), threading.Thread(target=intruder)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # exactly one of them is refused (almost always the intruder: it waits for the lock to be
    # held; the trainer releases it only for a moment between epochs)
    refused = [v for v in outcome.values() if isinstance(v, RuntimeError)]
    assert len(refused) == 1, outcome
    assert "already in use by another thread" in str(refused[0])
    assert np.isfinite(n.params).all() and n.feedforward(Xb[:3]).shape == (3, 10)


# ---------------------------------------------------------------------------- memory


def _ws_after_training(n_rows, monitor):
    n = vgfast.Network([784, 100, 30, 10], seed=0)
    Xm, ym = data(n_rows, 784, 10, seed=6)
    vgfast.train(n, Xm, ym, epochs=1, batch_size=10, monitor=monitor)
    return n._engine.workspace_bytes


def test_engine_workspace_is_batch_times_width_independent_of_n():
    sizes = [784, 100, 30, 10]
    # A_0..A_L, Z_1..Z_L, D_1..D_L, S_1..S_L (f'(Z)) and the gathered targets, for 10 rows
    expect = 8 * 10 * (sum(sizes) + 3 * sum(sizes[1:]) + sizes[-1])
    assert _ws_after_training(1_000, False) == expect
    assert _ws_after_training(10_000, False) == expect
    assert expect < 200_000
    # monitoring evaluates in chunks of at most 1024 rows: still independent of n
    assert _ws_after_training(2_000, True) == _ws_after_training(10_000, True) <= \
        1024 / 10 * expect


# ---------------------------------------------------------------------------- checkpoints


def _trained(optimizer, dtype="float64", epochs=2):
    n = vgfast.Network([6, 7, 5, 3], activation=["tanh", "leaky_relu"], output="softmax",
                       cost="log_likelihood", dtype=dtype, seed=2, leaky_slope=0.2)
    Xd, yd = data(30, 6, 3, seed=8)
    vgfast.train(n, Xd.astype(dtype), yd, epochs=epochs, batch_size=4, optimizer=optimizer,
                 seed=3, monitor=False)
    return n, Xd.astype(dtype), yd


OPTIMIZERS = [
    lambda: vgfast.SGD(0.1, momentum=0.9, nesterov=True),
    lambda: vgfast.SGD(vgfast.StepDecay(0.2, 2, 0.5)),
    lambda: vgfast.AdaGrad(0.05, lr_decay=0.01),
    lambda: vgfast.RMSProp(0.01, rho=0.8),
    lambda: vgfast.Adam(vgfast.Cosine(0.01, 50, lr_min=1e-4), beta1=0.8),
    lambda: vgfast.AdamW(vgfast.LinearDecay(0.01, 0.001, 30), weight_decay=0.05),
]


@pytest.mark.parametrize("make_opt", OPTIMIZERS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_checkpoint_round_trip_continues_bitwise(tmp_path, make_opt, dtype):
    opt = make_opt()
    n, Xd, yd = _trained(opt, dtype)
    path = tmp_path / "run.ckpt"
    rng = np.random.default_rng(99)
    rng.random(5)
    ckpt.save(n, path, optimizer=opt, rng_state=rng, epoch=2, extra={"note": "hi", "k": [1, 2]})
    c = ckpt.load(path)
    assert c.version == ckpt.FORMAT_VERSION and c.library_version == vgfast.__version__
    assert c.epoch == 2 and c.extra == {"note": "hi", "k": [1, 2]}
    m = c.net
    assert (m.sizes, m.activations, m.output, m.cost_name, m.dtype, m.leaky_slope,
            m.elu_alpha) == (n.sizes, n.activations, n.output, n.cost_name, n.dtype,
                             n.leaky_slope, n.elu_alpha)
    assert m.params.dtype == n.params.dtype and np.array_equal(m.params, n.params)
    o = c.optimizer
    assert type(o) is type(opt) and o.t == opt.t and o.epoch == opt.epoch == 2
    assert ckpt.optimizer_spec(o) == ckpt.optimizer_spec(opt)
    for k in opt.state:
        assert np.array_equal(o.state[k], opt.state[k]) and o.state[k].dtype == opt.state[k].dtype
    assert c.rng().random() == rng.random()
    # continuing from the checkpoint equals continuing the original run, bit for bit
    vgfast.train(n, Xd, yd, epochs=2, batch_size=4, optimizer=opt, seed=5, monitor=False)
    vgfast.train(m, Xd, yd, epochs=2, batch_size=4, optimizer=o, seed=5, monitor=False)
    assert np.array_equal(n.params, m.params)


def test_batch_norm_network_round_trip_with_running_statistics(tmp_path):
    n = vgfast.Network([6, 8, 7, 3], activation="relu", batch_norm=[True, False], bn_eps=1e-3,
                       bn_momentum=0.2, seed=4)
    Xd, yd = data(40, 6, 3, seed=9)
    opt = vgfast.RMSProp(0.01)
    vgfast.train(n, Xd, yd, epochs=2, batch_size=8, optimizer=opt, seed=1)
    assert not np.array_equal(n.bn_running_mean[0], 0)  # the running statistics moved
    path = tmp_path / "bn.ckpt"
    ckpt.save(n, path, optimizer=opt)
    c = ckpt.load(path)
    m = c.net
    assert m.batch_norm == [True, False] and (m.bn_eps, m.bn_momentum) == (1e-3, 0.2)
    assert np.array_equal(m.bn_running_mean[0], n.bn_running_mean[0])
    assert np.array_equal(m.bn_running_var[0], n.bn_running_var[0])
    assert np.array_equal(m.feedforward(Xd), n.feedforward(Xd))  # evaluation uses them
    vgfast.train(n, Xd, yd, epochs=2, batch_size=8, optimizer=opt, seed=2)
    vgfast.train(m, Xd, yd, epochs=2, batch_size=8, optimizer=c.optimizer, seed=2)
    assert np.array_equal(m.params, n.params)
    assert np.array_equal(m.bn_running_var[0], n.bn_running_var[0])


def test_network_save_method_and_plain_network(tmp_path):
    n = vgfast.Network([3, 2], output="linear", cost="quadratic", dtype="float32", seed=1,
                       init="orthogonal")
    path = str(tmp_path / "n.ckpt")
    assert n.save(path) == path
    c = ckpt.load(path)
    assert c.optimizer is None and c.epoch is None and c.rng_state is None and c.rng() is None
    assert np.array_equal(c.net.params, n.params) and c.net.init_name == "orthogonal"
    assert "Checkpoint(" in repr(c)


def test_checkpoint_file_is_a_plain_npz_with_a_json_header(tmp_path):
    opt = vgfast.Adam()
    n, _, _ = _trained(opt)
    path = tmp_path / "c.ckpt"
    ckpt.save(n, path, optimizer=opt, epoch=1)
    with np.load(path, allow_pickle=False) as f:
        header = json.loads(f["header"].tobytes())
        assert set(f.files) == {"header", "params", "bn_running", "optimizer_s1",
                                "optimizer_s2"}
    assert header["format"] == "vgfast-checkpoint" and header["format_version"] == 1
    assert header["network"]["sizes"] == [6, 7, 5, 3]
    assert header["optimizer"]["class"] == "Adam" and header["optimizer"]["t"] == opt.t


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    n = net()
    path = tmp_path / "a.ckpt"
    ckpt.save(n, path, epoch=1)
    good = path.read_bytes()

    def crash(f, **arrays):
        f.write(b"PK\x03\x04 partial")
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(ckpt.np, "savez", crash)
    with pytest.raises(KeyboardInterrupt):
        ckpt.save(n, path, epoch=2)
    monkeypatch.undo()
    assert path.read_bytes() == good  # the old checkpoint is intact
    assert os.listdir(tmp_path) == ["a.ckpt"]  # and no temporary file is left behind
    ckpt.save(n, path, epoch=3)
    assert ckpt.load(path).epoch == 3 and os.listdir(tmp_path) == ["a.ckpt"]


def _bad_file(tmp_path, kind):
    good = tmp_path / "good.ckpt"
    opt = vgfast.Adam()
    n, _, _ = _trained(opt)
    ckpt.save(n, good, optimizer=opt, epoch=1)
    raw = good.read_bytes()
    p = tmp_path / f"{kind}.ckpt"
    header = json.loads(np.load(good)["header"].tobytes())

    def npz(**arrays):
        with open(p, "wb") as f:
            np.savez(f, **arrays)

    def with_header(h, **more):
        arrays = dict(np.load(good))
        arrays["header"] = np.frombuffer(json.dumps(h).encode(), np.uint8)
        arrays.update(more)
        npz(**arrays)

    if kind == "text":
        p.write_text("epoch 3, loss 0.1\n")
    elif kind == "empty":
        p.write_bytes(b"")
    elif kind == "truncated":
        p.write_bytes(raw[:len(raw) // 2])
    elif kind == "truncated-end":
        p.write_bytes(raw[:-10])
    elif kind == "corrupt-data":
        b = bytearray(raw)
        i = raw.index(b"params.npy") + 200  # inside the parameter data
        b[i] ^= 0xFF
        p.write_bytes(bytes(b))
    elif kind == "npy":
        with open(p, "wb") as f:
            np.save(f, np.zeros(3))
    elif kind == "pickle":
        import pickle
        p.write_bytes(pickle.dumps({"params": [1, 2]}))
    elif kind == "npz-no-header":
        npz(params=np.zeros(3))
    elif kind == "foreign-header":
        npz(header=np.frombuffer(b'{"format": "keras"}', np.uint8), params=np.zeros(3))
    elif kind == "header-not-json":
        npz(header=np.frombuffer(b"\x00garbage", np.uint8))
    elif kind == "header-str-array":
        npz(header=np.array("hello"))
    elif kind == "newer-version":
        with_header(dict(header, format_version=ckpt.FORMAT_VERSION + 1))
    elif kind == "params-shape":
        with_header(header, params=np.zeros(5))
    elif kind == "params-dtype":
        with_header(header, params=np.zeros(header["network"]["n_params"], np.float32))
    elif kind == "params-nan":
        with_header(header, params=np.full(header["network"]["n_params"], np.nan))
    elif kind == "bad-activation":
        h = json.loads(json.dumps(header))
        h["network"]["activations"] = ["os.system", "tanh"]
        with_header(h)
    elif kind == "bad-sizes":
        h = json.loads(json.dumps(header))
        h["network"]["sizes"] = [6, "7", 5, 3]
        with_header(h)
    elif kind == "unknown-optimizer":
        h = json.loads(json.dumps(header))
        h["optimizer"]["class"] = "Lion"
        with_header(h)
    elif kind == "state-shape":
        with_header(header, optimizer_s1=np.zeros(4))
    elif kind == "missing-state":
        arrays = dict(np.load(good))
        del arrays["optimizer_s2"]
        npz(**arrays)
    return p


BAD_FILES = ["text", "empty", "truncated", "truncated-end", "corrupt-data", "npy", "pickle",
             "npz-no-header", "foreign-header", "header-not-json", "header-str-array",
             "newer-version", "params-shape", "params-dtype", "params-nan", "bad-activation",
             "bad-sizes", "unknown-optimizer", "state-shape", "missing-state"]


@pytest.mark.parametrize("kind", BAD_FILES)
def test_load_refuses_foreign_corrupt_truncated_and_newer_files(tmp_path, kind):
    p = _bad_file(tmp_path, kind)
    with pytest.raises(ValueError, match=re.escape(str(p))) as ei:
        ckpt.load(p)
    assert isinstance(ei.value, ckpt.CheckpointError)
    if kind == "newer-version":
        assert re.search(r"newer.*upgrade vgfast", str(ei.value))
    if kind in ("text", "pickle", "npy", "npz-no-header", "foreign-header"):
        assert "not a vgfast checkpoint" in str(ei.value)


def test_load_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.ckpt"):
        ckpt.load(tmp_path / "nope.ckpt")


def test_every_single_byte_flip_and_truncation_is_refused_or_harmless(tmp_path):
    """Fuzz: flip each byte (stride 3) and cut at many lengths: load either refuses with a
    CheckpointError or (a flip in an unchecked zip field, e.g. a timestamp) returns the very
    same network; it never raises anything else."""
    opt = vgfast.SGD(0.1, momentum=0.5)
    n, _, _ = _trained(opt)
    good = tmp_path / "g.ckpt"
    ckpt.save(n, good, optimizer=opt, rng_state=np.random.default_rng(1), epoch=2)
    raw = good.read_bytes()
    p = tmp_path / "x.ckpt"
    refused = 0
    variants = [raw[:i] for i in range(0, len(raw), 41)]
    for i in range(0, len(raw), 3):
        b = bytearray(raw)
        b[i] ^= 0x5A
        variants.append(bytes(b))
    for v in variants:
        p.write_bytes(v)
        try:
            c = ckpt.load(p)
        except ckpt.CheckpointError:
            refused += 1
            continue
        assert np.array_equal(c.net.params, n.params) and c.epoch == 2
        assert np.array_equal(c.optimizer.state["s1"], opt.state["s1"])
    assert refused > 0.9 * len(variants)


# ---------------------------------------------------------------------------- resume


def test_training_state_round_trip(tmp_path):
    opt = vgfast.Adam(0.01)
    n = vgfast.Network([5, 4, 3], seed=0)
    Xd, yd = data(24, 5, 3, seed=2)
    h = vgfast.train(n, Xd, yd, epochs=2, batch_size=5, optimizer=opt, validation=(Xd, yd),
                     record=("grad_norms", "cost"), record_every=2)
    raw = vgfast.History()  # the in-progress form train() keeps: lists
    for f in HIST_FIELDS:
        setattr(raw, f, np.asarray(getattr(h, f)).tolist())
    raw.steps_per_epoch = h.steps_per_epoch
    rng = np.random.default_rng(4)
    best = (0.5, 1, n.params * 2)
    path = tmp_path / "t.ckpt"
    ckpt.save_training_state(path, n, opt, rng, 123, 2 ** 63 + 5, 2, raw, best=best,
                             bad_epochs=1, n_rows=24, batch_size=5)
    s = ckpt.load_training_state(path)
    assert s.epoch == 2 and s.drop_seed == 123 and s.counter == 2 ** 63 + 5
    assert s.generator.random() == rng.random()
    assert s.best[0] == 0.5 and s.best[1] == 1 and np.array_equal(s.best[2], best[2])
    assert s.bad_epochs == 1 and s.n_rows == 24 and s.batch_size == 5
    assert isinstance(s.history.grad_norms, list)  # train() extends it
    assert same_history(s.history._finish(n.L), h)
    # a training checkpoint is also a checkpoint; a plain one is not a training checkpoint
    assert np.array_equal(ckpt.load(path).net.params, n.params)
    ckpt.save(n, tmp_path / "plain.ckpt")
    with pytest.raises(ValueError, match="without training state"):
        ckpt.load_training_state(tmp_path / "plain.ckpt")
    # resuming onto another architecture or another run is refused
    with pytest.raises(ValueError, match="sizes"):
        s.check_compatible(vgfast.Network([5, 6, 3]))
    with pytest.raises(ValueError, match="batch_size 5; got 6"):
        s.check_compatible(n, 24, 6)
    with pytest.raises(ValueError, match="trained with Adam; got optimizer SGD"):
        s.restore(vgfast.Network([5, 4, 3]), vgfast.SGD())


HAS_RESUME = "resume" in inspect.signature(vgfast.train).parameters


def _resume_problem():
    Xd, yd = data(50, 8, 4, seed=11)
    Xv, yv = data(12, 8, 4, seed=12)
    fresh = lambda: vgfast.Network([8, 9, 7, 4], activation=["relu", "tanh"],  # noqa: E731
                                   output="softmax", cost="log_likelihood", seed=1)
    kw = dict(batch_size=6, dropout=(0.9, 0.7), validation=(Xv, yv), seed=21, lmbda=0.05,
              record=("grad_norms", "cost"), record_every="step")
    return Xd, yd, fresh, kw


@pytest.mark.skipif(not HAS_RESUME, reason="train(resume=...) not in vgfast.train yet")
@pytest.mark.parametrize("every", [1, 3])
def test_interrupted_then_resumed_run_is_bitwise_the_uninterrupted_run(tmp_path, every):
    Xd, yd, fresh, kw = _resume_problem()
    sched = lambda: vgfast.Adam(vgfast.Cosine(0.02, 40), beta2=0.99)  # noqa: E731
    whole = fresh()
    h_whole = vgfast.train(whole, Xd, yd, epochs=6, optimizer=sched(), **kw)

    path = tmp_path / "run.ckpt"
    first = fresh()
    vgfast.train(first, Xd, yd, epochs=3, optimizer=sched(), checkpoint=path,
                 checkpoint_every=every, **kw)
    del first  # "a new process": only the file carries over
    again = fresh()
    kw2 = dict(kw, seed=None)  # the seed is not needed: the RNG state is in the checkpoint
    h = vgfast.train(again, Xd, yd, epochs=6, resume=path, checkpoint=path, **kw2)
    assert np.array_equal(again.params, whole.params)
    assert same_history(h, h_whole)
    assert ckpt.load_training_state(path).epoch == 6


@pytest.mark.skipif(not HAS_RESUME, reason="train(resume=...) not in vgfast.train yet")
def test_resume_with_early_stopping_and_given_optimizer(tmp_path):
    Xd, yd, fresh, kw = _resume_problem()
    es = lambda: vgfast.EarlyStopping(patience=2, metric="validation_cost")  # noqa: E731
    whole = fresh()
    h_whole = vgfast.train(whole, Xd, yd, epochs=8, optimizer=vgfast.SGD(0.3, momentum=0.9),
                           early_stopping=es(), **kw)
    path = tmp_path / "run.ckpt"
    vgfast.train(fresh(), Xd, yd, epochs=4, optimizer=vgfast.SGD(0.3, momentum=0.9),
                 early_stopping=es(), checkpoint=path, **kw)
    again = fresh()
    h = vgfast.train(again, Xd, yd, epochs=8, optimizer=vgfast.SGD(0.3, momentum=0.9),
                     early_stopping=es(), resume=path, **kw)
    assert np.array_equal(again.params, whole.params)
    assert same_history(h, h_whole) and h.best_epoch == h_whole.best_epoch
    assert h.stopped_early == h_whole.stopped_early


@pytest.mark.skipif(not HAS_RESUME, reason="train(resume=...) not in vgfast.train yet")
def test_resume_refuses_another_run(tmp_path):
    Xd, yd, fresh, kw = _resume_problem()
    path = tmp_path / "run.ckpt"
    vgfast.train(fresh(), Xd, yd, epochs=1, optimizer=vgfast.Adam(), checkpoint=path, **kw)
    with pytest.raises(ValueError, match="batch_size"):
        vgfast.train(fresh(), Xd, yd, epochs=2, resume=path, **dict(kw, batch_size=7))
    with pytest.raises(ValueError, match="sizes"):
        vgfast.train(vgfast.Network([8, 5, 4], seed=0), Xd, yd, epochs=2, resume=path,
                     batch_size=6)
    with pytest.raises(ValueError, match="checkpoint_every"):
        vgfast.train(fresh(), Xd, yd, checkpoint=path, checkpoint_every=0)
    with pytest.raises(ValueError, match="checkpoint"):
        vgfast.train(fresh(), Xd, yd, checkpoint=tmp_path / "no" / "dir.ckpt")
    with pytest.raises(ValueError, match="cannot be checkpointed"):
        vgfast.train(fresh(), Xd, yd, checkpoint=path, optimizer=vgfast.SGD(NegativeLR()))


def test_float32_schedule_values_are_used_as_float64():
    """A schedule returning float32 values trains like one returning the same values in float64."""
    class F32(vgfast.Schedule):
        def value(self, k):
            return np.float32(0.25) + 0 * np.asarray(k, np.float32)

    X = np.random.default_rng(0).random((12, 4))
    y = np.arange(12) % 3
    a = vgfast.Network([4, 5, 3], seed=0)
    b = a.copy()
    vgfast.train(a, X, y, epochs=2, batch_size=4, optimizer=vgfast.SGD(F32()), seed=1)
    vgfast.train(b, X, y, epochs=2, batch_size=4, optimizer=vgfast.SGD(0.25), seed=1)
    assert np.array_equal(a.params, b.params)
