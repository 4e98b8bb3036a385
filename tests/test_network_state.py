"""One source of truth for a Network (issue 14 items 2, 3, 9) and its state: copies, deep copies
and pickles are independent networks that compute and train bitwise as the original, through the
state format checkpoints use (issues 10 and 11)."""
import ast
import copy
import json
import pathlib
import pickle

import numpy as np
import pytest

import vgfast
from vgfast import _reference as R
from vgfast import checkpoint as ckpt
from vgfast import network as network_module


def data(n=24, n_in=5, n_out=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, n_in)), rng.integers(0, n_out, n)


X, y = data()


def numpy_forward(net, X):
    """The network's function from its weights and biases, in plain numpy (sigmoid layers)."""
    a = X
    for w, b in zip(net.weights, net.biases):
        a = 1.0 / (1.0 + np.exp(-(a @ w.T + b)))
    return a


# ---------------------------------------------------------------------------- item 2


def test_architecture_is_read_only_and_the_engine_keeps_working():
    net = vgfast.Network([5, 4, 3], seed=0)
    before = net.feedforward(X)
    with pytest.raises(TypeError, match=r"net\.sizes is fixed"):
        net.sizes[0] = 1  # was: a segfault in feedforward
    with pytest.raises(TypeError, match=r"net\.activations is fixed"):
        net.activations[0] = "relu"  # was: ignored by the engine, written into checkpoints
    with pytest.raises(TypeError, match=r"net\.batch_norm is fixed"):
        net.batch_norm.append(True)
    for name, value in (("dtype", np.float32), ("sizes", [5, 3]), ("output", "softmax"),
                        ("cost_name", "quadratic"), ("leaky_slope", 0.3), ("elu_alpha", 2.0),
                        ("activations", ["relu"]), ("batch_norm", [True]), ("bn_eps", 1.0),
                        ("bn_momentum", 0.5), ("num_layers", 7)):
        with pytest.raises(AttributeError, match=rf"net\.{name} is fixed when the Network is "
                                                 rf"built"):
            setattr(net, name, value)
    assert net.sizes == [5, 4, 3] and net.activations == ["sigmoid"] and net.dtype is np.float64
    assert np.array_equal(net.feedforward(X), before)
    assert net.params.dtype == np.float64 and net.feedforward(X).dtype == np.float64
    # what a checkpoint stores is what the engine computes
    spec = net._spec()
    assert spec["activations"] == ["sigmoid"] and spec["sizes"] == [5, 4, 3]


def test_read_only_lists_still_behave_as_lists():
    net = vgfast.Network([5, 4, 4, 3], activation=["tanh", "relu"], seed=0)
    assert net.sizes[1:-1] == [4, 4] and net.sizes + [2] == [5, 4, 4, 3, 2]
    assert list(net.activations) == ["tanh", "relu"] and len(net.batch_norm) == 2
    assert pickle.loads(pickle.dumps(net.sizes)) == [5, 4, 4, 3]
    assert type(copy.copy(net.sizes)) is list  # a copy is a plain, mutable list


# ---------------------------------------------------------------------------- item 3


def test_assigning_a_layer_copies_into_the_parameter_buffer():
    net = vgfast.Network([5, 4, 3], seed=0)
    rng = np.random.default_rng(1)
    W0, b1 = rng.standard_normal((4, 5)), rng.standard_normal(3)
    views = net.weights
    net.weights[0] = W0  # was: silently ignored
    net.biases[1] = b1.tolist()
    assert net.weights is views and net.weights is net.weights  # the same list, same views
    assert np.array_equal(net.weights[0], W0) and np.array_equal(net.biases[1], b1)
    assert np.array_equal(net.params[:20], W0.ravel())  # W^1 comes first in the flat layout
    # the engine computes with the new values: compare with plain numpy
    np.testing.assert_allclose(net.feedforward(X), numpy_forward(net, X), rtol=1e-13)


