"""History and optimisers pickle (they travel to and from sweep workers) and round-trip
exactly; History's JSON form keeps each per-layer record's width."""
import copy
import pickle

import numpy as np
import pytest

import vgfast
from vgfast.history import EPOCH_FIELDS, PER_LAYER, RECORD_FIELDS

RECORD = ("activation_mean", "saturation", "cost", "update_ratio")


def _data(rng, n=60):
    return rng.random((n, 5)), rng.integers(0, 3, n)


def _assert_same_history(a, b):
    for f in EPOCH_FIELDS + RECORD_FIELDS + ("record_steps",):
        x, y = np.asarray(getattr(a, f)), np.asarray(getattr(b, f))
        assert x.shape == y.shape and x.dtype == y.dtype, f
        np.testing.assert_array_equal(x, y, err_msg=f)
    assert (a.steps_per_epoch, a.best_epoch, a.stopped_early) == \
        (b.steps_per_epoch, b.best_epoch, b.stopped_early)


def test_history_pickles_and_json_round_trips_exactly(rng):
    X, y = _data(rng)
    net = vgfast.Network([5, 4, 4, 3], seed=0)
    hist = vgfast.train(net, X, y, epochs=3, batch_size=7, record=RECORD, record_every=3,
                        validation=(X[:20], y[:20]), seed=1)
    assert hist.activation_mean.shape == (3 * 3, 3)  # 9 steps/epoch, a record every 3 steps
    _assert_same_history(hist, pickle.loads(pickle.dumps(hist)))
    # JSON: the per-layer width comes from whichever per-layer record exists (no grad_norms)
    _assert_same_history(hist, vgfast.History.from_json(hist.to_json()))
    for f in PER_LAYER:
        assert vgfast.History.from_json(hist.to_json()).__dict__[f].shape[1] == 3, f


def test_unfinished_history_pickles_too():
    h = vgfast.History()
    h.lr.append(0.1)
    h2 = pickle.loads(pickle.dumps(h))
    assert h2.lr == [0.1] and h2.epochs == 1


@pytest.mark.parametrize("make", [
    lambda: vgfast.SGD(0.05, momentum=0.9, nesterov=True),
    lambda: vgfast.Adam(vgfast.Cosine(0.01, 40), beta1=0.8),
    lambda: vgfast.RMSProp(0.01, rho=0.9),
    lambda: vgfast.AdaGrad(0.1, lr_decay=0.01),
    lambda: vgfast.AdamW(1e-3, weight_decay=0.1),
    lambda: vgfast.SGD(vgfast.StepDecay(0.1, 1, 0.5), momentum=vgfast.LinearDecay(0.5, 0.9, 20)),
])
def test_an_unpickled_optimizer_continues_training_bitwise(rng, make):
    """Train 2 epochs, pickle the optimiser, then train 2 more with the original and with the
    copy from the same parameters: the runs agree bit for bit (the state went across)."""
    X, y = _data(rng)
    net = vgfast.Network([5, 6, 3], seed=0)
    opt = make()
    vgfast.train(net, X, y, epochs=2, batch_size=8, optimizer=opt, seed=0)
    blob = pickle.dumps(opt)
    twin, twin_net, start = pickle.loads(blob), net.copy(), net.copy()
    assert type(twin) is type(opt) and repr(twin) == repr(opt) and twin.t == opt.t > 0
    for k, v in opt.state.items():
        assert twin.state[k] is not v and twin.state[k].flags.writeable
        np.testing.assert_array_equal(twin.state[k], v)
    vgfast.train(net, X, y, epochs=2, batch_size=8, optimizer=opt, seed=5)
    vgfast.train(twin_net, X, y, epochs=2, batch_size=8, optimizer=twin, seed=5)
    np.testing.assert_array_equal(net.params, twin_net.params)
    # and the state mattered: a fresh optimiser from the same parameters ends elsewhere
    vgfast.train(start, X, y, epochs=2, batch_size=8, optimizer=make(), seed=5)
    assert not np.array_equal(start.params, twin_net.params)


def test_copy_and_deepcopy_of_an_optimizer_are_independent(rng):
    X, y = _data(rng)
    net = vgfast.Network([5, 6, 3], seed=0)
    opt = vgfast.Adam(0.01)
    vgfast.train(net, X, y, epochs=1, batch_size=8, optimizer=opt)
    for c in (copy.copy(opt), copy.deepcopy(opt)):
        c.state["s1"][...] = 0
        assert np.any(opt.state["s1"] != 0)
