"""Fuzz (hypothesis) over the public entry points: shapes, dtypes, memory layouts, extreme
values and hyper-parameters (issue 14). Every call ends in one of two ways:

* a clear exception: ValueError, TypeError or FloatingPointError (vgfast.DivergenceError and
  CheckpointError are of these kinds) whose message says what was wrong, or
* a finite result that is correct: outputs and gradients equal those of the numpy twin
  (``vgfast._reference``) on the same validated inputs, parameters finite after training, a
  loaded checkpoint equal to a network and an optimiser its constructors build.

Nothing may crash, hang, return Inf/NaN or raise anything else (OverflowError, IndexError,
KeyError, AttributeError, ...). The runs are derandomized so the suite is repeatable and bounded
(about half a minute); ``VGFAST_FUZZ=N`` runs N random examples per test instead.
"""
import json
import math
import os
from decimal import Decimal, getcontext

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import vgfast
from vgfast import _reference as R
from vgfast import checkpoint as ckpt
from vgfast.analysis import interval
from vgfast.network import HIDDEN, OUTPUT, VALID_PAIRS

_N = int(os.environ.get("VGFAST_FUZZ", "0"))
pytestmark = pytest.mark.slow  # about half a minute in all; still run by default


def fuzz(examples):
    return settings(max_examples=_N or examples, deadline=None, derandomize=not _N,
                    suppress_health_check=list(HealthCheck), print_blob=True)


CLEAR = (ValueError, TypeError, FloatingPointError)


def outcome(call, what="call"):
    """(result, None) or (None, exception) when the exception is a clear one; anything else
    fails the test with the exception."""
    try:
        result = call()
        event(f"{what}: returned")
        return result, None
    except CLEAR as e:
        event(f"{what}: {type(e).__name__}")
        msg = str(e)
        assert len(msg) >= 12, f"unclear message {type(e).__name__}: {msg!r}"
        for raw in ("Python int too large", "unsupported operand", "object of type",
                    "could not broadcast", "index out of bounds", "not subscriptable",
                    "has no attribute", "object is not"):
            assert raw not in msg, f"a raw error leaked: {type(e).__name__}: {msg}"
        return None, e


def close(got, want, dtype):
    """Norm-wise agreement to a few hundred rounding errors of the dtype; below the smallest
    normal number (subnormals carry fewer significant bits) the agreement is absolute."""
    got, want = np.asarray(got, np.float64).ravel(), np.asarray(want, np.float64).ravel()
    tol = 1e-10 if np.dtype(dtype) == np.float64 else 1e-5
    tiny = float(np.finfo(dtype).tiny)
    m = max(np.abs(got).max(initial=0), np.abs(want).max(initial=0), tiny)
    err = m * np.linalg.norm(got / m - want / m)  # scaled, so that the norms cannot overflow
    return err <= tol * m * np.linalg.norm(want / m) + 16 * tiny


# ---------------------------------------------------------------------------- values

def mostly(valid, junk, one_in=12):
    """`valid`, and `junk` about one time in `one_in`: most examples get through validation
    and exercise the computation, every argument is still tried with bad values."""
    return st.integers(0, one_in - 1).flatmap(lambda i: junk if i == 0 else valid)


WEIRD = [0, 1, -1, 0.5, 2.5, 1e308, -1e308, 5e-324, 3.4e38, 1e39, float("nan"), float("inf"),
         -float("inf"), 2 ** 63, 2 ** 64 - 1, -2 ** 63, 10 ** 30, True, None, "1", "sigmoid", b"x",
         [1], (), {}, np.float32(2.0), np.int64(3), np.uint64(2 ** 64 - 1), np.nan, 1j]
numbers = st.one_of(st.sampled_from(WEIRD), st.floats(allow_nan=True, allow_infinity=True),
                    st.integers(-2 ** 70, 2 ** 70))
small_ints = mostly(st.integers(1, 6), st.one_of(st.integers(-2, 0), st.sampled_from(WEIRD)))
elements = mostly(st.floats(-10, 10), st.one_of(
    st.floats(-1e6, 1e6), st.sampled_from([0.0, -0.0, 1e-300, 5e-324, 1e300, -1e300, 1e308,
                                           -1e308, 3.4e38, 1e39, float("nan"), float("inf"),
                                           -float("inf")])), one_in=30)