def test_assigning_whole_lists_copies_and_checks_everything_first():
    net = vgfast.Network([5, 4, 3], seed=0)
    Ws = [np.full((4, 5), 0.5), np.full((3, 4), -0.25)]
    net.weights = Ws
    net.biases = [np.zeros(4), np.ones(3)]
    assert all(np.array_equal(a, b) for a, b in zip(net.weights, Ws))
    np.testing.assert_allclose(net.feedforward(X), numpy_forward(net, X), rtol=1e-13)
    before = net.params.copy()
    with pytest.raises(ValueError, match=r"net\.weights\[1\] must have shape \(3, 4\)"):
        net.weights = [np.zeros((4, 5)), np.zeros((4, 3))]
    with pytest.raises(ValueError, match=r"net\.biases\[0\] contains NaN"):
        net.biases = [np.full(4, np.nan), np.zeros(3)]
    with pytest.raises(ValueError, match=r"net\.weights must be assigned 2 arrays"):
        net.weights = [np.zeros((4, 5))]
    assert np.array_equal(net.params, before)  # nothing half-written


@pytest.mark.parametrize("bad,exc,pattern", [
    (lambda n: n.weights.append(np.zeros((3, 4))), TypeError, r"net\.weights has one entry "
                                                              r"per layer"),
    (lambda n: n.biases.pop(), TypeError, r"net\.biases has one entry per layer"),
    (lambda n: n.weights.__delitem__(0), TypeError, r"net\.weights"),
    (lambda n: n.weights.__setitem__(slice(0, 1), [np.zeros((4, 5))]), TypeError,
     r"one layer index"),
    (lambda n: n.weights.__setitem__(0, np.zeros((5, 4))), ValueError, r"shape \(4, 5\)"),
    (lambda n: n.weights.__setitem__(0, np.full((4, 5), "x")), TypeError, r"real numbers"),
    (lambda n: n.weights.__setitem__(5, np.zeros((4, 5))), IndexError, r"index out of range"),
    (lambda n: n.biases.__setitem__(0, np.full(4, np.inf)), ValueError, r"NaN or Inf"),
])
def test_bad_layer_assignments_are_refused(bad, exc, pattern):
    net = vgfast.Network([5, 4, 3], seed=0)
    before = net.params.copy()
    with pytest.raises(exc, match=pattern):
        bad(net)
    assert np.array_equal(net.params, before) and len(net.weights) == 2


def test_float32_layer_assignment_is_checked_after_the_cast():
    net = vgfast.Network([5, 4, 3], dtype="float32", seed=0)
    with pytest.raises(ValueError, match=r"float32"):
        net.weights[0] = np.full((4, 5), 1e39)  # Inf in float32
    net.weights[0] = np.full((4, 5), 0.1)
    assert net.weights[0].dtype == np.float32 and np.all(net.weights[0] == np.float32(0.1))


def test_batch_norm_gamma_assignment():
    net = vgfast.Network([5, 4, 4, 3], batch_norm=[True, False], seed=0)
    net.bn_gamma[0] = np.full(4, 2.0)
    assert np.array_equal(net.bn_gamma[0], np.full(4, 2.0))
    with pytest.raises(ValueError, match=r"layer 1 is not batch-normalised"):
        net.bn_gamma[1] = np.ones(4)


def test_batch_norm_running_statistics_assignment_copies_into_the_engine():
    net = vgfast.Network([5, 4, 4, 3], batch_norm=[True, False], seed=0)
    before = net.feedforward(X)
    net.bn_running_mean[0] = np.full(4, 0.5)  # was: a rebinding of a temporary list's entry
    net.bn_running_var = [np.full(4, 4.0), None]
    assert np.array_equal(net._engine.running, [0.5] * 4 + [4.0] * 4)
    with np.errstate(all="ignore"):
        ref = R.forward(net, net.params, X)[1][-1]
    after = net.feedforward(X)
    assert not np.array_equal(after, before)
    np.testing.assert_allclose(after, ref, rtol=1e-12)  # evaluation uses the new statistics
    with pytest.raises(ValueError, match=r"net\.bn_running_var\[0\] must be >= 0"):
        net.bn_running_var[0] = np.full(4, -1.0)
    with pytest.raises(ValueError, match=r"layer 1 is not batch-normalised"):
        net.bn_running_mean[1] = np.zeros(4)


