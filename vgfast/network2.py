"""Drop-in for the book's ``network2`` (Nielsen, *Neural Networks and Deep Learning*, ch. 3 and 5),
running on the vgfast engine, so the chapter code runs unchanged and fast::

    from vgfast import network2
    net = network2.Network([784, 30, 10], cost=network2.CrossEntropyCost)
    net.large_weight_initializer()
    net.SGD(training_data, 30, 10, 0.5, lmbda=5.0, evaluation_data=validation_data,
            monitor_evaluation_accuracy=True)

What maps to what
-----------------
======================================  ==========================================================
book (``network2``)                     here
======================================  ==========================================================
``QuadraticCost``, ``CrossEntropyCost``  same classes (stable ``fn``); engine costs ``"quadratic"``
                                        and ``"cross_entropy"``, sigmoid in every layer
``net.weights[l]`` (n_out, n_in)        a writable view of ``vgfast.Network.weights[l]``
``net.biases[l]`` (n_out, 1)            a writable (n_out, 1) view of ``vgfast.Network.biases[l]``
``default/large_weight_initializer``    the book's ``np.random.randn`` draws, in the book's order
``feedforward(a)``                      ``vgfast.Network.feedforward`` (columns in, columns out)
``backprop(x, y)``                      ``vgfast.Network.gradient`` of the one-example cost
``update_mini_batch``                   ``vgfast.Network.gradient`` of the batch + the L2 step
``SGD``                                 ``vgfast.train(optimizer=vgfast.SGD(lr=eta), lmbda=lmbda,
                                        batch_size=mini_batch_size)``, one call per epoch on the
                                        rows in the order ``random.shuffle`` gives the book
``accuracy``, ``total_cost``            ``vgfast.Network.predict`` / ``.cost`` over all rows
``save``, ``load``                      the book's JSON file format
======================================  ==========================================================

The numbers are the book's: after ``random.seed(s)`` and ``np.random.seed(k)`` a run makes the
same draws, visits the examples in the same order, applies the same update
``w <- (1 - eta lmbda / n) w - (eta / m) sum nabla_w``, ``b <- b - (eta / m) sum nabla_b`` and
reports the same costs and counts, to rounding error. ``SGD`` reorders a ``training_data`` list
in place as the book's ``random.shuffle(training_data)`` does.

Data may be given the book's way (lists of ``(x, y)`` with ``x`` an (n_in, 1) column and ``y`` an
(n_out, 1) one-hot column for training data or an int label for validation and test data) or
as arrays ``(X, Y)`` with examples as rows (``Y`` int labels or one-hot rows).
"""
import json
import random
import sys

import numpy as np
from scipy.special import expit, xlogy

from ._validate import as_matrix, as_targets, check_number
from .network import Network as _EngineNetwork
from .optim import SGD as _SGD
from .train import train as _train

__all__ = ["QuadraticCost", "CrossEntropyCost", "Network", "load", "vectorized_result",
           "sigmoid", "sigmoid_prime"]


# ------------------------------------------------------------------------------------ costs


class QuadraticCost:
    """C = ||a - y||^2 / 2 for one example (column vectors); the engine's ``"quadratic"``."""

    vgfast_cost = "quadratic"

    @staticmethod
    def fn(a, y):
        """The cost of output ``a`` for desired output ``y``."""
        return 0.5 * np.linalg.norm(a - y) ** 2

    @staticmethod
    def delta(z, a, y):
        """dC/dz of the output layer: (a - y) sigma'(z)."""
        return (a - y) * sigmoid_prime(z)


