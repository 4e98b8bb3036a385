"""vgfast.network2, the book's network2 API on the engine, held to the book's own algorithm.

The independent oracle is ``BookNetwork`` below: network2 as Nielsen wrote it (column vectors,
a per-example backprop loop, update_mini_batch with L2, total_cost and accuracy example by
example), in plain numpy, sharing no code with vgfast. Both are started from the same weights
and shuffled by Python's ``random`` seeded the same way.
"""
import json
import random

import numpy as np
import pytest

from vgfast import network2

from conftest import rel_err

# --------------------------------------------------------------------------------------------
# The oracle: the book's network2, transcribed (Python 3)


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _sigmoid_prime(z):
    return _sigmoid(z) * (1 - _sigmoid(z))


class BookQuadraticCost:
    @staticmethod
    def fn(a, y):
        return 0.5 * np.linalg.norm(a - y) ** 2

    @staticmethod
    def delta(z, a, y):
        return (a - y) * _sigmoid_prime(z)


class BookCrossEntropyCost:
    @staticmethod
    def fn(a, y):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.sum(np.nan_to_num(-y * np.log(a) - (1 - y) * np.log(1 - a)))

    @staticmethod
    def delta(z, a, y):
        return a - y


BOOK_COST = {network2.CrossEntropyCost: BookCrossEntropyCost,
             network2.QuadraticCost: BookQuadraticCost}


class BookNetwork:
    def __init__(self, weights, biases, cost):
        self.weights = [np.array(w, dtype=np.float64) for w in weights]
        self.biases = [np.array(b, dtype=np.float64) for b in biases]
        self.num_layers = len(self.weights) + 1
        self.cost = cost

    def feedforward(self, a):
        for b, w in zip(self.biases, self.weights):
            a = _sigmoid(np.dot(w, a) + b)
        return a

    def SGD(self, training_data, epochs, mini_batch_size, eta, lmbda=0.0, evaluation_data=None,
            monitor_evaluation_cost=False, monitor_evaluation_accuracy=False,
            monitor_training_cost=False, monitor_training_accuracy=False):
        n = len(training_data)
        evaluation_cost, evaluation_accuracy = [], []
        training_cost, training_accuracy = [], []
        for _ in range(epochs):
            random.shuffle(training_data)
            mini_batches = [training_data[k:k + mini_batch_size]
                            for k in range(0, n, mini_batch_size)]
            for mini_batch in mini_batches:
                self.update_mini_batch(mini_batch, eta, lmbda, len(training_data))
            if monitor_training_cost:
                training_cost.append(self.total_cost(training_data, lmbda))
            if monitor_training_accuracy:
                training_accuracy.append(self.accuracy(training_data, convert=True))
            if monitor_evaluation_cost:
                evaluation_cost.append(self.total_cost(evaluation_data, lmbda, convert=True))
            if monitor_evaluation_accuracy:
                evaluation_accuracy.append(self.accuracy(evaluation_data))
        return evaluation_cost, evaluation_accuracy, training_cost, training_accuracy

    def update_mini_batch(self, mini_batch, eta, lmbda, n):
        nabla_b = [np.zeros(b.shape) for b in self.biases]
        nabla_w = [np.zeros(w.shape) for w in self.weights]
        for x, y in mini_batch:
            delta_nabla_b, delta_nabla_w = self.backprop(x, y)
            nabla_b = [nb + dnb for nb, dnb in zip(nabla_b, delta_nabla_b)]
            nabla_w = [nw + dnw for nw, dnw in zip(nabla_w, delta_nabla_w)]
        self.weights = [(1 - eta * (lmbda / n)) * w - (eta / len(mini_batch)) * nw
                        for w, nw in zip(self.weights, nabla_w)]
        self.biases = [b - (eta / len(mini_batch)) * nb for b, nb in zip(self.biases, nabla_b)]

    def backprop(self, x, y):
        nabla_b = [np.zeros(b.shape) for b in self.biases]
        nabla_w = [np.zeros(w.shape) for w in self.weights]
        activation = x
        activations = [x]
        zs = []
        for b, w in zip(self.biases, self.weights):
            z = np.dot(w, activation) + b
            zs.append(z)
            activation = _sigmoid(z)
            activations.append(activation)
        delta = self.cost.delta(zs[-1], activations[-1], y)
        nabla_b[-1] = delta
        nabla_w[-1] = np.dot(delta, activations[-2].transpose())
        for l in range(2, self.num_layers):
            z = zs[-l]
            sp = _sigmoid_prime(z)
            delta = np.dot(self.weights[-l + 1].transpose(), delta) * sp
            nabla_b[-l] = delta
            nabla_w[-l] = np.dot(delta, activations[-l - 1].transpose())
        return nabla_b, nabla_w

    def accuracy(self, data, convert=False):
        if convert:
            results = [(np.argmax(self.feedforward(x)), np.argmax(y)) for (x, y) in data]
        else:
            results = [(np.argmax(self.feedforward(x)), y) for (x, y) in data]
        return sum(int(x == y) for (x, y) in results)

    def total_cost(self, data, lmbda, convert=False):
        cost = 0.0
        for x, y in data:
            a = self.feedforward(x)
            if convert:
                y = _one_hot(y, a.shape[0])
            cost += self.cost.fn(a, y) / len(data)
        cost += 0.5 * (lmbda / len(data)) * sum(np.linalg.norm(w) ** 2 for w in self.weights)
        return cost