# ---------------------------------------------------------------------------- item 9


@pytest.mark.parametrize("kw,pattern", [
    (dict(gain=1e308), r"gain=1e\+308.*overflow float64"),
    (dict(gain=1e300, dtype="float32"), r"gain=1e\+300.*overflow float32"),
    (dict(bias_init=1e39, dtype="float32"), r"bias_init=1e\+39 is too large for float32"),
    (dict(gain=-1e308, init="large"), r"gain"),
])
def test_constructor_refuses_initial_parameters_that_overflow(kw, pattern):
    with pytest.raises(ValueError, match=pattern):
        vgfast.Network([5, 4, 3], seed=0, **kw)


def test_initialize_with_an_overflowing_gain_leaves_the_parameters():
    net = vgfast.Network([5, 4, 3], dtype="float32", seed=0)
    before = net.params.copy()
    with pytest.raises(ValueError, match="gain"):
        net.initialize("nielsen", seed=1, gain=1e300)
    assert np.array_equal(net.params, before)
    # the largest gain that fits works, and every parameter is finite
    ok = net.initialize("nielsen", seed=1, gain=1e30)
    assert np.isfinite(ok.params).all()


def test_initialize_is_unchanged_for_normal_gains():
    """Drawing in float64 and casting once gives the draws as before: W = gain * N(0,1)/sqrt(n)
    in the generator's order, layer by layer, W then b."""
    net = vgfast.Network([5, 4, 3], seed=7, gain=2.0)
    rng = np.random.default_rng(7)
    for w, b in zip(net.weights, net.biases):
        assert np.array_equal(w, 2.0 * rng.standard_normal(w.shape) / np.sqrt(w.shape[1]))
        assert np.array_equal(b, rng.standard_normal(b.shape))


# ---------------------------------------------------------------------------- copies, pickles


def _bn_net(dtype="float64"):
    net = vgfast.Network([5, 6, 4, 3], activation=["relu", "tanh"], output="softmax",
                         cost="log_likelihood", batch_norm=[True, False], dtype=dtype, seed=3)
    vgfast.train(net, X.astype(dtype), y, epochs=2, batch_size=6, seed=1, monitor=False,
                 optimizer=vgfast.Adam(0.01))
    assert not np.array_equal(net.bn_running_mean[0], 0)  # the statistics moved
    return net


COPIES = {
    "pickle": lambda n: pickle.loads(pickle.dumps(n)),
    "pickle-protocol-0": lambda n: pickle.loads(pickle.dumps(n, protocol=0)),
    "deepcopy": copy.deepcopy,
    "copy": copy.copy,
    "net.copy": lambda n: n.copy(),
}


