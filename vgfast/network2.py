"""Drop-in for the book's ``network2`` (Nielsen, *Neural Networks and Deep Learning*, ch. 3 and 5),
running on the vgfast engine, so the chapter code runs unchanged and fast::

    from vgfast import network2
    net = network2.Network([784, 30, 10], cost=network2.CrossEntropyCost)
    net.large_weight_initializer()
    net.SGD(training_data, 30, 10, 0.5, lmbda=5.0, evaluation_data=validation_data,
            monitor_evaluation_accuracy=True)

What the book's reader sees, and what runs
------------------------------------------
The book's observable behaviour is the specification:

- ``net.weights`` and ``net.biases`` are plain lists of numpy arrays, (n_out, n_in) and
  (n_out, 1), as in the book. ``SGD`` and ``update_mini_batch`` rebind them to new arrays, so
  ``before = net.weights`` keeps the old values; changing an array in place, replacing one
  (``net.weights[0] = w``) or the whole list changes the network, as in the book. Behind them,
  the arrays are views of a :class:`vgfast.Network`'s parameter buffer (``net.network``); an
  array put in by the user is copied into a fresh buffer at the network's next use, after which
  the list holds the copy.
- ``SGD`` shuffles with Python's ``random.shuffle`` (the same draws as the book, and a
  ``training_data`` list is reordered in place as the book's is) and runs each epoch in one
  engine call (:func:`vgfast.train`) over the rows in that order: the same update
  ``w <- (1 - eta lmbda / n) w - (eta / m) sum nabla_w``, ``b <- b - (eta / m) sum nabla_b``, the
  same monitored numbers (computed exactly, over the whole data, after each epoch) and the
  same printed lines.
- ``backprop(x, y)`` is the engine's gradient of one example; ``feedforward``, ``accuracy`` and
  ``total_cost`` run on the engine too. While ``SGD`` runs, BLAS is held to one thread (with
  threadpoolctl installed): the book's products are too small for threads to pay.
- A subclass that overrides ``update_mini_batch`` or ``backprop`` (the chapter-3 exercises:
  L1 regularisation, momentum), and a cost class of your own with ``fn(a, y)`` and
  ``delta(z, a, y)``, are honoured: ``SGD`` then runs the book's loop over mini-batches calling
  your methods, ``backprop`` the book's per-example code with your ``cost.delta`` and
  ``total_cost`` your ``cost.fn`` (Python speed, like the book). Overridden ``accuracy`` and
  ``total_cost`` are called for the monitored numbers.
- ``copy.copy``, ``copy.deepcopy`` and ``pickle`` work as on the book's class; a copy trains
  without touching the original. ``save``/``load`` read and write the book's JSON format.

After ``random.seed(s)`` and ``np.random.seed(k)`` a run makes the book's draws, visits the
examples in the book's order and gives the book's numbers to rounding error (1e-12 relative in
the tests). Limits: sigmoid neurons in every layer and float64, as in the book; a step that
makes a value non-finite raises :class:`vgfast.DivergenceError` (the book carries on with NaN)
and leaves the parameters of the last finite step.

Data may be given the book's way (lists of ``(x, y)`` with ``x`` an (n_in, 1) column and ``y`` an
(n_out, 1) one-hot column for training data or an int label for validation and test data) or
as arrays ``(X, Y)`` with examples as rows (``Y`` int labels or one-hot rows).
"""
import json
import math
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

    @staticmethod
    def fn(a, y):
        """The cost of output ``a`` for desired output ``y``."""
        return -np.sum(xlogy(y, a) + xlogy(1 - y, 1 - a))

    @staticmethod
    def delta(z, a, y):
        """dC/dz of the output layer: a - y (sigma'(z) cancels)."""
        return a - y


def _engine_cost(cost):
    """The engine's cost name when ``cost`` computes one of its costs, else None (a cost class
    of the user's: run its ``fn``/``delta`` in Python). Refuses what is not a cost class."""
    fn, delta = getattr(cost, "fn", None), getattr(cost, "delta", None)
    for ours, name in ((QuadraticCost, "quadratic"), (CrossEntropyCost, "cross_entropy")):
        if fn is ours.fn and delta is ours.delta:  # the class or a subclass that keeps both
            return name
    if not (callable(fn) and callable(delta)):
        raise ValueError(f"cost must be a cost class with fn(a, y) and delta(z, a, y), such as "
                         f"network2.QuadraticCost or network2.CrossEntropyCost; got {cost!r}")
    return None