class CrossEntropyCost:
    """C = -sum [y ln a + (1 - y) ln(1 - a)] for one example; the engine's ``"cross_entropy"``.

    ``fn`` uses ``xlogy`` so that 0 ln 0 = 0 (the book gets there with ``nan_to_num``); it equals
    the book's value wherever that is finite and is ``inf`` where the book returns the largest
    float. The engine computes the same cost from z, stably, as ``softplus(z) - y z``.
    """

    vgfast_cost = "cross_entropy"

    @staticmethod
    def fn(a, y):
        """The cost of output ``a`` for desired output ``y``."""
        return -np.sum(xlogy(y, a) + xlogy(1 - y, 1 - a))

    @staticmethod
    def delta(z, a, y):
        """dC/dz of the output layer: a - y (sigma'(z) cancels)."""
        return a - y


_BOOK_COSTS = {"QuadraticCost": "quadratic", "CrossEntropyCost": "cross_entropy"}


def _engine_cost(cost):
    """The engine's cost name for a cost class: its ``vgfast_cost``, or the book's class name."""
    name = getattr(cost, "vgfast_cost", None) or _BOOK_COSTS.get(getattr(cost, "__name__", None))
    if name is None:
        raise ValueError(f"cost must be network2.QuadraticCost or network2.CrossEntropyCost (or a "
                         f"class with vgfast_cost = 'quadratic' or 'cross_entropy'); the engine "
                         f"cannot run an arbitrary fn/delta. Got {cost!r}")
    return name


# ------------------------------------------------------------------------------------ network


class _Layers(list):
    """The per-layer parameter views the properties return; ``lst[l] = value`` copies into the
    engine's buffer (a plain list would silently drop the assignment)."""

    def __init__(self, views, name):
        super().__init__(views)
        self._name = name

    def __setitem__(self, l, value):
        if not isinstance(l, (int, np.integer)):
            raise TypeError(f"{self._name}[...] takes a layer index; assign a whole list to "
                            f"net.{self._name} to replace several layers")
        view = list.__getitem__(self, l)
        view[...] = _layer_values(value, view.shape, f"{self._name}[{l}]")


def _layer_values(value, shape, name):
    """``value`` as a finite float64 array of ``shape``; (n,) is accepted for an (n, 1) bias."""
    arr = np.asarray(value, dtype=np.float64)
    if arr.shape != shape:
        if shape[1:] == (1,) and arr.shape == shape[:1]:
            arr = arr.reshape(shape)
        else:
            raise ValueError(f"{name} must have shape {shape}; got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or Inf")
    return arr


def _check_sizes(sizes):
    """sizes as a list of ints, refusing non-integral values (2.5) rather than truncating."""
    try:
        raw = list(sizes)
        integral = all(float(s) == int(s) for s in raw)
    except (TypeError, ValueError, OverflowError):
        integral = False
    if not integral:
        raise ValueError(f"sizes must be a list of at least two positive integers (input first, "
                         f"e.g. [784, 30, 10]); got {sizes!r}")
    return _EngineNetwork._check_sizes(raw)