@pytest.mark.parametrize("how", COPIES)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_copies_compute_and_train_bitwise_as_the_original(how, dtype):
    net = _bn_net(dtype)
    Xd = X.astype(dtype)
    twin = COPIES[how](net)
    assert type(twin) is vgfast.Network and twin is not net
    assert twin._spec() == net._spec() and twin.params.dtype == net.params.dtype
    assert np.array_equal(twin.params, net.params)
    assert np.array_equal(twin._engine.running, net._engine.running)
    assert not np.shares_memory(twin.params, net.params)
    assert np.array_equal(twin.feedforward(Xd), net.feedforward(Xd))
    assert np.array_equal(twin.gradient(Xd, y).flat, net.gradient(Xd, y).flat)
    assert twin.cost(Xd, y) == net.cost(Xd, y)
    # the same training from the same state gives the same bits
    original = net.params.copy()
    h1 = vgfast.train(twin, Xd, y, epochs=2, batch_size=5, seed=4, optimizer=vgfast.Adam(0.02),
                      monitor=True, record=("grad_norms",))
    check = COPIES[how](net)  # the original is untouched by training the copy
    assert np.array_equal(net.params, original)
    h2 = vgfast.train(check, Xd, y, epochs=2, batch_size=5, seed=4,
                      optimizer=vgfast.Adam(0.02), monitor=True, record=("grad_norms",))
    assert np.array_equal(twin.params, check.params)
    assert np.array_equal(twin._engine.running, check._engine.running)
    assert np.array_equal(h1.grad_norms, h2.grad_norms)
    assert np.array_equal(h1.train_cost, h2.train_cost)


def test_training_a_copy_does_not_change_the_original():
    net = vgfast.Network([5, 4, 3], seed=0)
    before = net.params.copy()
    twin = copy.copy(net)  # issue 10: used to share the buffer
    vgfast.train(twin, X, y, epochs=2, batch_size=4, monitor=False)
    assert np.array_equal(net.params, before) and not np.array_equal(twin.params, before)


def test_pickled_state_is_the_checkpoint_format(tmp_path):
    net = _bn_net()
    state = net.__getstate__()
    ckpt.save(net, tmp_path / "n.ckpt")
    with np.load(tmp_path / "n.ckpt", allow_pickle=False) as f:
        header = json.loads(f["header"].tobytes())
        assert np.array_equal(f["params"], state["params"])
        assert np.array_equal(f["bn_running"], state["bn_running"])
    assert header["network"] == state["network"]
    # and the checkpoint builds the same network as unpickling does
    assert np.array_equal(ckpt.load(tmp_path / "n.ckpt").net.feedforward(X),
                          pickle.loads(pickle.dumps(net)).feedforward(X))


class Tagged(vgfast.Network):
    """A subclass with its own attribute (as the book's exercises subclass network2)."""


def test_subclasses_and_their_attributes_survive_copies():
    net = Tagged([5, 4, 3], seed=0)
    net.note = {"lr": [0.1, 0.2]}
    for how, f in COPIES.items():
        twin = f(net)
        assert type(twin) is Tagged and twin.note == net.note, how
        assert np.array_equal(twin.feedforward(X), net.feedforward(X))
    assert copy.deepcopy(net).note is not net.note and copy.copy(net).note is net.note


def test_unpickling_a_damaged_state_is_refused():
    net = vgfast.Network([5, 4, 3], seed=0)
    state = net.__getstate__()
    for key, value, pattern in (
            ("params", np.full(net.n_params, np.nan), r"params contains NaN"),
            ("params", np.zeros(3), r"params must be a \(39,\) array"),
            ("network", dict(state["network"], activations=["os.system"]), r"activations"),
            ("network", dict(state["network"], sizes=[5, -4, 3]), r"sizes"),
            ("format", "keras", r"not the state of a vgfast.Network")):
        bad = dict(state, **{key: value})
        with pytest.raises(ValueError, match=pattern):
            vgfast.Network.__new__(vgfast.Network).__setstate__(bad)


def test_network_does_not_import_checkpoint():
    """Imports run downhill (DESIGN.md): network.py must not import checkpoint (the circle of
    issue 11); checkpoint builds on network."""
    src = pathlib.Path(network_module.__file__).read_text()
    imported = set()
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, ast.ImportFrom):
            imported.add(node.module or "")
            imported.update(a.name for a in node.names)
        elif isinstance(node, ast.Import):
            imported.update(a.name for a in node.names)
    assert not any("checkpoint" in m for m in imported), imported
    ck_src = pathlib.Path(ckpt.__file__).read_text()
    assert "from .network import Network" in ck_src
