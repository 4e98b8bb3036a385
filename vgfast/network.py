"""Network: sizes, activations, cost, and the parameters as views of one flat buffer."""
import threading
from contextlib import contextmanager

import numpy as np

from . import init as _init
from ._core import Engine
from ._validate import as_matrix, as_targets, check_choice, check_number, dtype_of

#: hidden-layer activations and their engine codes
HIDDEN = {"sigmoid": 0, "tanh": 1, "relu": 2, "leaky_relu": 3, "linear": 4, "abs": 6, "elu": 7,
          "softplus": 8}
#: output-layer activations
OUTPUT = {"sigmoid": 0, "softmax": 5, "linear": 4}
COSTS = {"cross_entropy": 0, "log_likelihood": 1, "quadratic": 2}
#: the (output, cost) pairs whose gradient and cost are defined and stable
VALID_PAIRS = {("sigmoid", "cross_entropy"), ("softmax", "log_likelihood"),
               ("sigmoid", "quadratic"), ("softmax", "quadratic"), ("linear", "quadratic")}


class Gradient:
    """The gradient of the mean cost over some rows, in the parameters' flat layout.

    Attributes
    ----------
    flat : ndarray (n_params,)
    weights : list of ndarray (n_out, n_in), views into flat: dC/dW^l
    biases : list of ndarray (n_out,), views into flat: dC/db^l (the book's delta^l, batch mean)
    bn_gamma, bn_beta : lists (one entry per hidden layer, None where not normalised)
    cost : float, the mean cost over the rows (no regularisation)
    """

    def __init__(self, net, flat, cost):
        self.flat = flat
        self.weights, self.biases = net._split(flat)
        self.bn_gamma, self.bn_beta = net._split_bn(flat)
        self.cost = cost

    def norms(self):
        """(||dC/db^l||, ||dC/dW^l||_F) per layer: the book's speed of learning and its W twin."""
        return (np.array([np.linalg.norm(b) for b in self.biases]),
                np.array([np.linalg.norm(w) for w in self.weights]))