# ---------------------------------------------------------------------------- Network(...)


@fuzz(250)
@given(sizes=mostly(st.lists(small_ints, min_size=2, max_size=5),
                    st.one_of(st.lists(small_ints, max_size=2), st.sampled_from(WEIRD))),
       activation=mostly(st.sampled_from(sorted(HIDDEN)), st.one_of(st.lists(
           st.sampled_from(sorted(HIDDEN) + ["swish", ""]), max_size=4), st.sampled_from(WEIRD))),
       pair=mostly(st.sampled_from(sorted(VALID_PAIRS)),
                   st.tuples(st.sampled_from(sorted(OUTPUT) + ["tanh", ""]),
                             st.sampled_from(["quadratic", "cross_entropy", "log_likelihood",
                                              "hinge"]))),
       dtype=mostly(st.sampled_from(["float64", "float32", np.float32]),
                    st.sampled_from(["float16", "int32", None, 3])),
       init=mostly(st.sampled_from(["nielsen", "large", "glorot_uniform", "he_normal",
                                    "orthogonal", "lecun_uniform"]), st.sampled_from(["xavier",
                                                                                      3])),
       gain=mostly(st.one_of(st.floats(-10, 10), st.just("auto")), numbers),
       bias_init=mostly(st.one_of(st.none(), st.sampled_from(["normal", "zeros"]),
                                  st.floats(-5, 5)), st.one_of(numbers, st.just("ones"))),
       seed=mostly(st.one_of(st.none(), st.integers(0, 2 ** 64 - 1)), numbers),
       slope=mostly(st.floats(-1, 1), numbers), alpha=mostly(st.floats(0, 3), numbers),
       batch_norm=mostly(st.booleans(), st.one_of(st.lists(st.booleans(), max_size=3),
                                                  st.sampled_from(WEIRD))))
def test_network_constructor(sizes, activation, pair, dtype, init, gain, bias_init, seed, slope,
                             alpha, batch_norm):
    net, err = outcome(lambda: vgfast.Network(
        sizes, activation=activation, output=pair[0], cost=pair[1], dtype=dtype, init=init,
        gain=gain, bias_init=bias_init, seed=seed, leaky_slope=slope, elu_alpha=alpha,
        batch_norm=batch_norm), "Network()")
    if err is not None:
        return
    assert np.isfinite(net.params).all() and net.params.dtype == np.dtype(dtype)
    assert list(net.sizes) == [int(s) for s in sizes] and len(net.weights) == net.L
    X = np.random.default_rng(0).standard_normal((3, net.sizes[0])).astype(net.dtype)
    out, err = outcome(lambda: net.feedforward(X))
    if err is None:
        assert np.isfinite(out).all()
        assert close(out, R.forward(net, net.params, X)[1][-1], net.dtype)


# ---------------------------------------------------------------------------- evaluation

NETS = {}


def fixed_net(k):
    """A few small networks, built once: every activation, output/cost pair and dtype."""
    if k not in NETS:
        acts = sorted(HIDDEN)
        pairs = sorted(VALID_PAIRS)
        dtype = ("float64", "float32")[k % 2]
        output, cost = pairs[k % len(pairs)]
        NETS[k] = vgfast.Network([3, 4, 4, 2], activation=[acts[k % 8], acts[(k + 3) % 8]],
                                 output=output, cost=cost, dtype=dtype, seed=k,
                                 batch_norm=[k % 3 == 0, False])
    return NETS[k]