class Network:
    """The book's ``network2.Network`` on the vgfast engine: sigmoid layers, the given cost.

    Parameters
    ----------
    sizes : list of int
        Neurons per layer, input first, e.g. ``[784, 30, 10]``.
    cost : QuadraticCost or CrossEntropyCost
        The cost class (the class, as in the book, not an instance).

    Attributes
    ----------
    num_layers : int, ``len(sizes)``.
    sizes : list of int.
    weights : list of (n_out, n_in) arrays, writable views of the engine's parameter buffer.
        Assigning a new list (``net.weights = [...]``) or a layer (``net.weights[l] = w``) copies
        the values in.
    biases : list of (n_out, 1) arrays, writable views likewise.
    cost : the cost class; assigning another one switches the engine's cost.
    network : vgfast.Network, the engine network that holds the parameters (for vgfast.train,
        vgfast.analysis and the rest of the library; it shares the parameters with this one).
    """

    def __init__(self, sizes, cost=CrossEntropyCost):
        sizes = _check_sizes(sizes)
        self._net = _EngineNetwork(sizes, cost=_engine_cost(cost), seed=0)
        self._cost = cost
        self.num_layers = len(sizes)
        self.sizes = sizes
        self.default_weight_initializer()

    # ------------------------------------------------------------------ parameters
    @property
    def network(self):
        return self._net

    @property
    def weights(self):
        return _Layers(self._net.weights, "weights")

    @weights.setter
    def weights(self, values):
        self._assign(self._net.weights, values, "weights")

    @property
    def biases(self):
        return _Layers([b[:, None] for b in self._net.biases], "biases")

    @biases.setter
    def biases(self, values):
        self._assign([b[:, None] for b in self._net.biases], values, "biases")

    def _assign(self, views, values, name):
        values = list(values)
        if len(values) != len(views):
            raise ValueError(f"{name} must be a list of {len(views)} arrays (one per layer after "
                             f"the input); got {len(values)}")
        checked = [_layer_values(v, view.shape, f"{name}[{l}]")
                   for l, (v, view) in enumerate(zip(values, views))]
        for view, v in zip(views, checked):
            view[...] = v

    @property
    def cost(self):
        return self._cost

    @cost.setter
    def cost(self, cost):
        name = _engine_cost(cost)
        if name != self._net.cost_name:
            new = _EngineNetwork(self.sizes, cost=name, seed=0)
            new.params[...] = self._net.params
            self._net = new
        self._cost = cost

    def default_weight_initializer(self):
        """Weights N(0, 1/n_in), biases N(0, 1), from ``np.random.randn``: all the biases first,
        then all the weights, as the book draws them (so ``np.random.seed`` reproduces it)."""
        biases = [np.random.randn(y, 1) for y in self.sizes[1:]]
        weights = [np.random.randn(y, x) / np.sqrt(x)
                   for x, y in zip(self.sizes[:-1], self.sizes[1:])]
        self.biases, self.weights = biases, weights

    def large_weight_initializer(self):
        """Weights and biases N(0, 1), from ``np.random.randn`` in the book's order."""
        biases = [np.random.randn(y, 1) for y in self.sizes[1:]]
        weights = [np.random.randn(y, x) for x, y in zip(self.sizes[:-1], self.sizes[1:])]
        self.biases, self.weights = biases, weights

    # ------------------------------------------------------------------ evaluation
    def feedforward(self, a):
        """The network's output for input ``a``.

        ``a`` is an (n_in, 1) column as in the book (returns an (n_out, 1) column), an (n_in,)
        vector (returns (n_out,)) or a batch of rows (n, n_in) (returns rows (n, n_out)).
        """
        n_in = self.sizes[0]
        shape = np.shape(a)
        if shape == (n_in, 1):
            return self._net.feedforward(np.reshape(a, (1, n_in))).reshape(-1, 1)
        if len(shape) in (1, 2) and shape[-1] == n_in:
            return self._net.feedforward(a)
        raise ValueError(f"a must be a column ({n_in}, 1) as in the book, a vector ({n_in},) or "
                         f"rows (n, {n_in}); got shape {shape}")

    def backprop(self, x, y):
        """Gradient of the cost of one example: (nabla_b, nabla_w), lists shaped like the biases
        (n, 1) and the weights (n_out, n_in).

        ``x`` is an (n_in, 1) column (or (n_in,)), ``y`` the desired (n_out, 1) output (or
        (n_out,), or an int label). Computed by ``vgfast.Network.gradient`` on the single row.
        """
        x = self._example(x, self.sizes[0], "x")
        if np.ndim(y) == 0 and isinstance(y, (int, np.integer)):
            y = np.array([y])
        else:
            y = self._example(y, self.sizes[-1], "y")
        g = self._net.gradient(x, y)
        return [b.reshape(-1, 1) for b in g.biases], list(g.weights)

    @staticmethod
    def _example(v, n, name):
        v = np.asarray(v)
        if v.shape not in ((n, 1), (n,)):
            raise ValueError(f"{name} must be one example, a column ({n}, 1) (or a vector "
                             f"({n},)); got shape {v.shape}")
        return v.reshape(1, n)

    def update_mini_batch(self, mini_batch, eta, lmbda, n):
        """One gradient step on a mini-batch (list of (x, y)) with L2 for a training set of n:
        ``w <- (1 - eta lmbda / n) w - eta mean(nabla_w)``, ``b <- b - eta mean(nabla_b)``."""
        X, Y, _ = self._arrays(mini_batch, "mini_batch")
        g = self._net.gradient(X, Y)
        for w, nw in zip(self._net.weights, g.weights):
            w *= 1 - eta * (lmbda / n)
            w -= eta * nw
        for b, nb in zip(self._net.biases, g.biases):
            b -= eta * nb

    def accuracy(self, data, convert=False):
        """The number of examples in ``data`` whose output's argmax is the right digit.

        As in the book, ``convert=False`` is for validation and test data (y an int label) and
        ``convert=True`` for training data (y a one-hot column). With arrays ``(X, Y)`` the
        kind of ``Y`` decides and ``convert`` is ignored.
        """
        X, Y, listed = self._arrays(data, "data")
        if listed:
            self._check_convert(Y, convert, "accuracy", labels_when=False)
        labels = Y if Y.ndim == 1 else np.argmax(Y, axis=1)
        return int(np.count_nonzero(self._net.predict(X) == labels))

    def total_cost(self, data, lmbda, convert=False):
        """Mean cost over ``data`` + (lmbda / 2 len(data)) sum ||w||^2 (the book's total_cost).

        As in the book, ``convert=False`` is for training data (y a vector) and ``convert=True``
        for validation and test data (y an int label, vectorised). With arrays ``(X, Y)`` the
        kind of ``Y`` decides and ``convert`` is ignored.
        """
        X, Y, listed = self._arrays(data, "data")
        if listed:
            self._check_convert(Y, convert, "total_cost", labels_when=True)
        return float(self._net.cost(X, Y, lmbda=lmbda))

    @staticmethod
    def _check_convert(Y, convert, method, labels_when):
        """Refuse data whose y do not match the book's meaning of ``convert`` for ``method``."""
        want_labels = bool(convert) == labels_when
        has_labels = Y.ndim == 1
        if want_labels != has_labels:
            want = "int labels (validation/test data)" if want_labels else \
                "vectors (training data)"
            raise ValueError(f"{method}(data, convert={convert!r}) expects y to be {want}; the "
                             f"data's y are {'int labels' if has_labels else 'vectors'}: pass "
                             f"convert={not convert!r}")

    # ------------------------------------------------------------------ data
    def _arrays(self, data, name):
        """(X (n, n_in) float64 rows, Y int labels (n,) or targets (n, n_out), listed).

        ``data`` is the book's list (or any iterable) of (x, y) pairs, or a pair of arrays
        (X, Y) with examples as rows; ``listed`` says which.
        """
        n_in, n_out = self.sizes[0], self.sizes[-1]
        if isinstance(data, tuple) and len(data) == 2 and isinstance(data[0], np.ndarray):
            X, _ = as_matrix(data[0], f"{name}[0] (X)", np.float64, n_in)
            labels, T = as_targets(data[1], f"{name}[1] (Y)", X.shape[0], n_out, np.float64)
            return X, (labels if labels is not None else T), False
        if data is None:
            raise ValueError(f"{name} is None: pass a list of (x, y) pairs or arrays (X, Y)")
        data = data if isinstance(data, (list, tuple)) else list(data)
        if len(data) == 0:
            raise ValueError(f"{name} is empty: need at least one (x, y) pair")
        try:
            xs, ys = zip(*data)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a list of (x, y) pairs (or arrays (X, Y) with "
                             f"examples as rows)") from None
        bad = next((s for s in map(np.shape, xs) if s not in ((n_in, 1), (n_in,))), None)
        if bad is not None:
            raise ValueError(f"{name}: each x must be a column ({n_in}, 1) (the network's input "
                             f"size); got shape {bad}")
        kinds = {np.asarray(x).dtype.kind for x in xs}
        if kinds - {"f"}:
            raise TypeError(f"{name}: each x must be a floating-point array; got dtype kinds "
                            f"{sorted(kinds)}" + (" (integer pixels? scale them, e.g. x / 256)"
                                                  if kinds & {"i", "u"} else ""))
        X = np.empty((len(xs), n_in))
        for i, x in enumerate(xs):  # straight into float64 rows: no intermediate copy
            X[i] = np.reshape(x, n_in)
        X, _ = as_matrix(X, f"{name} x", np.float64, n_in)  # finiteness
        scalar = [np.ndim(y) == 0 for y in ys]
        if all(scalar):
            Y = np.array(ys)
        elif not any(scalar):
            bad = next((s for s in map(np.shape, ys) if s not in ((n_out, 1), (n_out,))), None)
            if bad is not None:
                raise ValueError(f"{name}: each y must be an int label or a column ({n_out}, 1) "
                                 f"(the network's output size); got shape {bad}")
            Y = np.array([np.ravel(y) for y in ys])
        else:
            raise ValueError(f"{name}: y must be all int labels or all vectors, not a mixture")
        labels, T = as_targets(Y, f"{name} y", X.shape[0], n_out, np.float64)
        return X, (labels if labels is not None else T), True

    # ------------------------------------------------------------------ training
    def SGD(self, training_data, epochs, mini_batch_size, eta, lmbda=0.0, evaluation_data=None,
            monitor_evaluation_cost=False, monitor_evaluation_accuracy=False,
            monitor_training_cost=False, monitor_training_accuracy=False):
        """Mini-batch stochastic gradient descent with L2 regularisation, as the book's.

        Each epoch shuffles with ``random.shuffle`` (Python's ``random`` module, the same draws
        as the book's, and a ``training_data`` list is reordered in place as the book's is), then
        runs the epoch in the engine over the mini-batches of ``mini_batch_size``
        consecutive examples (the last may be smaller), each step
        ``w <- (1 - eta lmbda / n) w - (eta / m) sum nabla_w``, ``b <- b - (eta / m) sum nabla_b``
        with n = len(training_data). The monitored numbers are printed as the book prints them.

        Parameters
        ----------
        training_data : list of (x, y), x (n_in, 1), y (n_out, 1); or arrays (X, Y), rows.
        epochs, mini_batch_size : int.
        eta : float, the learning rate.
        lmbda : float, the L2 regularisation parameter.
        evaluation_data : list of (x, label) or arrays (X, y), or None; used (as in the book)
            only when an evaluation quantity is monitored.
        monitor_* : bool, what to evaluate after each epoch.

        Returns
        -------
        (evaluation_cost, evaluation_accuracy, training_cost, training_accuracy) : lists
            Costs are ``total_cost`` values (floats); accuracies are counts of correct examples.

        Raises
        ------
        vgfast.DivergenceError
            If a step produces a non-finite value (where the book would carry on with NaN); the
            network keeps the parameters of the last finite step.
        """
        X, Y, _ = self._arrays(training_data, "training_data")
        n = X.shape[0]
        epochs = check_number(epochs, "epochs", low=0, integer=True)
        mini_batch_size = check_number(mini_batch_size, "mini_batch_size", low=1, integer=True)
        optimizer = _SGD(lr=check_number(eta, "eta", low=0))
        lmbda = check_number(lmbda, "lmbda", low=0)
        if monitor_evaluation_cost or monitor_evaluation_accuracy:
            if evaluation_data is None:
                raise ValueError("monitor_evaluation_cost/accuracy need evaluation_data")
            Xe, Ye, _ = self._arrays(evaluation_data, "evaluation_data")
            n_data = Xe.shape[0]
        in_place = training_data if isinstance(training_data, list) else None
        items = list(training_data) if in_place is not None else None
        order = list(range(n))
        evaluation_cost, evaluation_accuracy = [], []
        training_cost, training_accuracy = [], []

        def shuffle(epoch, n_rows):
            # the book: random.shuffle(training_data); the same draws permute the row indices,
            # and the engine gathers the rows in that order (no copy of the data)
            random.shuffle(order)
            if in_place is not None:
                in_place[:] = [items[i] for i in order]
            return np.array(order, dtype=np.int64)

        def monitor(j, net, history):
            print("Epoch %s training complete" % j)
            if monitor_training_cost:
                cost = float(net.cost(X, Y, lmbda=lmbda))
                training_cost.append(cost)
                print("Cost on training data: {}".format(cost))
            if monitor_training_accuracy:
                accuracy = self._count(X, Y)
                training_accuracy.append(accuracy)
                print("Accuracy on training data: {} / {}".format(accuracy, n))
            if monitor_evaluation_cost:
                cost = float(net.cost(Xe, Ye, lmbda=lmbda))
                evaluation_cost.append(cost)
                print("Cost on evaluation data: {}".format(cost))
            if monitor_evaluation_accuracy:
                accuracy = self._count(Xe, Ye)
                evaluation_accuracy.append(accuracy)
                print("Accuracy on evaluation data: {} / {}".format(accuracy, n_data))
            print()

        _train(self._net, X, Y, epochs=epochs, batch_size=min(mini_batch_size, n),
               optimizer=optimizer, lmbda=lmbda, monitor=False, shuffle=shuffle, callback=monitor)
        return evaluation_cost, evaluation_accuracy, training_cost, training_accuracy

    def _count(self, X, Y):
        labels = Y if Y.ndim == 1 else np.argmax(Y, axis=1)
        return int(np.count_nonzero(self._net.predict(X) == labels))

    # ------------------------------------------------------------------ persistence
    def save(self, filename):
        """Write the network to ``filename`` in the book's JSON format."""
        data = {"sizes": self.sizes,
                "weights": [w.tolist() for w in self.weights],
                "biases": [b.tolist() for b in self.biases],
                "cost": str(getattr(self.cost, "__name__", type(self.cost).__name__))}
        with open(filename, "w") as f:
            json.dump(data, f)

    def __repr__(self):
        name = getattr(self.cost, "__name__", type(self.cost).__name__)
        return f"network2.Network({self.sizes}, cost={name})"