def _one_hot(j, k):
    e = np.zeros((k, 1))
    e[j] = 1.0
    return e


# --------------------------------------------------------------------------------------------
# Data in the book's format


def _training_data(n, n_in, n_out, seed, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return [(rng.random((n_in, 1)).astype(dtype), _one_hot(int(rng.integers(n_out)), n_out))
            for _ in range(n)]


def _evaluation_data(n, n_in, n_out, seed, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return [(rng.random((n_in, 1)).astype(dtype), int(rng.integers(n_out))) for _ in range(n)]


def _pair(sizes, cost, seed=3):
    """A network2.Network and the oracle, with the same parameters."""
    np.random.seed(seed)
    net = network2.Network(sizes, cost=cost)
    book = BookNetwork(net.weights, net.biases, BOOK_COST[cost])
    return net, book


def _assert_params_close(net, book, tol=1e-12):
    for l, (w, bw) in enumerate(zip(net.weights, book.weights)):
        assert rel_err(w, bw) < tol, f"weights[{l}]: rel err {rel_err(w, bw):.2e}"
    for l, (b, bb) in enumerate(zip(net.biases, book.biases)):
        assert b.shape == bb.shape
        assert rel_err(b, bb) < tol, f"biases[{l}]: rel err {rel_err(b, bb):.2e}"


COSTS = [network2.CrossEntropyCost, network2.QuadraticCost]
SIZES = [[784, 30, 10], [12, 9, 7, 5]]


# --------------------------------------------------------------------------------------------
# SGD against the book


@pytest.mark.parametrize("sizes", SIZES, ids=str)
@pytest.mark.parametrize("cost", COSTS, ids=lambda c: c.__name__)
def test_sgd_matches_book(sizes, cost, capsys):
    net, book = _pair(sizes, cost)
    train = _training_data(50, sizes[0], sizes[-1], seed=1)
    evald = _evaluation_data(20, sizes[0], sizes[-1], seed=2)
    mine, theirs = list(train), list(train)
    flags = dict(lmbda=0.5, evaluation_data=evald, monitor_evaluation_cost=True,
                 monitor_evaluation_accuracy=True, monitor_training_cost=True,
                 monitor_training_accuracy=True)
    random.seed(11)
    got = net.SGD(mine, 2, 7, 0.5, **flags)  # 50 = 7 * 7 + 1: a partial last mini-batch
    random.seed(11)
    want = book.SGD(theirs, 2, 7, 0.5, **flags)

    _assert_params_close(net, book)
    # the training list is reordered in place exactly as the book's random.shuffle does
    assert all(a is b for a, b in zip(mine, theirs))
    ev_cost, ev_acc, tr_cost, tr_acc = got
    for g, w in ((ev_cost, want[0]), (tr_cost, want[2])):
        assert len(g) == 2 and all(type(c) is float for c in g)
        np.testing.assert_allclose(g, w, rtol=1e-10)
    assert ev_acc == want[1] and tr_acc == want[3]
    assert all(type(a) is int for a in ev_acc + tr_acc)

    out = capsys.readouterr().out.splitlines()
    assert out[:6] == ["Epoch 0 training complete",
                       f"Cost on training data: {tr_cost[0]}",
                       f"Accuracy on training data: {tr_acc[0]} / 50",
                       f"Cost on evaluation data: {ev_cost[0]}",
                       f"Accuracy on evaluation data: {ev_acc[0]} / 20",
                       ""]
    assert out[6] == "Epoch 1 training complete"


def test_sgd_batch_larger_than_data_and_no_regularisation():
    net, book = _pair([10, 6, 4], network2.CrossEntropyCost)
    train = _training_data(9, 10, 4, seed=4, dtype=np.float64)
    random.seed(0)
    net.SGD(list(train), 3, 20, 1.0)  # one mini-batch of all 9, as in the book
    random.seed(0)
    book.SGD(list(train), 3, 20, 1.0)
    _assert_params_close(net, book)


def test_sgd_consumes_random_like_the_book():
    """Two calls in a row continue the book's random stream (and leave np.random alone)."""
    net, book = _pair([10, 6, 4], network2.QuadraticCost)
    train = _training_data(23, 10, 4, seed=5)
    mine, theirs = list(train), list(train)
    random.seed(2)
    np.random.seed(9)
    net.SGD(mine, 1, 5, 0.3, lmbda=1.0)
    net.SGD(mine, 2, 4, 0.2, lmbda=1.0)
    after = (random.random(), np.random.random())
    random.seed(2)
    np.random.seed(9)
    book.SGD(theirs, 1, 5, 0.3, lmbda=1.0)
    book.SGD(theirs, 2, 4, 0.2, lmbda=1.0)
    assert after == (random.random(), np.random.random())
    _assert_params_close(net, book)


def test_sgd_accepts_arrays_and_iterators():
    sizes = [8, 5, 3]
    train = _training_data(17, 8, 3, seed=6)
    evald = _evaluation_data(6, 8, 3, seed=7)
    X = np.array([x.ravel() for x, _ in train])
    Y = np.array([y.ravel() for _, y in train])
    labels = Y.argmax(axis=1)
    Xe = np.array([x.ravel() for x, _ in evald])
    ye = np.array([y for _, y in evald])
    kw = dict(evaluation_data=evald, monitor_evaluation_cost=True,
              monitor_evaluation_accuracy=True, monitor_training_cost=True)
    runs = []
    for data, ev in (((list(train)), evald), ((X, Y), (Xe, ye)), ((X, labels), (Xe, ye)),
                     (zip(*zip(*train)), iter(evald))):
        np.random.seed(1)
        net = network2.Network(sizes)
        random.seed(3)
        runs.append((net.SGD(data, 2, 4, 0.5, lmbda=0.1, **dict(kw, evaluation_data=ev)),
                     net.network.params.copy()))
    ref_lists, ref_params = runs[0]
    for lists, params in runs[1:]:
        assert rel_err(params, ref_params) < 1e-13
        for a, b in zip(lists, ref_lists):
            np.testing.assert_allclose(a, b, rtol=1e-12)


def test_update_mini_batch_matches_book():
    net, book = _pair([9, 7, 4], network2.CrossEntropyCost)
    batch = _training_data(6, 9, 4, seed=8)
    net.update_mini_batch(batch, 0.7, 2.0, 40)
    book.update_mini_batch(batch, 0.7, 2.0, 40)
    _assert_params_close(net, book, tol=1e-13)


# --------------------------------------------------------------------------------------------
# backprop, feedforward, costs


@pytest.mark.parametrize("cost", COSTS, ids=lambda c: c.__name__)
def test_backprop_matches_book_and_finite_differences(cost):
    net, book = _pair([6, 5, 4, 3], cost, seed=4)
    rng = np.random.default_rng(0)
    x = rng.random((6, 1))
    y = _one_hot(2, 3)
    nabla_b, nabla_w = net.backprop(x, y)
    want_b, want_w = book.backprop(x, y)
    for g, w in zip(nabla_b + nabla_w, want_b + want_w):
        assert g.shape == w.shape
        assert rel_err(g, w) < 1e-13

    def C():
        return book.cost.fn(book.feedforward(x), y)

    h = 1e-5
    for params, grads in ((book.weights, nabla_w), (book.biases, nabla_b)):
        for p, g in zip(params, grads):
            fd = np.zeros_like(p)
            for i in np.ndindex(p.shape):
                old = p[i]
                p[i] = old + h
                up = C()
                p[i] = old - h
                down = C()
                p[i] = old
                fd[i] = (up - down) / (2 * h)
            assert rel_err(g, fd) < 1e-7


def test_backprop_accepts_vectors_and_labels():
    net, book = _pair([6, 5, 3], network2.CrossEntropyCost)
    x = np.linspace(0, 1, 6)
    want_b, want_w = book.backprop(x.reshape(6, 1), _one_hot(1, 3))
    for y in (1, _one_hot(1, 3).ravel()):
        nabla_b, nabla_w = net.backprop(x, y)
        for g, w in zip(nabla_b + nabla_w, want_b + want_w):
            assert rel_err(g, w) < 1e-13


def test_feedforward_columns_vectors_and_rows():
    net, book = _pair([7, 5, 4], network2.CrossEntropyCost)
    X = np.random.default_rng(1).random((3, 7))
    col = net.feedforward(X[0].reshape(7, 1))
    assert col.shape == (4, 1)
    assert rel_err(col, book.feedforward(X[0].reshape(7, 1))) < 1e-14
    assert net.feedforward(X[0]).shape == (4,)
    rows = net.feedforward(X)
    assert rows.shape == (3, 4)
    assert rel_err(rows, book.feedforward(X.T).T) < 1e-14


def test_cost_classes_match_book():
    rng = np.random.default_rng(2)
    z = rng.normal(0, 3, (10, 1))
    a = _sigmoid(z)
    y = _one_hot(4, 10)
    for mine, book in BOOK_COST.items():
        assert mine.fn(a, y) == pytest.approx(book.fn(a, y), rel=1e-14)
        np.testing.assert_allclose(mine.delta(z, a, y), book.delta(z, a, y), rtol=1e-14)
    # saturated outputs: 0 ln 0 counts as 0, as the book's nan_to_num makes it
    a = np.array([[0.0], [1.0], [0.5]])
    y = np.array([[0.0], [1.0], [1.0]])
    assert network2.CrossEntropyCost.fn(a, y) == pytest.approx(BookCrossEntropyCost.fn(a, y))
    assert network2.sigmoid(-1000.0) == 0.0 and network2.sigmoid(1000.0) == 1.0
    assert network2.sigmoid_prime(0.0) == 0.25
    assert network2.vectorized_result(3).shape == (10, 1)
    assert network2.vectorized_result(3)[3, 0] == 1.0 and network2.vectorized_result(3).sum() == 1


@pytest.mark.parametrize("cost", COSTS, ids=lambda c: c.__name__)
def test_accuracy_and_total_cost_match_book(cost):
    net, book = _pair([8, 6, 4], cost)
    train = _training_data(15, 8, 4, seed=9)
    evald = _evaluation_data(12, 8, 4, seed=10)
    assert net.accuracy(evald) == book.accuracy(evald)
    assert net.accuracy(train, convert=True) == book.accuracy(train, convert=True)
    assert net.total_cost(train, 0.7) == pytest.approx(book.total_cost(train, 0.7), rel=1e-12)
    assert net.total_cost(evald, 0.7, convert=True) == pytest.approx(
        book.total_cost(evald, 0.7, convert=True), rel=1e-12)
    with pytest.raises(ValueError, match="convert=True"):
        net.accuracy(train)
    with pytest.raises(ValueError, match="convert=False"):
        net.accuracy(evald, convert=True)
    with pytest.raises(ValueError, match="convert=True"):
        net.total_cost(evald, 0.7)


def test_cost_can_be_switched():
    net, book = _pair([6, 5, 3], network2.CrossEntropyCost)
    net.cost = network2.QuadraticCost
    book.cost = BookQuadraticCost
    x, y = np.ones((6, 1)) * 0.3, _one_hot(0, 3)
    assert rel_err(net.backprop(x, y)[1][0], book.backprop(x, y)[1][0]) < 1e-13
    assert net.total_cost([(x, y)], 0.0) == pytest.approx(book.total_cost([(x, y)], 0.0))


# --------------------------------------------------------------------------------------------
# Parameters: the book's draws, views of the engine's buffer


@pytest.mark.parametrize("method", ["default_weight_initializer", "large_weight_initializer"])
def test_initialisers_make_the_books_draws(method):
    sizes = [7, 5, 4, 3]
    np.random.seed(42)
    net = network2.Network(sizes)
    getattr(net, method)()
    np.random.seed(42)
    network2.Network(sizes)  # the constructor draws the default initialiser, as in the book
    biases = [np.random.randn(y, 1) for y in sizes[1:]]
    scale = (lambda x: np.sqrt(x)) if method == "default_weight_initializer" else (lambda x: 1)
    weights = [np.random.randn(y, x) / scale(x) for x, y in zip(sizes[:-1], sizes[1:])]
    for got, want in zip(net.biases + net.weights, biases + weights):
        assert got.shape == want.shape
        assert np.array_equal(got, want)


def test_parameters_are_the_books_lists():
    net = network2.Network([4, 3, 2])
    assert net.num_layers == 3 and net.sizes == [4, 3, 2]
    assert net.weights is net.weights and type(net.weights) is list
    net.biases[0][...] = 7.0  # in place: the network changes, as in the book
    assert np.all(net.network.biases[0] == 7.0)
    net.weights[1][0, 0] = -2.0
    assert net.network.weights[1][0, 0] == -2.0
    net.weights[0] = np.full((3, 4), 0.5)  # replacing an array: seen at the next use
    net.biases[1] = np.array([1.0, 2.0])  # (n,) accepted for an (n, 1) bias
    assert np.all(net.network.weights[0] == 0.5) and list(net.network.biases[1]) == [1.0, 2.0]
    assert net.biases[1].shape == (2, 1)
    net.biases[1] *= 2
    assert list(net.network.biases[1]) == [2.0, 4.0]
    x = np.full((4, 1), 0.25)
    book = BookNetwork(net.weights, net.biases, BookCrossEntropyCost)
    assert rel_err(net.feedforward(x), book.feedforward(x)) < 1e-14
    new_w = [np.arange(12.0).reshape(3, 4), np.ones((2, 3))]
    net.weights = new_w  # a new list: the network uses it
    assert np.array_equal(net.network.weights[0], np.arange(12.0).reshape(3, 4))
    assert np.shares_memory(net.weights[0], net.network.params)

    net.weights.append(np.ones((2, 2)))
    with pytest.raises(ValueError, match=r"net.weights must be a list of 2 arrays.*3 entries"):
        net.feedforward(x)
    net.weights = [np.ones((4, 3)), np.ones((2, 3))]
    with pytest.raises(ValueError, match=r"net.weights\[0\] must have shape \(3, 4\)"):
        net.feedforward(x)
    net.weights = [np.ones((3, 4)), np.full((2, 3), np.nan)]
    with pytest.raises(ValueError, match=r"weights\[1\] contains NaN"):
        net.feedforward(x)
    net.weights = [np.ones((3, 4)), np.ones((2, 3))]
    net.sizes[0] = 5
    with pytest.raises(ValueError, match="sizes was changed"):
        net.feedforward(x)


def test_sgd_rebinds_the_lists_as_the_book_does():
    net, book = _pair([6, 5, 3], network2.CrossEntropyCost)
    before_w, before_b = net.weights, net.biases
    saved = [w.copy() for w in before_w] + [b.copy() for b in before_b]
    train = _training_data(12, 6, 3, seed=9)
    random.seed(1)
    net.SGD(list(train), 2, 4, 0.5, lmbda=0.1)
    random.seed(1)
    book.SGD(list(train), 2, 4, 0.5, lmbda=0.1)
    _assert_params_close(net, book)
    assert net.weights is not before_w
    for held, value in zip(before_w + before_b, saved):  # the old arrays keep their values
        assert np.array_equal(held, value)
    before = net.weights
    net.update_mini_batch(train[:3], 0.5, 0.1, 12)
    book.update_mini_batch(train[:3], 0.5, 0.1, 12)
    assert net.weights is not before
    _assert_params_close(net, book)


def test_copy_deepcopy_and_pickle():
    import copy
    import pickle

    net, _ = _pair([5, 4, 3], network2.QuadraticCost)
    x = np.linspace(0, 1, 5).reshape(5, 1)
    out = net.feedforward(x)
    train = _training_data(8, 5, 3, seed=2)
    for clone in (copy.copy(net), copy.deepcopy(net), pickle.loads(pickle.dumps(net))):
        assert clone.cost is network2.QuadraticCost and clone.sizes == [5, 4, 3]
        assert np.array_equal(clone.feedforward(x), out)
        clone.SGD(list(train), 2, 3, 1.0)  # training the clone leaves the original alone
        assert not np.array_equal(clone.feedforward(x), out)
        assert np.array_equal(net.feedforward(x), out)
    deep = copy.deepcopy(net)
    deep.weights[0][...] = 0  # a deep copy shares no array
    assert np.array_equal(net.feedforward(x), out)


class _L1Network(network2.Network):
    """The chapter-3 exercise: L1 instead of L2, by overriding update_mini_batch."""

    calls = 0

    def update_mini_batch(self, mini_batch, eta, lmbda, n):
        type(self).calls += 1
        nabla_b = [np.zeros(b.shape) for b in self.biases]
        nabla_w = [np.zeros(w.shape) for w in self.weights]
        for x, y in mini_batch:
            delta_nabla_b, delta_nabla_w = self.backprop(x, y)
            nabla_b = [nb + dnb for nb, dnb in zip(nabla_b, delta_nabla_b)]
            nabla_w = [nw + dnw for nw, dnw in zip(nabla_w, delta_nabla_w)]
        self.weights = [w - eta * (lmbda / n) * np.sign(w) - (eta / len(mini_batch)) * nw
                        for w, nw in zip(self.weights, nabla_w)]
        self.biases = [b - (eta / len(mini_batch)) * nb for b, nb in zip(self.biases, nabla_b)]


class _BookL1(BookNetwork):
    calls = 0
    update_mini_batch = _L1Network.update_mini_batch


class _CountingBackprop(network2.Network):
    calls = 0

    def backprop(self, x, y):
        type(self).calls += 1
        return super().backprop(x, y)


def test_subclass_overrides_are_called_by_sgd():
    _L1Network.calls = _CountingBackprop.calls = 0
    np.random.seed(5)
    net = _L1Network([6, 4, 3])
    book = _BookL1(net.weights, net.biases, BookCrossEntropyCost)
    train = _training_data(10, 6, 3, seed=3)
    random.seed(4)
    net.SGD(list(train), 2, 3, 0.5, lmbda=2.0)
    random.seed(4)
    book.SGD(list(train), 2, 3, 0.5, lmbda=2.0)
    assert _L1Network.calls == 8  # 2 epochs of 4 mini-batches
    _assert_params_close(net, book)

    np.random.seed(5)
    counting = _CountingBackprop([6, 4, 3])
    random.seed(4)
    counting.SGD(list(train), 1, 3, 0.5)
    assert _CountingBackprop.calls == 10  # the book's update_mini_batch, one call per example


class _HalfQuadratic:
    """A cost of the user's: C = ||a - y||^2 / 4 (half the book's quadratic)."""

    @staticmethod
    def fn(a, y):
        return 0.25 * np.linalg.norm(a - y) ** 2

    @staticmethod
    def delta(z, a, y):
        return 0.5 * (a - y) * _sigmoid_prime(z)


def test_a_cost_class_of_the_users_is_honoured():
    np.random.seed(8)
    net = network2.Network([5, 4, 3], cost=_HalfQuadratic)
    book = BookNetwork(net.weights, net.biases, _HalfQuadratic)
    train = _training_data(9, 5, 3, seed=6)
    evald = _evaluation_data(4, 5, 3, seed=7)
    flags = dict(evaluation_data=evald, monitor_evaluation_cost=True,
                 monitor_training_cost=True, monitor_training_accuracy=True)
    random.seed(2)
    got = net.SGD(list(train), 2, 4, 0.5, lmbda=0.3, **flags)
    random.seed(2)
    want = book.SGD(list(train), 2, 4, 0.5, lmbda=0.3, **flags)
    _assert_params_close(net, book)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-12)
    np.testing.assert_allclose(got[2], want[2], rtol=1e-12)
    assert got[3] == want[3]
    x, y = train[0]
    for g, w in zip(sum(net.backprop(x, y), []), sum(book.backprop(x, y), [])):
        assert rel_err(g, w) < 1e-13
    # half the book's quadratic cost: half its gradient
    quadratic = network2.Network([5, 4, 3], cost=network2.QuadraticCost)
    quadratic.weights, quadratic.biases = net.weights, net.biases
    for g, w in zip(sum(net.backprop(x, y), []), sum(quadratic.backprop(x, y), [])):
        assert rel_err(2 * g, w) < 1e-13


# --------------------------------------------------------------------------------------------
# save / load


def test_save_load_round_trip_is_bitwise(tmp_path):
    np.random.seed(0)
    net = network2.Network([5, 4, 3], cost=network2.QuadraticCost)
    random.seed(0)
    net.SGD(_training_data(10, 5, 3, seed=1), 1, 3, 0.5)
    path = tmp_path / "net.json"
    net.save(str(path))
    data = json.loads(path.read_text())
    assert set(data) == {"sizes", "weights", "biases", "cost"}
    assert data["cost"] == "QuadraticCost" and data["sizes"] == [5, 4, 3]
    assert np.array(data["biases"][0]).shape == (4, 1)
    back = network2.load(str(path))
    assert back.cost is network2.QuadraticCost
    assert back.sizes == net.sizes
    assert np.array_equal(back.network.params, net.network.params)


def test_load_a_file_in_the_books_format(tmp_path):
    rng = np.random.default_rng(3)
    sizes = [3, 2, 2]
    weights = [rng.normal(size=(2, 3)), rng.normal(size=(2, 2))]
    biases = [rng.normal(size=(2, 1)), rng.normal(size=(2, 1))]
    path = tmp_path / "book.json"
    with open(path, "w") as f:  # the book's save(), verbatim
        json.dump({"sizes": sizes, "weights": [w.tolist() for w in weights],
                   "biases": [b.tolist() for b in biases], "cost": "CrossEntropyCost"}, f)
    net = network2.load(str(path))
    assert net.cost is network2.CrossEntropyCost
    for got, want in zip(net.weights + net.biases, weights + biases):
        assert np.array_equal(got, want)
    x = np.array([[0.1], [0.2], [0.3]])
    book = BookNetwork(weights, biases, BookCrossEntropyCost)
    assert rel_err(net.feedforward(x), book.feedforward(x)) < 1e-14

    path.write_text(json.dumps({"sizes": sizes, "weights": [], "biases": [], "cost": "Log"}))
    with pytest.raises(ValueError, match="unknown cost 'Log'"):
        network2.load(str(path))
    path.write_text(json.dumps({"sizes": sizes}))
    with pytest.raises(ValueError, match="not a network2 file"):
        network2.load(str(path))


# --------------------------------------------------------------------------------------------
# The chapter's code, unchanged


def test_chapter_snippet_runs(capsys):
    training_data = _training_data(120, 784, 10, seed=11)
    validation_data = _evaluation_data(60, 784, 10, seed=12)
    net = network2.Network([784, 30, 10], cost=network2.CrossEntropyCost)
    net.large_weight_initializer()
    result = net.SGD(training_data[:100], 2, 10, 0.1, lmbda=5.0,
                     evaluation_data=validation_data[:50], monitor_evaluation_accuracy=True)
    evaluation_cost, evaluation_accuracy, training_cost, training_accuracy = result
    assert evaluation_cost == [] and training_cost == [] and training_accuracy == []
    assert len(evaluation_accuracy) == 2
    assert all(isinstance(a, int) and 0 <= a <= 50 for a in evaluation_accuracy)
    out = capsys.readouterr().out
    assert "Epoch 0 training complete" in out and "Epoch 1 training complete" in out
    assert f"Accuracy on evaluation data: {evaluation_accuracy[1]} / 50" in out
    assert 0 <= net.accuracy(validation_data) <= 60


# --------------------------------------------------------------------------------------------
# Bad input


@pytest.mark.parametrize("sizes", [[784], [784, 0, 10], "abc", [784, -3], [784, 2.5, 10]])
def test_bad_sizes(sizes):
    with pytest.raises(ValueError, match="sizes"):
        network2.Network(sizes)


def test_bad_cost():
    class NoDelta:
        @staticmethod
        def fn(a, y):
            return 0.0

    for cost in (NoDelta, "CrossEntropyCost", None):
        with pytest.raises(ValueError, match="cost must be a cost class with fn"):
            network2.Network([3, 2], cost=cost)


def test_bad_shapes():
    net = network2.Network([4, 3, 2])
    with pytest.raises(ValueError, match=r"column \(4, 1\)"):
        net.feedforward(np.ones((3, 1)))
    with pytest.raises(ValueError, match=r"column \(4, 1\)"):
        net.feedforward(np.ones((2, 2, 4)))
    with pytest.raises(ValueError, match=r"x must be one example"):
        net.backprop(np.ones((4, 2)), np.ones((2, 1)))
    with pytest.raises(ValueError, match=r"y must be one example"):
        net.backprop(np.ones((4, 1)), np.ones((3, 1)))
    good = _training_data(5, 4, 2, seed=0)
    with pytest.raises(ValueError, match=r"each x must be a column \(4, 1\).*\(5, 1\)"):
        net.SGD([(np.ones((5, 1)), y) for _, y in good], 1, 2, 0.1)
    with pytest.raises(ValueError, match=r"each y must be .* \(2, 1\)"):
        net.SGD([(x, np.ones((3, 1))) for x, _ in good], 1, 2, 0.1)
    with pytest.raises(ValueError, match="not a mixture"):
        net.SGD(good[:2] + [(good[2][0], 1)], 1, 2, 0.1)
    with pytest.raises(ValueError, match="pairs"):
        net.SGD([np.ones(4), np.ones(4)], 1, 2, 0.1)
    with pytest.raises(ValueError, match="empty"):
        net.SGD([], 1, 2, 0.1)
    with pytest.raises(ValueError, match="labels must be in 0..1"):
        net.accuracy([(good[0][0], 5)])
    with pytest.raises(TypeError, match="integer pixels"):
        net.SGD([(np.ones((4, 1), dtype=np.uint8), y) for _, y in good], 1, 2, 0.1)
    with pytest.raises(ValueError, match="NaN"):
        net.SGD([(np.full((4, 1), np.nan), y) for _, y in good], 1, 2, 0.1)
    with pytest.raises(ValueError, match="need evaluation_data"):
        net.SGD(good, 1, 2, 0.1, monitor_evaluation_accuracy=True)
    net.SGD(good, 1, 2, 0.1, evaluation_data=[])  # not monitored: ignored, as in the book
    with pytest.raises(ValueError, match="mini_batch_size must be >= 1"):
        net.SGD(good, 1, 0, 0.1)
    with pytest.raises(ValueError, match="lmbda must be >= 0"):
        net.SGD(good, 1, 2, 0.1, lmbda=-1.0)
    with pytest.raises(ValueError, match=r"\(X\) must have 4 columns"):
        net.SGD((np.ones((5, 3)), np.zeros(5, dtype=int)), 1, 2, 0.1)


def test_backprop_results_are_independent_arrays():
    """nabla_b does not keep nabla_w's memory alive (generate_gradient.py keeps only nabla_b
    of 1000 calls), and no result is a view of the parameters or of another call's result."""
    net = network2.Network([20, 8, 4])
    x, y = np.linspace(0, 1, 20).reshape(20, 1), network2.vectorized_result(1, 4)
    nabla_b, nabla_w = net.backprop(x, y)
    again_b, again_w = net.backprop(x, y)
    for b in nabla_b:
        assert b.base is None and b.shape[1] == 1
        assert not any(np.shares_memory(b, w) for w in nabla_w)
    for w, w2 in zip(nabla_w, again_w):
        assert not np.shares_memory(w, w2) and not np.shares_memory(w, net.network.params)
        assert np.array_equal(w, w2)


# --------------------------------------------------------------------------------------------
# The book's chapter-5 script, fig/generate_gradient.py, on both network2s


def _generate_gradient(which):
    """bench/generate_gradient's port of the book's script, importing `which`'s network2."""
    import importlib.util
    import os
    pytest.importorskip("matplotlib")
    here = os.path.join(os.path.dirname(__file__), os.pardir, "bench", "generate_gradient")
    spec = importlib.util.spec_from_file_location("_gg_run", os.path.join(here, "run.py"))
    run = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run)
    return run.load_script(which)