@st.composite
def arrays(draw, n_cols):
    """An X-like argument: right or wrong shape, many dtypes and layouts, extreme values."""
    kind = draw(mostly(st.just("matrix"), st.sampled_from(["vector", "3d", "list", "scalar",
                                                            "str"]), one_in=6))
    if kind == "str":
        return "abc"
    if kind == "scalar":
        return draw(numbers)
    n = draw(mostly(st.integers(1, 6), st.just(0)))
    cols = draw(mostly(st.just(n_cols), st.sampled_from([n_cols - 1, n_cols + 1])))
    shape = {"matrix": (n, cols), "vector": (cols,), "3d": (2, n, cols), "list": (n, cols)}[kind]
    vals = draw(st.lists(elements, min_size=int(np.prod(shape)), max_size=int(np.prod(shape))))
    a = np.array(vals, np.float64).reshape(shape)
    dtype = draw(mostly(st.sampled_from(["float64", "float32"]), st.sampled_from(
        ["float16", "int64", "bool", "complex128", "object", "uint8"])))
    with np.errstate(all="ignore"):
        try:
            a = a.astype(dtype)
        except (ValueError, OverflowError):
            pass
    layout = draw(st.sampled_from(["C", "F", "strided", "reversed", "read-only"]))
    if a.ndim == 2 and layout == "F":
        a = np.asfortranarray(a)
    elif a.ndim >= 1 and layout == "strided":
        wide = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
        wide[..., ::2] = a
        a = wide[..., ::2]
    elif a.ndim >= 1 and layout == "reversed":
        a = a[::-1].copy()[::-1]
    elif layout == "read-only":
        a = np.array(a)
        a.flags.writeable = False
    return a.tolist() if kind == "list" else a


@st.composite
def targets(draw, n_out, rows=None):
    kind = draw(mostly(st.sampled_from(["labels", "matrix"]), st.just("weird")))
    n = rows if rows is not None else draw(mostly(st.integers(1, 6), st.just(0)))
    if kind == "labels":
        dtype = draw(mostly(st.sampled_from(["int64", "int32", "uint8"]), st.just("float64")))
        label = mostly(st.integers(0, n_out - 1), st.integers(0 if dtype == "uint8" else -1,
                                                              n_out), one_in=30)
        return np.array(draw(st.lists(label, min_size=n, max_size=n)), dtype)
    if kind == "matrix":
        vals = draw(st.lists(elements, min_size=n * n_out, max_size=n * n_out))
        return np.array(vals).reshape(n, n_out)
    return draw(st.sampled_from(WEIRD + [np.zeros((2, n_out, 1))]))


CALLS = ["feedforward", "predict", "gradient", "cost", "accuracy", "trace", "trace-no-y"]


@fuzz(400)
@given(k=st.integers(0, 11), data=st.data(), call=st.sampled_from(CALLS))
def test_evaluation(k, data, call):
    net = fixed_net(k)
    X = data.draw(arrays(net.sizes[0]), label="X")
    Y = data.draw(targets(net.sizes[-1]), label="Y")
    if data.draw(mostly(st.just(True), st.just(False)), label="rows of Y match X"):
        rows = np.shape(X)[0] if np.ndim(X) >= 2 else 1
        Y = data.draw(targets(net.sizes[-1], rows), label="Y")
    f = {"feedforward": lambda: net.feedforward(X), "predict": lambda: net.predict(X),
         "gradient": lambda: net.gradient(X, Y), "cost": lambda: net.cost(X, Y),
         "accuracy": lambda: net.accuracy(X, Y), "trace": lambda: net.trace(X, Y),
         "trace-no-y": lambda: net.trace(X)}[call]
    before = net.params.copy()
    result, err = outcome(f, call)
    assert np.array_equal(net.params, before)  # evaluation never writes the parameters
    if err is not None:
        return
    Xc = np.asarray(X, net.dtype).reshape(-1, net.sizes[0])  # what validation accepted
    with np.errstate(all="ignore"):
        zs, acts = R.forward(net, net.params, Xc)
    if call in ("feedforward", "predict"):
        out = net.feedforward(X)
        assert np.isfinite(out).all() and close(out.reshape(-1, net.sizes[-1]), acts[-1],
                                                net.dtype)
    elif call == "gradient":
        with np.errstate(all="ignore"):
            g_ref, c_ref, _ = R.backprop(net, net.params, Xc, Y)
        assert np.isfinite(result.flat).all() and math.isfinite(result.cost)
        assert close(result.flat, g_ref, net.dtype) and close(result.cost, c_ref, net.dtype)
    elif call == "cost":
        with np.errstate(all="ignore"):
            _, c_ref, _ = R.backprop(net, net.params, Xc, Y)
        assert math.isfinite(result) and close(result, c_ref, net.dtype)
    elif call == "accuracy":
        assert 0.0 <= result <= 1.0
    else:
        for a in result[0] + result[1] + (result[2] or []):
            assert np.isfinite(a).all()
        assert close(result[1][-1], acts[-1], net.dtype)