# ------------------------------------------------------------------------------------ network


def _check_sizes(sizes):
    """sizes as a list of ints, refusing non-integral values (2.5) rather than truncating."""
    try:
        raw = list(sizes)
        integral = all(float(s) == int(s) for s in raw)
    except (TypeError, ValueError, OverflowError):
        integral = False
    if not integral or isinstance(sizes, (str, bytes)):
        raise ValueError(f"sizes must be a list of at least two positive integers (input first, "
                         f"e.g. [784, 30, 10]); got {sizes!r}")
    return _EngineNetwork._check_sizes(raw)


class _Binding:
    """Which arrays the engine network holds: the lists and arrays handed out, and the cost."""

    __slots__ = ("net", "weights", "biases", "w_arrays", "b_arrays", "cost", "sizes",
                 "engine_cost")

    def __init__(self, net, owner, engine_cost):
        self.net = net
        self.w_arrays = tuple(net.weights)
        self.b_arrays = tuple(b[:, None] for b in net.biases)  # (n, 1) views, as in the book
        self.weights, self.biases = list(self.w_arrays), list(self.b_arrays)
        self.cost, self.sizes, self.engine_cost = owner.cost, list(owner.sizes), engine_cost

    def holds(self, owner):
        """True when the owner's weights, biases, cost and sizes are still the ones bound."""
        d = owner.__dict__
        ws, bs = d.get("weights"), d.get("biases")
        if ws is not self.weights or bs is not self.biases or d.get("cost") is not self.cost:
            return False
        if len(ws) != len(self.w_arrays) or len(bs) != len(self.b_arrays):
            return False
        for a, b in zip(ws, self.w_arrays):
            if a is not b:
                return False
        for a, b in zip(bs, self.b_arrays):
            if a is not b:
                return False
        return d.get("sizes") == self.sizes