def load(filename):
    """A Network from a JSON file written by ``save`` (here or in the book's network2).

    As in the book, the network is first built with the default initialiser (which draws from
    ``np.random``), then its parameters are replaced by the file's.
    """
    with open(filename) as f:
        data = json.load(f)
    try:
        sizes, weights, biases, cost_name = (data[k] for k in ("sizes", "weights", "biases",
                                                                  "cost"))
    except (KeyError, TypeError):
        raise ValueError(f"{filename}: not a network2 file (needs the keys sizes, weights, "
                         f"biases, cost)") from None
    cost = getattr(sys.modules[__name__], str(cost_name), None)
    if cost not in (QuadraticCost, CrossEntropyCost):
        raise ValueError(f"{filename}: unknown cost {cost_name!r}; expected 'QuadraticCost' or "
                         f"'CrossEntropyCost'")
    net = Network(sizes, cost=cost)
    net.weights = [np.array(w) for w in weights]
    net.biases = [np.array(b) for b in biases]
    return net


# ------------------------------------------------------------------------------------ helpers


def vectorized_result(j):
    """A (10, 1) column with 1.0 in position j and zeros elsewhere (the book's one-hot)."""
    e = np.zeros((10, 1))
    e[j] = 1.0
    return e


def sigmoid(z):
    """1 / (1 + e^-z), without overflow for large |z| (``scipy.special.expit``)."""
    return expit(z)


def sigmoid_prime(z):
    """Derivative of the sigmoid: sigma(z) (1 - sigma(z))."""
    s = expit(z)
    return s * (1 - s)