# ---------------------------------------------------------------------------- train(...)

OPTIMIZERS = {"sgd": lambda lr, m: vgfast.SGD(lr, momentum=m),
              "nesterov": lambda lr, m: vgfast.SGD(lr, momentum=m, nesterov=True),
              "adagrad": lambda lr, m: vgfast.AdaGrad(lr), "rmsprop": lambda lr, m:
              vgfast.RMSProp(lr, rho=m), "adam": lambda lr, m: vgfast.Adam(lr, beta1=m),
              "adamw": lambda lr, m: vgfast.AdamW(lr, weight_decay=m)}
rates = mostly(st.floats(0, 2), st.sampled_from([1e10, 1e300, -0.1, float("nan"), "0.1", None]))


@fuzz(400)
@given(k=st.integers(0, 11), opt=st.sampled_from(sorted(OPTIMIZERS)), lr=rates,
       m=mostly(st.sampled_from([0.0, 0.5, 0.9, 0.999]),
                st.sampled_from([1.0, 1.5, -0.1, float("nan")])),
       epochs=mostly(st.integers(0, 3), st.sampled_from([-1, 2.0, True, "1"])),
       batch_size=mostly(st.integers(1, 12), st.sampled_from([13, 0, -1, 2.5, None])),
       lmbda=mostly(st.sampled_from([0.0, 0.1, 5.0]), st.sampled_from([1e300, -1.0,
                                                                        float("inf")])),
       l1=mostly(st.sampled_from([0.0, 0.01]), st.sampled_from([1e300, -1.0])),
       clip=mostly(st.sampled_from([None, 1.0, ("norm", 0.5), ("layer_norm", 2.0),
                                    ("value", 0.1)]),
                   st.sampled_from([("value", 0.0), ("max", 1.0), -1.0, "norm"])),
       max_norm=mostly(st.sampled_from([None, None, 1.0, 3.0]),
                       st.sampled_from([1e-300, 1e300, 0.0, float("nan")])),
       dropout=mostly(st.sampled_from([None, None, 0.5, 0.9, 1.0, (0.8, 0.5)]),
                      st.sampled_from([0.0, 1.5, (0.5,)])),
       record=mostly(st.sampled_from([(), ("grad_norms", "cost"),
                                      ("update_ratio", "saturation", "dead_fraction")]),
                     st.just(("grad_norm",))),
       record_every=mostly(st.sampled_from(["epoch", "step", 1, 3]),
                           st.sampled_from([0, "batch"])),
       monitor=st.booleans(), shuffle=st.booleans(),
       scale=mostly(st.just(1.0), st.sampled_from([1e3, 1e150])))
def test_train(k, opt, lr, m, epochs, batch_size, lmbda, l1, clip, max_norm, dropout, record,
               record_every, monitor, shuffle, scale):
    net = fixed_net(k).copy()
    rng = np.random.default_rng(k)
    with np.errstate(over="ignore"):  # 1e150 is Inf in float32: train must refuse that X
        Xt = (scale * rng.standard_normal((12, net.sizes[0]))).astype(net.dtype)
    yt = rng.integers(0, net.sizes[-1], 12)
    optimizer, err = outcome(lambda: OPTIMIZERS[opt](lr, m), "optimizer")
    if err is not None:
        return
    hist, err = outcome(lambda: vgfast.train(
        net, Xt, yt, epochs=epochs, batch_size=batch_size, optimizer=optimizer, lmbda=lmbda,
        l1=l1, clip=clip, max_norm=max_norm, dropout=dropout, record=record,
        record_every=record_every, monitor=monitor, shuffle=shuffle, seed=k), "train")
    assert np.isfinite(net.params).all()  # also after a DivergenceError: the last finite step
    assert np.isfinite(net._engine.running).all()
    if isinstance(err, vgfast.DivergenceError):
        assert 0 <= err.epoch and err.step >= 1 and err.history is not None
    if err is None:
        for f in ("grad_norms", "cost", "update_ratio", "saturation", "lr"):
            assert np.isfinite(getattr(hist, f)).all(), f


# ---------------------------------------------------------------------------- checkpoints