class Network:
    """The book's ``network2.Network`` on the vgfast engine: sigmoid layers, the given cost.

    Parameters
    ----------
    sizes : list of int
        Neurons per layer, input first, e.g. ``[784, 30, 10]``.
    cost : QuadraticCost, CrossEntropyCost, or a class with ``fn(a, y)`` and ``delta(z, a, y)``
        The cost class (the class, as in the book, not an instance).

    Attributes
    ----------
    num_layers : int, ``len(sizes)``.
    sizes : list of int.
    weights : list of (n_out, n_in) float64 arrays, as in the book.
    biases : list of (n_out, 1) float64 arrays, as in the book.
    cost : the cost class.
    network : vgfast.Network, the engine network that holds the current parameters (for
        vgfast.train, vgfast.analysis and the rest of the library). ``weights`` and ``biases``
        are views of its buffer until ``SGD`` or ``update_mini_batch`` rebinds them, as the
        book's methods rebind the lists; ask for ``network`` again after those.
    """

    def __init__(self, sizes, cost=CrossEntropyCost):
        sizes = _check_sizes(sizes)
        _engine_cost(cost)  # refuse what is not a cost class now, not at first use
        self.num_layers = len(sizes)
        self.sizes = sizes
        self.default_weight_initializer()
        self.cost = cost

    # ------------------------------------------------------------------ the engine behind
    def _bound(self):
        """The binding of the engine network to the current weights, biases and cost.

        Fast when nothing was rebound since the last call (a few identity checks); otherwise the
        lists are checked and copied into a new engine network, and the lists are replaced by
        views of it (a new buffer, so arrays held elsewhere never change behind their holder's
        back).
        """
        b = self.__dict__.get("_binding")
        if b is not None and b.holds(self):
            return b
        return self._rebind(b)

    def _rebind(self, old):
        sizes = self.__dict__.get("sizes")
        if old is not None and sizes != old.sizes:
            raise ValueError(f"net.sizes was changed from {old.sizes} to {sizes!r}; the sizes of "
                             f"a network are fixed: build a new network2.Network instead")
        sizes = _check_sizes(sizes)
        cost = self.__dict__.get("cost")
        engine_cost = _engine_cost(cost)
        weights = self._layer_list("weights", [(y, x) for x, y in zip(sizes[:-1], sizes[1:])])
        biases = self._layer_list("biases", [(y, 1) for y in sizes[1:]])
        name = engine_cost or "cross_entropy"  # a cost of the user's: the engine only feeds forward
        if old is not None and old.net.cost_name == name:
            net = old.net.copy()
        else:
            net = _EngineNetwork(sizes, cost=name, seed=0)
        for view, value in zip(net.weights, weights):
            view[...] = value
        for view, value in zip(net.biases, biases):
            view[...] = value[:, 0]
        return self._bind(net, engine_cost)

    def _bind(self, net, engine_cost):
        """Make ``net`` the engine network and the lists views of its parameters."""
        b = _Binding(net, self, engine_cost)
        self.__dict__.update(weights=b.weights, biases=b.biases, _binding=b)
        return b

    def _layer_list(self, name, shapes):
        """net.<name> checked: one finite float array of the right shape per layer."""
        values = self.__dict__.get(name)
        if not isinstance(values, (list, tuple)) or len(values) != len(shapes):
            got = f"{len(values)} entries" if isinstance(values, (list, tuple)) else \
                type(values).__name__
            raise ValueError(f"net.{name} must be a list of {len(shapes)} arrays (one per layer "
                             f"after the input, for sizes {self.sizes}); it has {got}")
        out = []
        for l, (v, shape) in enumerate(zip(values, shapes)):
            try:
                arr = np.asarray(v, dtype=np.float64)
            except (TypeError, ValueError):
                raise TypeError(f"net.{name}[{l}] must be an array of numbers; got "
                                f"{type(v).__name__}") from None
            if arr.shape != shape:
                if shape[1:] == (1,) and arr.shape == shape[:1]:
                    arr = arr.reshape(shape)  # an (n,) bias for an (n, 1) one
                else:
                    raise ValueError(f"net.{name}[{l}] must have shape {shape}; got {arr.shape}")
            if not np.isfinite(arr).all():
                raise ValueError(f"net.{name}[{l}] contains NaN or Inf")
            out.append(arr)
        return out

    @property
    def network(self):
        return self._bound().net

    def _overridden(self, name):
        return getattr(type(self), name) is not getattr(Network, name)

    def _book_loop(self):
        """True when SGD must run the book's per-mini-batch loop: a method of a subclass or a
        cost of the user's must be called as the book calls it."""
        return (self._overridden("update_mini_batch") or self._overridden("backprop")
                or self._bound().engine_cost is None)

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("_binding", None)  # rebuilt at first use
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)

    # ------------------------------------------------------------------ initialisation
    def default_weight_initializer(self):
        """Weights N(0, 1/n_in), biases N(0, 1), from ``np.random.randn``: all the biases first,
        then all the weights, as the book draws them (so ``np.random.seed`` reproduces it)."""
        self.biases = [np.random.randn(y, 1) for y in self.sizes[1:]]
        self.weights = [np.random.randn(y, x) / np.sqrt(x)
                        for x, y in zip(self.sizes[:-1], self.sizes[1:])]

    def large_weight_initializer(self):
        """Weights and biases N(0, 1), from ``np.random.randn`` in the book's order."""
        self.biases = [np.random.randn(y, 1) for y in self.sizes[1:]]
        self.weights = [np.random.randn(y, x) for x, y in zip(self.sizes[:-1], self.sizes[1:])]

    # ------------------------------------------------------------------ evaluation
    def feedforward(self, a):
        """The network's output for input ``a``.

        ``a`` is an (n_in, 1) column as in the book (returns an (n_out, 1) column), an (n_in,)
        vector (returns (n_out,)) or a batch of rows (n, n_in) (returns rows (n, n_out)).
        """
        net = self._bound().net
        n_in = self.sizes[0]
        shape = np.shape(a)
        if shape == (n_in, 1):
            return net.feedforward(np.reshape(a, (1, n_in))).reshape(-1, 1)
        if len(shape) in (1, 2) and shape[-1] == n_in:
            return net.feedforward(a)
        raise ValueError(f"a must be a column ({n_in}, 1) as in the book, a vector ({n_in},) or "
                         f"rows (n, {n_in}); got shape {shape}")

    def backprop(self, x, y):
        """Gradient of the cost of one example: (nabla_b, nabla_w), lists shaped like the biases
        (n, 1) and the weights (n_out, n_in).

        ``x`` is an (n_in, 1) column (or (n_in,)), ``y`` the desired (n_out, 1) output (or
        (n_out,), or an int label). With the book's costs it is the engine's gradient of the
        single row; with a cost of the user's, the book's code calling ``cost.delta``. The
        arrays are new (nabla_b does not keep nabla_w's memory alive).
        """
        b = self._bound()
        n_in, n_out = self.sizes[0], self.sizes[-1]
        X = self._example(x, n_in, "x")
        labels = T = None
        if isinstance(y, (int, np.integer)) and not isinstance(y, bool):
            if not 0 <= y < n_out:
                raise ValueError(f"y: a label must be in 0..{n_out - 1}; got {y}")
            labels = np.array([y], dtype=np.int64)
        else:
            T = self._example(y, n_out, "y")
        if b.engine_cost is None:
            if labels is not None:
                T = np.zeros((1, n_out))
                T[0, labels[0]] = 1.0
            return _book_backprop(self, X.reshape(n_in, 1), T.reshape(n_out, 1))
        net = b.net
        g = np.empty(net.n_params)
        # the engine's one-row gradient: inputs checked above (shape, float64, finite), so the
        # engine is called directly rather than through Network.gradient's general checks
        with net._using() as eng:
            eng.gradient(net.params, X, T, labels, g)
        nabla_w, nabla_b, o = [], [], 0
        for n_a, n_z in zip(self.sizes[:-1], self.sizes[1:]):
            nabla_w.append(g[o:o + n_a * n_z].reshape(n_z, n_a))
            o += n_a * n_z
            nabla_b.append(g[o:o + n_z].reshape(n_z, 1).copy())
            o += n_z
        return nabla_b, nabla_w

    @staticmethod
    def _example(v, n, name):
        """One example as a C-contiguous finite float64 row (1, n)."""
        if type(v) is np.ndarray and v.dtype.kind == "f" and v.shape == (n, 1):
            # the book's column, the common case (float32 in mnist.pkl.gz): one conversion
            row = v.reshape(1, n).astype(np.float64, order="C", copy=False)
            if not math.isfinite(row.sum()) and not np.isfinite(row).all():
                raise ValueError(f"{name} contains NaN or Inf")
            return row
        v = np.asarray(v)
        if v.shape not in ((n, 1), (n,)):
            raise ValueError(f"{name} must be one example, a column ({n}, 1) (or a vector "
                             f"({n},)); got shape {v.shape}")
        if v.dtype.kind != "f":
            raise TypeError(f"{name} must be a floating-point array; got dtype {v.dtype}")
        row = np.ascontiguousarray(v.reshape(1, n), dtype=np.float64)
        # a finite sum means every value is finite (NaN and Inf propagate); the exact check
        # runs only when the sum is not finite (which huge finite values can also cause)
        if not math.isfinite(row.sum()) and not np.isfinite(row).all():
            raise ValueError(f"{name} contains NaN or Inf")
        return row

    def update_mini_batch(self, mini_batch, eta, lmbda, n):
        """One gradient step on a mini-batch (list of (x, y)) with L2 for a training set of n:
        ``w <- (1 - eta lmbda / n) w - (eta / m) sum nabla_w``, ``b <- b - (eta / m) sum nabla_b``.

        As in the book, ``net.weights`` and ``net.biases`` are rebound to new arrays. When
        ``backprop`` is overridden or the cost is the user's, the book's loop over the examples
        calls ``self.backprop``; otherwise the engine takes the mini-batch's gradient at once.
        """
        if self._overridden("backprop") or self._bound().engine_cost is None:
            m = 0
            nabla_b = [np.zeros(b.shape) for b in self.biases]
            nabla_w = [np.zeros(w.shape) for w in self.weights]
            for x, y in mini_batch:
                delta_nabla_b, delta_nabla_w = self.backprop(x, y)
                nabla_b = [nb + dnb for nb, dnb in zip(nabla_b, delta_nabla_b)]
                nabla_w = [nw + dnw for nw, dnw in zip(nabla_w, delta_nabla_w)]
                m += 1
        else:
            X, Y, _ = self._arrays(mini_batch, "mini_batch")
            g = self._bound().net.gradient(X, Y)  # mean over the m rows
            m = X.shape[0]
            nabla_w = [w * m for w in g.weights]
            nabla_b = [b.reshape(-1, 1) * m for b in g.biases]
        self.weights = [(1 - eta * (lmbda / n)) * w - (eta / m) * nw
                        for w, nw in zip(self.weights, nabla_w)]
        self.biases = [b - (eta / m) * nb for b, nb in zip(self.biases, nabla_b)]

    def accuracy(self, data, convert=False):
        """The number of examples in ``data`` whose output's argmax is the right digit.

        As in the book, ``convert=False`` is for validation and test data (y an int label) and
        ``convert=True`` for training data (y a one-hot column). With arrays ``(X, Y)`` the
        kind of ``Y`` decides and ``convert`` is ignored.
        """
        X, Y, listed = self._arrays(data, "data")
        if listed:
            self._check_convert(Y, convert, "accuracy", labels_when=False)
        return self._count(X, Y)

    def total_cost(self, data, lmbda, convert=False):
        """Mean cost over ``data`` + (lmbda / 2 len(data)) sum ||w||^2 (the book's total_cost).

        As in the book, ``convert=False`` is for training data (y a vector) and ``convert=True``
        for validation and test data (y an int label, vectorised). With arrays ``(X, Y)`` the
        kind of ``Y`` decides and ``convert`` is ignored.
        """
        X, Y, listed = self._arrays(data, "data")
        if listed:
            self._check_convert(Y, convert, "total_cost", labels_when=True)
        return self._cost(X, Y, lmbda)

    def _count(self, X, Y):
        labels = Y if Y.ndim == 1 else np.argmax(Y, axis=1)
        return int(np.count_nonzero(self._bound().net.predict(X) == labels))

    def _cost(self, X, Y, lmbda):
        b = self._bound()
        if b.engine_cost is not None:
            return float(b.net.cost(X, Y, lmbda=lmbda))
        # a cost of the user's: the book's sum of cost.fn over the examples
        A = b.net.feedforward(X)
        n, n_out = X.shape[0], self.sizes[-1]
        cost = 0.0
        for i in range(n):
            y = vectorized_result(Y[i], n_out) if Y.ndim == 1 else Y[i].reshape(n_out, 1)
            cost += self.cost.fn(A[i].reshape(n_out, 1), y) / n
        return float(cost + 0.5 * (lmbda / n) * sum(np.linalg.norm(w) ** 2
                                                    for w in self.weights))

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
        fast = self._stack(xs, ys, name)
        if fast is not None:
            return (*fast, True)
        # something is off: look at the examples one by one to say which and what
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

    def _stack(self, xs, ys, name):
        """(X, Y) from well-formed examples in one numpy call each, or None to look closer.

        The common case (every x an (n_in, 1) float column, every y an int label or an
        (n_out, 1) column) costs two ``np.asarray`` calls instead of a Python loop.
        """
        n_in, n_out, n = self.sizes[0], self.sizes[-1], len(xs)
        try:
            xa, ya = np.asarray(xs), np.asarray(ys)
        except (ValueError, TypeError):
            return None
        if xa.dtype.kind != "f" or xa.shape not in ((n, n_in, 1), (n, n_in)):
            return None
        if ya.dtype.kind in "iu" and ya.shape == (n,):
            Y = ya
        elif ya.dtype.kind in "fiu" and ya.shape in ((n, n_out, 1), (n, n_out)):
            Y = ya.reshape(n, n_out)
        else:
            return None
        X, _ = as_matrix(xa.reshape(n, n_in), f"{name} x", np.float64, n_in)  # finiteness
        labels, T = as_targets(Y, f"{name} y", n, n_out, np.float64)
        return X, (labels if labels is not None else T)

    # ------------------------------------------------------------------ training
    def SGD(self, training_data, epochs, mini_batch_size, eta, lmbda=0.0, evaluation_data=None,
            monitor_evaluation_cost=False, monitor_evaluation_accuracy=False,
            monitor_training_cost=False, monitor_training_accuracy=False):
        """Mini-batch stochastic gradient descent with L2 regularisation, as the book's.

        Each epoch shuffles with ``random.shuffle`` (Python's ``random`` module, the same draws
        as the book's, and a ``training_data`` list is reordered in place as the book's is), then
        steps through the mini-batches of ``mini_batch_size`` consecutive examples (the last may
        be smaller), each step ``w <- (1 - eta lmbda / n) w - (eta / m) sum nabla_w``,
        ``b <- b - (eta / m) sum nabla_b`` with n = len(training_data). The epoch runs in one
        engine call, unless a subclass overrides ``update_mini_batch`` or ``backprop`` or the
        cost is the user's: then the book's loop calls those methods. The monitored numbers are
        computed over all of the data after each epoch and printed as the book prints them.
        ``net.weights`` and ``net.biases`` are rebound to new arrays, as in the book.

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
        with _one_blas_thread():  # small products: BLAS threads cost more than they give
            return self._sgd(training_data, epochs, mini_batch_size, eta, lmbda, evaluation_data,
                             monitor_evaluation_cost, monitor_evaluation_accuracy,
                             monitor_training_cost, monitor_training_accuracy)

    def _sgd(self, training_data, epochs, mini_batch_size, eta, lmbda, evaluation_data,
             monitor_evaluation_cost, monitor_evaluation_accuracy, monitor_training_cost,
             monitor_training_accuracy):
        epochs = check_number(epochs, "epochs", low=0, integer=True)
        mini_batch_size = check_number(mini_batch_size, "mini_batch_size", low=1, integer=True)
        eta = check_number(eta, "eta", low=0)
        lmbda = check_number(lmbda, "lmbda", low=0)
        in_place = training_data if isinstance(training_data, list) else None
        if not isinstance(training_data, (list, tuple)) and training_data is not None:
            training_data = list(training_data)  # an iterator is read once, used every epoch
        X, Y, _ = self._arrays(training_data, "training_data")
        n = X.shape[0]
        monitor_evaluation = monitor_evaluation_cost or monitor_evaluation_accuracy
        if monitor_evaluation:
            if evaluation_data is None:
                raise ValueError("monitor_evaluation_cost/accuracy need evaluation_data")
            if not isinstance(evaluation_data, (list, tuple)):
                evaluation_data = list(evaluation_data)
            Xe, Ye, _ = self._arrays(evaluation_data, "evaluation_data")
        evaluation_cost, evaluation_accuracy = [], []
        training_cost, training_accuracy = [], []
        own_cost, own_accuracy = self._overridden("total_cost"), self._overridden("accuracy")

        def monitor(j):
            print("Epoch %s training complete" % j)
            if monitor_training_cost:
                cost = self.total_cost(training_data, lmbda) if own_cost else \
                    self._cost(X, Y, lmbda)
                training_cost.append(cost)
                print("Cost on training data: {}".format(cost))
            if monitor_training_accuracy:
                accuracy = self.accuracy(training_data, convert=True) if own_accuracy else \
                    self._count(X, Y)
                training_accuracy.append(accuracy)
                print("Accuracy on training data: {} / {}".format(accuracy, n))
            if monitor_evaluation_cost:
                cost = self.total_cost(evaluation_data, lmbda, convert=True) if own_cost else \
                    self._cost(Xe, Ye, lmbda)
                evaluation_cost.append(cost)
                print("Cost on evaluation data: {}".format(cost))
            if monitor_evaluation_accuracy:
                accuracy = self.accuracy(evaluation_data) if own_accuracy else \
                    self._count(Xe, Ye)
                evaluation_accuracy.append(accuracy)
                print("Accuracy on evaluation data: {} / {}".format(accuracy, Xe.shape[0]))
            print()

        if self._book_loop():
            self._sgd_book_loop(in_place, X, Y, epochs, mini_batch_size, eta, lmbda, monitor)
        else:
            self._sgd_engine(in_place, X, Y, epochs, mini_batch_size, eta, lmbda, monitor)
        return evaluation_cost, evaluation_accuracy, training_cost, training_accuracy

    def _sgd_engine(self, in_place, X, Y, epochs, mini_batch_size, eta, lmbda, monitor):
        """The epochs in the engine, one call each, on the rows in random.shuffle's order."""
        b = self._bound()
        # the book's SGD rebinds net.weights and net.biases to new arrays: train a copy, so
        # arrays the caller holds (before = net.weights) keep their values
        net = b.net.copy()
        self._bind(net, b.engine_cost)
        n = X.shape[0]
        items = list(in_place) if in_place is not None else None
        order = list(range(n))

        def shuffle(epoch, n_rows):
            # the book: random.shuffle(training_data); the same draws permute the row indices,
            # and the engine gathers the rows in that order (no copy of the data)
            random.shuffle(order)
            if in_place is not None:
                in_place[:] = [items[i] for i in order]
            return np.array(order, dtype=np.int64)

        # monitor=False: the book's numbers are computed exactly, by monitor(), after each epoch
        _train(net, X, Y, epochs=epochs, batch_size=min(mini_batch_size, n),
               optimizer=_SGD(lr=eta), lmbda=lmbda, monitor=False, shuffle=shuffle,
               callback=lambda epoch, net_, history: monitor(epoch))

    def _sgd_book_loop(self, in_place, X, Y, epochs, mini_batch_size, eta, lmbda, monitor):
        """The book's SGD loop, calling self.update_mini_batch (and through it self.backprop)."""
        if in_place is not None:
            data = in_place
        else:
            n_out = self.sizes[-1]
            data = [(x.reshape(-1, 1).copy(),
                     vectorized_result(y, n_out) if Y.ndim == 1 else y.reshape(-1, 1).copy())
                    for x, y in zip(X, Y)]
        n = len(data)
        for j in range(epochs):
            random.shuffle(data)
            mini_batches = [data[k:k + mini_batch_size] for k in range(0, n, mini_batch_size)]
            for mini_batch in mini_batches:
                self.update_mini_batch(mini_batch, eta, lmbda, n)
            monitor(j)

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
    try:
        net._bound()  # check the file's shapes and values now
    except (ValueError, TypeError) as e:
        raise ValueError(f"{filename}: {e}") from None
    return net