def test_generate_gradient_script_gives_the_books_network2_numbers(tmp_path, monkeypatch):
    """The script's own functions (initial gradient, 5 epochs of its full-batch training with
    the norms before each epoch) on the book's network2 (its src/network2.py, ported to Python
    3) and on vgfast.network2, from the same draws: the same numbers to 1e-12."""
    monkeypatch.chdir(tmp_path)
    got = {}
    for which in ("book", "vgfast"):
        script = _generate_gradient(which)
        td = _training_data(120, 784, 10, seed=5)
        random.seed(1)
        np.random.seed(2)
        runs = []
        for sizes in ([784, 30, 30, 10], [784, 30, 30, 30, 30, 10]):
            net = script.network2.Network(sizes)
            initial = [ag[:6] for ag in script.get_average_gradient(net, td)[:-1]]
            script.training(td, net, 5, f"{which}.json")
            with open(f"{which}.json") as f:
                runs.append((initial, json.load(f)))
        got[which] = runs
    for (b_init, b_norms), (v_init, v_norms) in zip(got["book"], got["vgfast"]):
        np.testing.assert_allclose(v_init, b_init, rtol=1e-12, atol=0)
        assert np.shape(v_norms) == np.shape(b_norms) == (5, len(b_init))
        np.testing.assert_allclose(v_norms, b_norms, rtol=1e-12, atol=0)
    # the two runs did train: the norms moved from epoch to epoch
    assert not np.allclose(got["book"][1][1][0], got["book"][1][1][-1], rtol=1e-3)