JSON = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-2 ** 80, 2 ** 80),
                              st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=4),
                              st.sampled_from(["Adam", "SGD", "Constant", "float32", "relu",
                                               "s1", "s2", "PCG64"])),
                    lambda c: st.one_of(st.lists(c, max_size=3),
                                        st.dictionaries(st.text(max_size=6), c, max_size=3)),
                    max_leaves=6)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    d = tmp_path_factory.mktemp("fuzz-ckpt")
    net = vgfast.Network([3, 4, 2], activation="tanh", batch_norm=True, seed=0)
    opt = vgfast.AdamW(vgfast.Cosine(0.01, 20), weight_decay=0.01)
    vgfast.train(net, np.random.default_rng(0).random((10, 3)), np.arange(10) % 2, epochs=1,
                 batch_size=4, optimizer=opt, monitor=False)
    path = d / "good.ckpt"
    ckpt.save(net, path, optimizer=opt, rng_state=np.random.default_rng(1), epoch=1,
              extra={"a": 1})
    with np.load(path) as f:
        arrays = dict(f)
    return d, json.loads(arrays.pop("header").tobytes()), arrays, net


def _paths(h, prefix=()):
    if isinstance(h, dict):
        for k, v in h.items():
            yield prefix + (k,)
            yield from _paths(v, prefix + (k,))
    elif isinstance(h, list):
        for i, v in enumerate(h):
            yield prefix + (i,)
            yield from _paths(v, prefix + (i,))


@fuzz(200)
@given(data=st.data(), value=JSON, delete=st.booleans())
def test_crafted_checkpoint_headers(saved, data, value, delete):
    d, header, arrays, net = saved
    h = json.loads(json.dumps(header))
    path = data.draw(st.sampled_from(sorted(_paths(h), key=str)), label="path")
    parent = h
    for key in path[:-1]:
        parent = parent[key]
    if delete and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    p = d / "crafted.ckpt"
    with open(p, "wb") as f:
        np.savez(f, header=np.frombuffer(json.dumps(h).encode(), np.uint8), **arrays)
    c, err = outcome(lambda: ckpt.load(p), "load")
    if err is not None:
        assert isinstance(err, ckpt.CheckpointError) and str(p) in str(err)
        return
    assert np.isfinite(c.net.params).all() and np.isfinite(c.net._engine.running).all()
    assert np.array_equal(c.net.params, net.params)
    o = c.optimizer
    if o is not None:  # rebuilt by its constructor from what was loaded: the same optimiser
        spec = ckpt.optimizer_spec(o)
        assert spec["hyper"]["weight_decay"] >= 0 and 0 <= o.t < 2 ** 63
        again = ckpt._state.build_optimizer(dict(spec, t=o.t, epoch=o.epoch, state=[]), {},
                                            net.n_params, net.params.dtype)
        assert ckpt.optimizer_spec(again) == spec
    if c.rng_state is not None:
        assert isinstance(c.rng(), np.random.Generator)


# ---------------------------------------------------------------------------- analysis


def _eq123(w):
    getcontext().prec = 50
    w = abs(Decimal(w))
    s = (1 - 4 / w).sqrt()
    return float((2 / w) * (w * (1 + s) / 2 - 1).ln())


@fuzz(300)
@given(w=numbers, b=numbers)
def test_interval_analysis(w, b):
    width, err = outcome(lambda: interval.interval_width(w), "interval_width")
    if err is None:
        width = np.asarray(width)
        assert np.isfinite(width).all() and (width >= 0).all()
        for wi, got in zip(np.ravel(np.asarray(w, np.float64)), np.ravel(width)):
            if abs(wi) > 4:
                assert got == pytest.approx(_eq123(wi), rel=1e-12)
    iv, err = outcome(lambda: interval.admissible_interval(w, b), "admissible_interval")
    if err is None:
        assert iv.width >= 0 and (iv.empty or iv.lo <= iv.hi)
        # width = hi - lo: exact up to the rounding of the endpoints
        ends = max(abs(iv.lo), abs(iv.hi)) if not iv.empty else 0.0
        assert abs(iv.width - float(interval.interval_width(w))) <= \
            1e-12 * iv.width + 8 * np.finfo(float).eps * ends