# ------------------------------------------------------------------------------------ helpers

def _one_blas_thread():
    """Hold BLAS to one thread while SGD runs (see :func:`vgfast.threads.one_blas_thread`): the
    book's products are small (mini-batches of 10 rows, or 1000 for generate_gradient.py)."""
    from .threads import one_blas_thread
    return one_blas_thread()



def vectorized_result(j, n=10):
    """An (n, 1) column with 1.0 in position j and zeros elsewhere (the book's one-hot)."""
    e = np.zeros((n, 1))
    e[j] = 1.0
    return e


def _book_backprop(net, x, y):
    """The book's backprop of one example (columns x, y) with ``net.cost.delta``, in numpy."""
    nabla_b = [np.zeros(b.shape) for b in net.biases]
    nabla_w = [np.zeros(w.shape) for w in net.weights]
    activation = x
    activations = [x]
    zs = []
    for b, w in zip(net.biases, net.weights):
        z = np.dot(w, activation) + b
        zs.append(z)
        activation = sigmoid(z)
        activations.append(activation)
    delta = net.cost.delta(zs[-1], activations[-1], y)
    nabla_b[-1] = delta
    nabla_w[-1] = np.dot(delta, activations[-2].transpose())
    for l in range(2, net.num_layers):
        delta = np.dot(net.weights[-l + 1].transpose(), delta) * sigmoid_prime(zs[-l])
        nabla_b[-l] = delta
        nabla_w[-l] = np.dot(delta, activations[-l - 1].transpose())
    return nabla_b, nabla_w


def sigmoid(z):
    """1 / (1 + e^-z), without overflow for large |z| (``scipy.special.expit``)."""
    return expit(z)


def sigmoid_prime(z):
    """Derivative of the sigmoid: sigma(z) (1 - sigma(z))."""
    s = expit(z)
    return s * (1 - s)