class Network:
    """A fully connected feed-forward network trained by the compiled engine.

    Parameters
    ----------
    sizes : sequence of int
        Units per layer, input first, e.g. ``[784, 30, 30, 10]``.
    activation : str or sequence of str
        Hidden-layer activation (one name for all, or one per hidden layer): ``sigmoid``,
        ``tanh``, ``relu``, ``leaky_relu``, ``linear``, ``abs``, ``elu``, ``softplus``.
    output : str
        ``sigmoid``, ``softmax`` or ``linear``.
    cost : str
        ``cross_entropy`` (with sigmoid outputs; the book's CrossEntropyCost),
        ``log_likelihood`` (with softmax) or ``quadratic`` (any output).
    init : str
        Weight initialiser, a name from :mod:`vgfast.init` (default ``nielsen``: weights
        N(0, 1/n_in), biases N(0, 1), network2's default).
    dtype : ``"float64"`` or ``"float32"``
    seed : int or None
        Seed of the initialisation (``numpy.random.default_rng``).
    leaky_slope : float
        Slope of leaky_relu for z < 0 (any finite value).
    elu_alpha : float
        ELU's alpha: f(z) = alpha (e^z - 1) for z <= 0.
    bias_init : str or float, optional
        ``normal``, ``zeros`` or a constant; default ``normal`` for nielsen/large, else zeros.
    gain : float or "auto"
        Multiplies every initial weight; ``"auto"`` uses :func:`vgfast.init.gain` of the hidden
        activation (and 1 for the output layer).
    batch_norm : bool or sequence of bool
        Batch-normalise the pre-activations of every hidden layer (or of those marked):
        z -> gamma (z - mean) / sqrt(var + eps) + beta (Ioffe & Szegedy 2015), with batch
        statistics in training and running averages (torch's momentum 0.1, unbiased variance)
        for evaluation. gamma starts at 1, beta at 0; both are learnt, never penalised.
    bn_eps, bn_momentum : float

    Attributes
    ----------
    params : ndarray (n_params,)
        All parameters, layer by layer W^l (row-major) then b^l.
    weights, biases : lists of writable views into ``params``.
    """

    def __init__(self, sizes, activation="sigmoid", output="sigmoid", cost="cross_entropy",
                 init="nielsen", dtype="float64", seed=None, *, leaky_slope=0.01, elu_alpha=1.0,
                 bias_init=None, gain=1.0, batch_norm=False, bn_eps=1e-5, bn_momentum=0.1):
        sizes = self._check_sizes(sizes)
        L = len(sizes) - 1
        if isinstance(activation, str):
            activations = [activation] * (L - 1)
        else:
            try:
                activations = list(activation)
            except TypeError:
                raise TypeError(f"activation must be a name or one name per hidden layer; got "
                                f"{activation!r}") from None
            if len(activations) != L - 1:
                raise ValueError(f"activation must be one name or one per hidden layer "
                                 f"({L - 1}); got {len(activations)} names")
        for a in activations:
            check_choice(a, HIDDEN, "activation")
        check_choice(output, OUTPUT, "output")
        check_choice(cost, COSTS, "cost")
        if (output, cost) not in VALID_PAIRS:
            hint = " (for softmax use cost='log_likelihood')" if output == "softmax" else ""
            raise ValueError(f"cost={cost!r} does not go with output={output!r}{hint}; valid "
                             f"(output, cost) pairs: {sorted(VALID_PAIRS)}")
        check_choice(init, _init.WEIGHT_INITS, "init")
        self.leaky_slope = check_number(leaky_slope, "leaky_slope")
        self.elu_alpha = check_number(elu_alpha, "elu_alpha", low=0)
        if seed is not None:
            check_number(seed, "seed", low=0, integer=True)
        self.sizes = sizes
        self.num_layers = len(sizes)
        self.activations = activations
        self.output = output
        self.cost_name = cost
        self.init_name = init
        self.dtype = dtype_of(dtype)
        if isinstance(batch_norm, bool):
            bn = [batch_norm] * (L - 1)
        else:
            bn = list(batch_norm)
            if len(bn) != L - 1 or not all(isinstance(b, bool) for b in bn):
                raise ValueError(f"batch_norm must be True/False or one bool per hidden layer "
                                 f"({L - 1}); got {batch_norm!r}")
        self.batch_norm = bn
        self.bn_eps = check_number(bn_eps, "bn_eps", low=0, low_open=True)
        self.bn_momentum = check_number(bn_momentum, "bn_momentum", low=0, high=1)
        self._engine = self._new_engine()
        self._params = np.zeros(self._engine.n_params, self.dtype)
        self.weights, self.biases = self._split(self._params)
        self.bn_gamma, self.bn_beta = self._split_bn(self.params)
        self._lock = threading.Lock()
        self.initialize(init, seed=seed, bias_init=bias_init, gain=gain)

    # ------------------------------------------------------------------ layout
    @staticmethod
    def _check_sizes(sizes):
        try:
            raw = list(sizes)
            sizes = [int(s) for s in raw]
            ok = all(float(s) == float(t) and not isinstance(t, (str, bytes, bool, np.bool_))
                     for s, t in zip(sizes, raw))
        except (TypeError, ValueError):
            ok = False
        if not ok or len(sizes) < 2 or min(sizes) < 1:
            raise ValueError(f"sizes must be a sequence of at least two positive integers (input "
                             f"first, e.g. [784, 30, 10]); got {sizes!r}")
        if max(sizes) > 2 ** 24:
            raise ValueError(f"sizes: a layer of {max(sizes)} units is larger than supported "
                             f"(2**24)")
        return sizes

    def _split(self, flat):
        ws, bs, o = [], [], 0
        for n_in, n_out in zip(self.sizes[:-1], self.sizes[1:]):
            ws.append(flat[o:o + n_in * n_out].reshape(n_out, n_in))
            o += n_in * n_out
            bs.append(flat[o:o + n_out])
            o += n_out
        return ws, bs

    def _split_bn(self, flat):
        """gamma, beta views per hidden layer (None where the layer is not normalised); they
        follow all the W, b in the flat buffer, layer by layer gamma then beta."""
        gs, bs = [], []
        o = sum(a * b + b for a, b in zip(self.sizes[:-1], self.sizes[1:]))
        for n_out, on in zip(self.sizes[1:-1], self.batch_norm):
            if on:
                gs.append(flat[o:o + n_out])
                bs.append(flat[o + n_out:o + 2 * n_out])
                o += 2 * n_out
            else:
                gs.append(None)
                bs.append(None)
        return gs, bs

    def _new_engine(self):
        return Engine(self.sizes, self._engine_codes(), self._alphas(), COSTS[self.cost_name],
                      self.dtype, [int(b) for b in self.batch_norm] + [0], self.bn_eps,
                      self.bn_momentum)

    @property
    def bn_running_mean(self):
        """Running means of the normalised layers (views; None where not normalised)."""
        return self._running(0)

    @property
    def bn_running_var(self):
        """Running (unbiased) variances of the normalised layers (views)."""
        return self._running(1)

    def _running(self, which):
        out, o, r = [], 0, self._engine.running
        for n_out, on in zip(self.sizes[1:-1], self.batch_norm):
            if on:
                out.append(r[o + which * n_out:o + (which + 1) * n_out])
                o += 2 * n_out
            else:
                out.append(None)
        return out

    @property
    def params(self):
        """All parameters as one flat buffer (n_params,): W^l (row-major) then b^l, layer by layer,
        then gamma^l, beta^l of batch-normalised layers. ``net.weights``/``net.biases`` are views
        of it; assigning ``net.params = values`` copies the values in (the buffer stays)."""
        return self._params

    @params.setter
    def params(self, values):
        self.set_params(values)

    @property
    def n_params(self):
        return self.params.size

    @property
    def L(self):
        """Number of weight layers (hidden layers + 1)."""
        return self.num_layers - 1

    def initialize(self, init="nielsen", seed=None, bias_init=None, gain=1.0):
        """(Re-)draw all parameters with a named initialiser; see :mod:`vgfast.init`."""
        check_choice(init, _init.WEIGHT_INITS, "init")
        rng = np.random.default_rng(seed)
        f = _init.WEIGHT_INITS[init]
        how = bias_init if bias_init is not None else _init.DEFAULT_BIAS.get(init, "zeros")
        for l, (w, b) in enumerate(zip(self.weights, self.biases)):
            if gain == "auto":
                g = (_init.gain(self.activations[l], self.leaky_slope)
                     if l < self.L - 1 else 1.0)
                if init.startswith("he_"):
                    # He's variance 2/n_in already holds relu's gain sqrt(2): auto gives
                    # torch's kaiming init for the layer's activation, std gain(act)/sqrt(n_in)
                    g /= np.sqrt(2.0)
            else:
                g = check_number(gain, "gain")
            w[...] = f(rng, w.shape[0], w.shape[1], g)
            b[...] = _init.biases(rng, b.shape[0], how)
        for g_, b_ in zip(self.bn_gamma, self.bn_beta):
            if g_ is not None:
                g_[...] = 1.0
                b_[...] = 0.0
        for m_, v_ in zip(self.bn_running_mean, self.bn_running_var):
            if m_ is not None:  # the running statistics start again too
                m_[...] = 0.0
                v_[...] = 1.0
        self.init_name = init
        return self

    @contextmanager
    def _using(self):
        """Hold the network's lock: one engine call at a time per network."""
        if not self._lock.acquire(blocking=False):
            raise RuntimeError("this Network is already in use by another thread; a Network "
                               "(its workspace) serves one call at a time. Use net.copy() per "
                               "thread.")
        try:
            yield self._engine
        finally:
            self._lock.release()

    def set_params(self, flat):
        """Copy a flat parameter vector (n_params,) into the network."""
        flat = np.asarray(flat)
        if flat.dtype.kind not in "fiu":
            raise TypeError(f"flat must be real-valued; got dtype {flat.dtype}")
        if flat.shape != (self.n_params,):
            raise ValueError(f"flat must have shape ({self.n_params},); got {flat.shape}")
        with np.errstate(over="ignore"):
            flat = flat.astype(self.dtype)  # checked after the cast: 1e39 is Inf in float32
        if not np.isfinite(flat).all():
            raise ValueError(f"flat contains NaN or Inf (in {np.dtype(self.dtype).name})")
        self._params[...] = flat

    def copy(self):
        """An independent network with the same architecture and parameters."""
        new = object.__new__(Network)
        new.__dict__.update({k: v for k, v in self.__dict__.items()
                             if k not in ("_params", "weights", "biases", "bn_gamma", "bn_beta",
                                          "_engine", "_lock")})
        new._engine = new._new_engine()
        new._engine.running[...] = self._engine.running
        new._params = self._params.copy()
        new.weights, new.biases = new._split(new._params)
        new.bn_gamma, new.bn_beta = new._split_bn(new._params)
        new._lock = threading.Lock()
        return new

    def _engine_codes(self):
        return [HIDDEN[a] for a in self.activations] + [OUTPUT[self.output]]

    def _alphas(self):
        return [self.leaky_slope if a == "leaky_relu" else self.elu_alpha if a == "elu" else 0.0
                for a in self.activations] + [0.0]

    def __repr__(self):
        acts = set(self.activations)
        act = self.activations[0] if len(acts) == 1 else self.activations
        bn = ", batch_norm=True" if any(self.batch_norm) else ""
        return (f"Network({self.sizes}, activation={act!r}, output={self.output!r}, "
                f"cost={self.cost_name!r}, dtype={np.dtype(self.dtype).name!r}{bn})")

    # ------------------------------------------------------------------ evaluation
    def _X(self, X, name="X", allow_1d=False):
        return as_matrix(X, name, self.dtype, self.sizes[0], allow_1d=allow_1d)

    def _Y(self, Y, n, name="Y"):
        return as_targets(Y, name, n, self.sizes[-1], self.dtype)

    def feedforward(self, X):
        """Network output for each row of X: (n, n_out); a 1-D input gives a 1-D output."""
        X, was_1d = self._X(X, allow_1d=True)
        out = self._forward(X)
        return out[0] if was_1d else out

    def _forward(self, X):
        """Outputs for validated rows X."""
        out = np.empty((X.shape[0], self.sizes[-1]), self.dtype)
        with self._using() as eng:
            eng.forward(self.params, X, out)
        return out

    def predict(self, X):
        """Class labels: argmax of the output for each row."""
        return np.argmax(self.feedforward(X), axis=-1)

    def accuracy(self, X, labels):
        """Fraction of rows whose argmax output equals the label (labels or one-hot rows)."""
        X, _ = self._X(X)
        lab, T = self._Y(labels, X.shape[0], "labels")
        if lab is None:
            lab = np.argmax(T, axis=1)
        return float(np.mean(np.argmax(self._forward(X), axis=1) == lab))

    def _penalty(self, lmbda, l1, n):
        pen = 0.0
        if lmbda:
            pen += 0.5 * (lmbda / n) * sum(float(np.sum(w.astype(np.float64) ** 2))
                                           for w in self.weights)
        if l1:
            pen += (l1 / n) * sum(float(np.sum(np.abs(w))) for w in self.weights)
        return pen

    def _evaluate(self, X, lab, T, lmbda=0.0, l1=0.0, n=None):
        """(cost with penalty, accuracy) of validated arrays: one engine pass, no copies."""
        out = np.empty((X.shape[0], self.sizes[-1]), self.dtype)
        with self._using() as eng:
            c = eng.gradient(self.params, X, T, lab, None, cost_only=True, out=out)
        labels = lab if lab is not None else np.argmax(T, axis=1)
        acc = float(np.mean(np.argmax(out, axis=1) == labels))
        return c + self._penalty(lmbda, l1, X.shape[0] if n is None else n), acc

    def cost(self, X, Y, lmbda=0.0, l1=0.0, n=None, batch_stats=False):
        """Mean cost over the rows + (lmbda / 2n) sum ||W||^2 + (l1 / n) sum |W|.

        n defaults to the number of rows (network2's total_cost convention).
        """
        X, _ = self._X(X)
        lab, T = self._Y(Y, X.shape[0])
        lmbda = check_number(lmbda, "lmbda", low=0)
        l1 = check_number(l1, "l1", low=0)
        n = X.shape[0] if n is None else check_number(n, "n", low=1, integer=True)
        with self._using() as eng:
            c = eng.gradient(self.params, X, T, lab, None, cost_only=True,
                             batch_stats=bool(batch_stats))
        return c + self._penalty(lmbda, l1, n)

    def gradient(self, X, Y, batch_stats=False):
        """Exact gradient of the mean (unregularised) cost over the rows of X.

        For batch-normalised networks the normalisation uses the running statistics (the
        evaluation-mode function), or with ``batch_stats=True`` the statistics of the rows of X
        taken as one batch (the training-mode function).

        Returns
        -------
        Gradient
            ``.weights[l]``, ``.biases[l]`` (same shapes as the parameters), ``.flat``,
            ``.cost`` (the mean cost).
        """
        X, _ = self._X(X)
        lab, T = self._Y(Y, X.shape[0])
        g = np.zeros(self.n_params, self.dtype)
        with self._using() as eng:
            c = eng.gradient(self.params, X, T, lab, g, batch_stats=bool(batch_stats))
        return Gradient(self, g, c)

    def trace(self, X, Y=None, batch_stats=False):
        """Everything the forward (and backward) pass computes, per example.

        Returns
        -------
        zs : list of (n, n_l) pre-activations z^l, l = 1..L
        activations : list of (n, n_l) activations a^l, l = 0..L (a^0 = X)
        deltas : list of (n, n_l) per-example dC/dz^l (= dC/db^l), or None without Y

        With batch normalisation, zs[l] is the normalised gamma * xhat + beta (the activation's
        input) while deltas[l] is dC/db^l, taken before the normalisation.
        """
        X, _ = self._X(X)
        lab = T = None
        if Y is not None:
            lab, T = self._Y(Y, X.shape[0])
        with self._using() as eng:
            return eng.trace(self.params, X, T, lab, batch_stats=bool(batch_stats))

    # ------------------------------------------------------------------ persistence
    def save(self, path, optimizer=None, epoch=None, extra=None):
        """Checkpoint to ``path``, atomically: parameters, architecture, dtype, batch-norm
        statistics, and the optimiser's state when given (see :func:`vgfast.checkpoint.save`;
        read back with :func:`vgfast.load`)."""
        from .checkpoint import save
        return save(self, path, optimizer=optimizer, epoch=epoch, extra=extra)
