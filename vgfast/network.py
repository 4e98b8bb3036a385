"""Network: sizes, activations, cost, and the parameters as views of one flat buffer."""
import copy as _copy
import math
import threading
from contextlib import contextmanager

import numpy as np

from . import _archive, _state
from . import init as _init
from ._core import Engine
from ._architecture import (COSTS, HIDDEN, OUTPUT, VALID_PAIRS, architecture, check_sizes,
                            from_spec)
from ._fixed import Fixed, FixedList, Layers, layer_values
from ._validate import as_matrix, as_targets, check_choice, check_number

__all__ = ["Network", "Gradient", "HIDDEN", "OUTPUT", "COSTS", "VALID_PAIRS"]

#: the state format shared by pickling (``__getstate__``) and checkpoints (its "network" spec
#: is a checkpoint header's "network", its arrays the checkpoint's "params" and "bn_running")
STATE_FORMAT = "vgfast-network"
STATE_VERSION = 1
#: the instance attributes that make up a Network (the rest belong to subclasses)
_CORE = frozenset({"_sizes", "_activations", "_output", "_cost_name", "_dtype", "_leaky_slope",
                   "_elu_alpha", "_batch_norm", "_bn_eps", "_bn_momentum", "_num_layers",
                   "_engine", "_params", "_weights", "_biases", "_bn_gamma", "_bn_beta", "_lock",
                   "init_name"})


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
    weights, biases : lists of writable views into ``params``, one per layer;
        ``net.weights[l] = W`` (and ``net.weights = [...]``) copies the values in.
    sizes, activations, output, cost_name, dtype, leaky_slope, elu_alpha, batch_norm, bn_eps,
    bn_momentum, num_layers : the architecture, read-only (the engine is built from it).

    Notes
    -----
    ``copy.copy(net)``, ``copy.deepcopy(net)`` and ``pickle`` give an independent network with
    the same architecture, parameters and batch-norm statistics, which computes and trains
    bitwise as the original. The pickled state is the checkpoint format's network part.
    """

    sizes = Fixed()
    activations = Fixed()
    output = Fixed()
    cost_name = Fixed()
    dtype = Fixed()
    leaky_slope = Fixed()
    elu_alpha = Fixed()
    batch_norm = Fixed()
    bn_eps = Fixed()
    bn_momentum = Fixed()
    num_layers = Fixed()

    def __init__(self, sizes, activation="sigmoid", output="sigmoid", cost="cross_entropy",
                 init="nielsen", dtype="float64", seed=None, *, leaky_slope=0.01, elu_alpha=1.0,
                 bias_init=None, gain=1.0, batch_norm=False, bn_eps=1e-5, bn_momentum=0.1):
        arch = architecture(sizes, activation, output, cost, dtype, leaky_slope, elu_alpha,
                             batch_norm, bn_eps, bn_momentum)
        check_choice(init, _init.WEIGHT_INITS, "init")
        if seed is not None:
            check_number(seed, "seed", low=0, integer=True)
        self._build(**arch)
        self.initialize(init, seed=seed, bias_init=bias_init, gain=gain)

    def _build(self, sizes, activations, output, cost_name, dtype, leaky_slope, elu_alpha,
               batch_norm, bn_eps, bn_momentum, init_name="nielsen"):
        """Set the (validated) architecture, build the engine and zeroed parameter buffers."""
        d = self.__dict__
        d["_sizes"] = FixedList(sizes, "sizes")
        d["_num_layers"] = len(sizes)
        d["_activations"] = FixedList(activations, "activations")
        d["_output"], d["_cost_name"], d["_dtype"] = output, cost_name, dtype
        d["_leaky_slope"], d["_elu_alpha"] = leaky_slope, elu_alpha
        d["_batch_norm"] = FixedList(batch_norm, "batch_norm")
        d["_bn_eps"], d["_bn_momentum"] = bn_eps, bn_momentum
        self.init_name = init_name
        self._lock = threading.Lock()
        self._engine = Engine(self.sizes, [HIDDEN[a] for a in self.activations] +
                              [OUTPUT[self.output]], self._alphas(), COSTS[self.cost_name],
                              self.dtype, [int(b) for b in self.batch_norm] + [0], self.bn_eps,
                              self.bn_momentum)
        self._params = np.zeros(self._engine.n_params, self.dtype)
        ws, bs = self._split(self._params)
        gs, betas = self._split_bn(self._params)
        self._weights = Layers(ws, "weights", self._assign)
        self._biases = Layers(bs, "biases", self._assign)
        self._bn_gamma = Layers(gs, "bn_gamma", self._assign)
        self._bn_beta = Layers(betas, "bn_beta", self._assign)

    # ------------------------------------------------------------------ layout
    _check_sizes = staticmethod(check_sizes)

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

    def _assign(self, pairs):
        """Copy checked values into parameter views, under the lock."""
        with self._using():
            for view, values in pairs:
                view[...] = values

    def _assign_layers(self, layers, values, name, low=None):
        try:
            values = list(values)
        except TypeError:
            raise TypeError(f"net.{name} must be assigned a list of {len(layers)} arrays (one per "
                            f"layer); got {type(values).__name__}") from None
        if len(values) != len(layers):
            raise ValueError(f"net.{name} must be assigned {len(layers)} arrays (one per layer "
                             f"after the input); got {len(values)}")
        pairs = []
        for l, (view, v) in enumerate(zip(layers, values)):
            if view is None:
                if v is not None:
                    raise ValueError(f"net.{name}[{l}]: layer {l} is not batch-normalised; "
                                     f"give None for it")
                continue
            pairs.append((view, layer_values(v, view.shape, self.dtype, f"net.{name}[{l}]",
                                             low)))
        self._assign(pairs)

    @property
    def weights(self):
        """W^l, (n_out, n_in) views of ``params``; ``net.weights[l] = W`` copies W in."""
        return self._weights

    @weights.setter
    def weights(self, values):
        self._assign_layers(self._weights, values, "weights")

    @property
    def biases(self):
        """b^l, (n_out,) views of ``params``; ``net.biases[l] = b`` copies b in."""
        return self._biases

    @biases.setter
    def biases(self, values):
        self._assign_layers(self._biases, values, "biases")

    @property
    def bn_gamma(self):
        """gamma^l per hidden layer (views; None where the layer is not normalised)."""
        return self._bn_gamma

    @bn_gamma.setter
    def bn_gamma(self, values):
        self._assign_layers(self._bn_gamma, values, "bn_gamma")

    @property
    def bn_beta(self):
        """beta^l per hidden layer (views; None where the layer is not normalised)."""
        return self._bn_beta

    @bn_beta.setter
    def bn_beta(self, values):
        self._assign_layers(self._bn_beta, values, "bn_beta")

    @property
    def bn_running_mean(self):
        """Running means of the normalised layers (views of the engine's buffer; None where not
        normalised); ``net.bn_running_mean[l] = m`` copies m in."""
        return self._running(0)

    @bn_running_mean.setter
    def bn_running_mean(self, values):
        self._assign_layers(self._running(0), values, "bn_running_mean")

    @property
    def bn_running_var(self):
        """Running (unbiased) variances of the normalised layers (views; assignment copies,
        values >= 0)."""
        return self._running(1)

    @bn_running_var.setter
    def bn_running_var(self, values):
        self._assign_layers(self._running(1), values, "bn_running_var", low=0.0)

    def _running(self, which):
        out, o, r = [], 0, self._engine.running
        for n_out, on in zip(self.sizes[1:-1], self.batch_norm):
            if on:
                out.append(r[o + which * n_out:o + (which + 1) * n_out])
                o += 2 * n_out
            else:
                out.append(None)
        return Layers(out, ("bn_running_mean", "bn_running_var")[which], self._assign,
                      low=0.0 if which else None)

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
        return self._params.size

    @property
    def L(self):
        """Number of weight layers (hidden layers + 1)."""
        return self.num_layers - 1

    def initialize(self, init="nielsen", seed=None, bias_init=None, gain=1.0):
        """(Re-)draw all parameters with a named initialiser; see :mod:`vgfast.init`.

        The values are drawn in float64, checked to be finite in the network's dtype (a gain or a
        constant bias too large for it is refused, naming the argument), and only then written.
        """
        check_choice(init, _init.WEIGHT_INITS, "init")
        if seed is not None:
            check_number(seed, "seed", low=0, integer=True)
        auto = isinstance(gain, str) and gain == "auto"
        g0 = None if auto else check_number(gain, "gain")
        rng = np.random.default_rng(seed)
        f = _init.WEIGHT_INITS[init]
        how = bias_init if bias_init is not None else _init.DEFAULT_BIAS.get(init, "zeros")
        values = np.zeros(self.n_params)  # float64, cast once checked
        for l, (w, b) in enumerate(zip(*self._split(values))):
            g = g0
            if auto:
                g = (_init.gain(self.activations[l], self.leaky_slope)
                     if l < self.L - 1 else 1.0)
                if init.startswith("he_"):
                    # He's variance 2/n_in already holds relu's gain sqrt(2): auto gives
                    # torch's kaiming init for the layer's activation, std gain(act)/sqrt(n_in)
                    g /= np.sqrt(2.0)
            with np.errstate(over="ignore", invalid="ignore"):
                w[...] = f(rng, w.shape[0], w.shape[1], g)
            b[...] = _init.biases(rng, b.shape[0], how)
        for g_, b_ in zip(*self._split_bn(values)):
            if g_ is not None:
                g_[...] = 1.0
                b_[...] = 0.0
        with np.errstate(over="ignore", invalid="ignore"):
            cast = values.astype(self.dtype)
        if not np.isfinite(cast).all():
            ws, bs = self._split(cast)
            name = np.dtype(self.dtype).name
            for l, (w, b) in enumerate(zip(ws, bs)):
                if not np.isfinite(w).all():
                    raise ValueError(f"gain={gain!r}: the initial weights of layer {l} ({init}) "
                                     f"overflow {name}; use a smaller gain")
                if not np.isfinite(b).all():
                    raise ValueError(f"bias_init={bias_init!r} is too large for {name}: the "
                                     f"initial biases of layer {l} would be Inf")
        with self._using():
            self._params[...] = cast
            for m_, v_ in zip(self.bn_running_mean, self.bn_running_var):
                if m_ is not None:  # the running statistics start again too
                    m_[...] = 0.0
                    v_[...] = 1.0
        self.init_name = init
        return self

    @contextmanager
    def _using(self):
        """Hold the network's lock: one engine call (or write) at a time per network."""
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
        with self._using():
            self._params[...] = flat

    def _alphas(self):
        return [self.leaky_slope if a == "leaky_relu" else self.elu_alpha if a == "elu" else 0.0
                for a in self.activations] + [0.0]

    def __repr__(self):
        acts = set(self.activations)
        act = self.activations[0] if len(acts) == 1 else list(self.activations)
        bn = ", batch_norm=True" if any(self.batch_norm) else ""
        return (f"Network({list(self.sizes)}, activation={act!r}, output={self.output!r}, "
                f"cost={self.cost_name!r}, dtype={np.dtype(self.dtype).name!r}{bn})")

    # ------------------------------------------------------------------ state, copies, pickling
    def _spec(self):
        """The architecture as JSON values: a checkpoint header's ``"network"``."""
        return {"sizes": [int(s) for s in self.sizes], "activations": list(self.activations),
                "output": self.output, "cost": self.cost_name,
                "dtype": np.dtype(self.dtype).name, "leaky_slope": float(self.leaky_slope),
                "elu_alpha": float(self.elu_alpha), "init": self.init_name,
                "batch_norm": [bool(b) for b in self.batch_norm], "bn_eps": float(self.bn_eps),
                "bn_momentum": float(self.bn_momentum), "n_params": int(self.n_params)}

    def _state(self):
        """(spec, params copy, batch-norm running statistics copy), read under the lock."""
        with self._using() as eng:
            return self._spec(), self._params.copy(), np.array(eng.running)

    def __getstate__(self):
        spec, params, running = self._state()
        return {"format": STATE_FORMAT, "format_version": STATE_VERSION, "network": spec,
                "params": params, "bn_running": running,
                "attributes": {k: v for k, v in self.__dict__.items() if k not in _CORE}}

    def __setstate__(self, state):
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise ValueError("not the state of a vgfast.Network")
        if state.get("format_version") != STATE_VERSION:
            raise ValueError(f"Network state format_version {state.get('format_version')!r}; "
                             f"this vgfast reads version {STATE_VERSION}")
        self._restore(state["network"], state["params"], state["bn_running"], "state")
        self.__dict__.update(state.get("attributes", {}))

    @classmethod
    def _from_state(cls, spec, params, running, where="state"):
        """A Network of class ``cls`` from a spec (JSON values, as :meth:`_spec` gives) and its
        arrays; every value is checked (ValueError naming ``where``), nothing is trusted."""
        net = cls.__new__(cls)
        net._restore(spec, params, running, where)
        return net

    def _restore(self, spec, params, running, where):
        arch, init = from_spec(spec, params, running, where)
        self._build(**arch, init_name=init)
        self._params[...] = params
        self._engine.running[...] = running

    def copy(self):
        """An independent network with the same architecture, parameters and batch-norm
        statistics (also ``copy.copy(net)``; subclass attributes are copied shallowly)."""
        spec, params, running = self._state()
        new = type(self)._from_state(spec, params, running)
        new.__dict__.update({k: v for k, v in self.__dict__.items() if k not in _CORE})
        return new

    __copy__ = copy

    def __deepcopy__(self, memo):
        spec, params, running = self._state()
        new = type(self)._from_state(spec, params, running)
        memo[id(self)] = new
        for k, v in self.__dict__.items():
            if k not in _CORE:
                new.__dict__[k] = _copy.deepcopy(v, memo)
        return new

    # ------------------------------------------------------------------ evaluation
    def _X(self, X, name="X", allow_1d=False):
        return as_matrix(X, name, self.dtype, self.sizes[0], allow_1d=allow_1d)

    def _Y(self, Y, n, name="Y"):
        return as_targets(Y, name, n, self.sizes[-1], self.dtype)

    def _overflow(self, what, where=""):
        """The error for a non-finite result from finite parameters and inputs."""
        name = np.dtype(self.dtype).name
        hint = ", or use float64" if name == "float32" else ""
        return FloatingPointError(
            f"{what} is not finite{where}: with these parameters and inputs a value overflowed "
            f"{name} (e.g. a linear or ReLU layer's output beyond "
            f"{float(np.finfo(self.dtype).max):.3g}); nothing is returned rather than Inf or "
            f"NaN. Scale the inputs or parameters down{hint}")

    def _check_rows(self, a, what):
        if not np.isfinite(a).all():
            row = int(np.argmin(np.isfinite(a).all(axis=1)))
            raise self._overflow(what, f" (first at row {row})")

    def feedforward(self, X):
        """Network output for each row of X: (n, n_out); a 1-D input gives a 1-D output.

        Raises FloatingPointError if an output overflows (never returns Inf or NaN)."""
        X, was_1d = self._X(X, allow_1d=True)
        out = self._forward(X)
        return out[0] if was_1d else out

    def _forward(self, X):
        """Outputs for validated rows X."""
        out = np.empty((X.shape[0], self.sizes[-1]), self.dtype)
        with self._using() as eng:
            eng.forward(self.params, X, out)
        self._check_rows(out, "the network's output")
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

        n defaults to the number of rows (network2's total_cost convention). Raises
        FloatingPointError if the cost overflows (never returns Inf or NaN).
        """
        X, _ = self._X(X)
        lab, T = self._Y(Y, X.shape[0])
        lmbda = check_number(lmbda, "lmbda", low=0)
        l1 = check_number(l1, "l1", low=0)
        n = X.shape[0] if n is None else check_number(n, "n", low=1, integer=True)
        with self._using() as eng:
            c = eng.gradient(self.params, X, T, lab, None, cost_only=True,
                             batch_stats=bool(batch_stats))
        if not math.isfinite(c):
            raise self._overflow("the cost")
        with np.errstate(over="ignore"):
            total = c + self._penalty(lmbda, l1, n)
        if not math.isfinite(total):
            raise FloatingPointError(f"the penalty overflows float64 (lmbda={lmbda!r}, "
                                     f"l1={l1!r}, n={n}); nothing is returned rather than Inf")
        return total

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

        Raises
        ------
        FloatingPointError
            The cost or the gradient overflowed (the message names the first layer); no
            Inf or NaN is returned.
        """
        X, _ = self._X(X)
        lab, T = self._Y(Y, X.shape[0])
        g = np.zeros(self.n_params, self.dtype)
        with self._using() as eng:
            c = eng.gradient(self.params, X, T, lab, g, batch_stats=bool(batch_stats))
        if not math.isfinite(c):
            raise self._overflow("the cost")
        if not np.isfinite(g).all():
            grad = Gradient(self, g, c)
            bad = [l for l, (w, b) in enumerate(zip(grad.weights, grad.biases))
                   if not (np.isfinite(w).all() and np.isfinite(b).all())]
            raise self._overflow("the gradient", f" in layer {bad[0]} (W^{bad[0] + 1}, "
                                 f"b^{bad[0] + 1})" if bad else
                                 " in the batch-normalisation parameters")
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

        Raises FloatingPointError if any of them overflowed (naming the quantity and layer).
        """
        X, _ = self._X(X)
        lab = T = None
        if Y is not None:
            lab, T = self._Y(Y, X.shape[0])
        with self._using() as eng:
            zs, acts, deltas = eng.trace(self.params, X, T, lab, batch_stats=bool(batch_stats))
        for name, arrays, first in (("z", zs, 1), ("a", acts, 0), ("delta", deltas or [], 1)):
            for l, a in enumerate(arrays):
                self._check_rows(a, f"{name}^{l + first} (layer {l + first})")
        return zs, acts, deltas

    # ------------------------------------------------------------------ persistence
    def save(self, path, optimizer=None, epoch=None, extra=None):
        """Checkpoint to ``path``, atomically: parameters, architecture, dtype, batch-norm
        statistics, and the optimiser's state when given (see :func:`vgfast.checkpoint.save`;
        read back with :func:`vgfast.load`)."""
        return _archive.write(path, _state.entries(_state.snapshot(self._state(), optimizer,
                                                                    None, epoch, extra)))
