"""Optimisers and learning-rate schedules.

The update equations are torch.optim's, run by fused C loops over the flat parameter buffer;
optimiser state lives in flat buffers of the same layout (``opt.state``). The learning rate (and
the momentum) may be a number or a :class:`Schedule`; train() evaluates the schedule for every
step of an epoch up front and hands the engine the array, so no Python runs per step.
"""
import math
import threading
import weakref

import numpy as np

from ._validate import check_choice, check_number

# ---------------------------------------------------------------------------- schedules


class Schedule:
    """A learning-rate (or momentum) schedule: value(k) for step or epoch index k (0-based).

    per : ``"step"`` (k counts optimiser steps) or ``"epoch"`` (k counts epochs).
    """

    per = "step"

    def __init__(self, per="step"):
        self.per = check_choice(per, {"step", "epoch"}, "per")

    def value(self, k):
        raise NotImplementedError

    def values(self, first_step, n_steps, epoch):
        """Values for steps first_step .. first_step + n_steps - 1 taken in epoch `epoch`."""
        if self.per == "epoch":
            return np.full(n_steps, float(self.value(epoch)))
        k = np.arange(first_step, first_step + n_steps, dtype=np.float64)
        return np.asarray(self.value(k), dtype=np.float64) * np.ones(n_steps)

    def __call__(self, k):
        return self.value(k)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.__dict__.items() if k != "per")
        return f"{type(self).__name__}({args}, per={self.per!r})"


class Constant(Schedule):
    def __init__(self, lr, per="step"):
        super().__init__(per)
        self.lr = check_number(lr, "lr", low=0)

    def value(self, k):
        return self.lr + 0 * np.asarray(k, dtype=np.float64)


class LinearDecay(Schedule):
    """Goodfellow et al. eq. 8.14: lr_k = (1 - k/tau) lr0 + (k/tau) lr_tau for k <= tau, then lr_tau."""

    def __init__(self, lr0, lr_tau, tau, per="step"):
        super().__init__(per)
        self.lr0 = check_number(lr0, "lr0", low=0)
        self.lr_tau = check_number(lr_tau, "lr_tau", low=0)
        self.tau = check_number(tau, "tau", low=1)

    def value(self, k):
        a = np.minimum(np.asarray(k, dtype=np.float64) / self.tau, 1.0)
        return (1 - a) * self.lr0 + a * self.lr_tau


class StepDecay(Schedule):
    """lr0 * gamma ** floor(k / step_size)."""

    def __init__(self, lr0, step_size, gamma=0.1, per="epoch"):
        super().__init__(per)
        self.lr0 = check_number(lr0, "lr0", low=0)
        self.step_size = check_number(step_size, "step_size", low=1, integer=True)
        self.gamma = check_number(gamma, "gamma", low=0)

    def value(self, k):
        return self.lr0 * self.gamma ** np.floor(np.asarray(k, dtype=np.float64) / self.step_size)


class Exponential(Schedule):
    """lr0 * gamma ** k."""

    def __init__(self, lr0, gamma, per="epoch"):
        super().__init__(per)
        self.lr0 = check_number(lr0, "lr0", low=0)
        self.gamma = check_number(gamma, "gamma", low=0)

    def value(self, k):
        return self.lr0 * self.gamma ** np.asarray(k, dtype=np.float64)


class InverseTime(Schedule):
    """lr0 / (1 + decay * k)  (the 1/t schedule)."""

    def __init__(self, lr0, decay, per="step"):
        super().__init__(per)
        self.lr0 = check_number(lr0, "lr0", low=0)
        self.decay = check_number(decay, "decay", low=0)

    def value(self, k):
        return self.lr0 / (1 + self.decay * np.asarray(k, dtype=np.float64))


class Cosine(Schedule):
    """lr_min + (lr0 - lr_min) (1 + cos(pi min(k, T) / T)) / 2."""

    def __init__(self, lr0, T, lr_min=0.0, per="step"):
        super().__init__(per)
        self.lr0 = check_number(lr0, "lr0", low=0)
        self.T = check_number(T, "T", low=1)
        self.lr_min = check_number(lr_min, "lr_min", low=0)

    def value(self, k):
        k = np.minimum(np.asarray(k, dtype=np.float64), self.T)
        return self.lr_min + (self.lr0 - self.lr_min) * (1 + np.cos(math.pi * k / self.T)) / 2


def _schedule(value, name, high=None):
    if isinstance(value, Schedule):
        return value
    return Constant(check_number(value, name, low=0, high=high))


# ---------------------------------------------------------------------------- optimisers


#: optimiser -> weakref to the network its state belongs to (outside the instance, so copies
#: and pickles of an optimiser are not bound)
_OWNERS = weakref.WeakKeyDictionary()
_OWNERS_LOCK = threading.Lock()
#: the largest step or epoch count (the engine's int64)
_MAX_COUNT = 2 ** 63 - 1


class Optimizer:
    """Base: holds hyper-parameters and flat state buffers; the engine does the arithmetic.

    The state buffers belong to one network: ``_bind(net)`` (the call a training loop makes
    before its first step) binds them to ``net``, and binding them to another network raises
    ValueError (two networks sharing momentum buffers, or two threads updating them at once,
    would silently corrupt both runs). ``reset()`` or ``load_state_dict()`` frees them; copies
    and pickles of an optimiser are not bound.

    Attributes
    ----------
    state : dict of name -> flat ndarray (n_params,), same layout as ``net.params``
    t : int, the number of steps taken (Adam's bias correction, AdaGrad's lr decay)
    epoch : int, the number of epochs completed (per-epoch schedules continue from it)
    """

    kind = -1
    state_names = ()
    #: state buffers that hold sums or averages of squares (never negative)
    nonnegative_state = ()

    def __init__(self, lr):
        self.lr = _schedule(lr, "lr")
        self.momentum = None  # a Schedule for SGD's momentum / Adam's beta1, when scheduled
        self.weight_decay = 0.0
        self.state = {}
        self.t = 0
        self.epoch = 0

    def hyper(self):
        """[lr, momentum|rho|beta1, nesterov|beta2, eps, 0, lr_decay(, Adam's eps_hat)] for
        the engine (see vg_opt_step)."""
        raise NotImplementedError

    def _bind(self, net, dtype=None):
        """Create (or check) the state buffers for ``net`` and bind them to it.

        ``_bind(net)`` binds the state to that network (ValueError if it belongs to another);
        ``_bind(n_params, dtype)`` only creates or checks buffers of that size.
        """
        if dtype is None:
            with _OWNERS_LOCK:
                owner = _OWNERS.get(self)
                if owner is not None and owner() is not net:
                    gone = " (since deleted)" if owner() is None else ""
                    raise ValueError(
                        f"optimizer: this {type(self).__name__}'s state (step count, moment "
                        f"buffers) belongs to another Network{gone}; an optimiser serves one "
                        f"network: use a fresh optimizer per network, or call "
                        f"optimizer.reset() to start its state afresh for this one")
                buffers = self._buffers(net.n_params, net.dtype)
                _OWNERS[self] = weakref.ref(net)
            return buffers
        return self._buffers(net, dtype)

    def _buffers(self, n_params, dtype):
        for name in ("s1", "s2"):
            buf = self.state.get(name)
            if buf is None:
                self.state[name] = np.zeros(n_params, dtype)
            elif buf.shape != (n_params,) or buf.dtype != dtype:
                raise ValueError(f"optimizer state has shape {buf.shape} and dtype {buf.dtype}, "
                                 f"but the network has {n_params} parameters of dtype "
                                 f"{np.dtype(dtype).name}: use a fresh optimizer per network")
            elif not (buf.flags.c_contiguous and buf.flags.writeable):
                raise ValueError(f"optimizer state {name!r} must be a writable C-contiguous "
                                 f"array (the engine updates it in place); set state with "
                                 f"optimizer.load_state_dict(), which copies")
        return self.state["s1"], self.state["s2"]

    def reset(self):
        """Forget the state (and the network it belonged to): the next run starts afresh."""
        self.state = {}
        self.t = 0
        self.epoch = 0
        with _OWNERS_LOCK:
            _OWNERS.pop(self, None)

    def state_dict(self):
        """Everything needed to resume: hyper-parameters are in the constructor, state here."""
        return {"t": self.t, "epoch": self.epoch,
                **{k: v.copy() for k, v in self.state.items()}}

    def load_state_dict(self, d):
        """Replace the state with a copy of ``d`` (as :meth:`state_dict` gives), checked: counts
        in [0, 2**63), buffers ``s1``/``s2`` of one length, real and finite, non-negative where
        they hold squares. The optimiser is then free to serve any network of that size."""
        if not isinstance(d, dict) or "t" not in d:
            raise TypeError("d must be a dict as optimizer.state_dict() returns, with 't'")
        counts = {}
        for k in ("t", "epoch"):
            v = d.get(k, 0)
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) or \
                    not 0 <= v <= _MAX_COUNT:
                raise ValueError(f"state {k} must be an integer in [0, 2**63); got {v!r}")
            counts[k] = int(v)
        state = {}
        for k, v in d.items():
            if k in ("t", "epoch"):
                continue
            if k not in ("s1", "s2"):
                raise ValueError(f"state buffer {k!r}: an optimiser's buffers are 's1', 's2'")
            a = np.array(v)
            if a.ndim != 1 or a.dtype not in (np.float64, np.float32):
                raise ValueError(f"state buffer {k!r} must be a 1-D float64 or float32 array; "
                                 f"got shape {a.shape} of {a.dtype}")
            if not np.isfinite(a).all():
                raise ValueError(f"state buffer {k!r} contains NaN or Inf")
            if k in self.nonnegative_state and (a < 0).any():
                torch_name = dict(zip(("s1", "s2"), self.state_names)).get(k, k)
                raise ValueError(f"state buffer {k!r} ({torch_name}) holds squares and cannot "
                                 f"be negative")
            state[k] = a
        if len({(a.shape, a.dtype) for a in state.values()}) > 1:
            raise ValueError("state buffers 's1' and 's2' must have the same length and dtype")
        self.t, self.epoch, self.state = counts["t"], counts["epoch"], state
        with _OWNERS_LOCK:
            _OWNERS.pop(self, None)

    def __getstate__(self):
        """Pickling (sweep workers, multiprocessing): the hyper-parameters and
        :meth:`state_dict`, the same state checkpoints save; buffers are copied."""
        hyper = {k: v for k, v in self.__dict__.items() if k not in ("state", "t", "epoch")}
        return {"hyper": hyper, "state": self.state_dict()}

    def __setstate__(self, d):
        self.__dict__.update(d["hyper"])
        self.load_state_dict(d["state"])

    def named_state(self):
        """State buffers under torch's names (views)."""
        return {n: self.state[s] for n, s in zip(self.state_names, ("s1", "s2")) if s in self.state}

    def __repr__(self):
        def show(v):
            return repr(v.lr) if isinstance(v, Constant) else repr(v)
        keys = [k for k in self.__dict__ if k not in ("state", "t", "epoch", "weight_decay")
                and not (k == "momentum" and self.momentum is None)]
        if self.weight_decay:
            keys.append("weight_decay")
        return f"{type(self).__name__}({', '.join(f'{k}={show(getattr(self, k))}' for k in keys)})"


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum, torch.optim.SGD equations.

    b <- momentum * b + g;  p <- p - lr * (g + momentum * b if nesterov else b).
    ``momentum`` may be a Schedule (a momentum schedule).
    """

    kind = 0
    state_names = ("momentum_buffer",)

    def __init__(self, lr=0.1, momentum=0.0, nesterov=False):
        super().__init__(lr)
        self.momentum = _schedule(momentum, "momentum", high=1)
        if not isinstance(nesterov, bool):
            raise TypeError(f"nesterov must be True or False; got {nesterov!r}")
        if nesterov and isinstance(self.momentum, Constant) and self.momentum.lr == 0:
            raise ValueError("nesterov=True needs momentum > 0")
        self.nesterov = nesterov

    def hyper(self):
        return [0.0, 0.0, float(self.nesterov), 0.0, 0.0, 0.0]


class AdaGrad(Optimizer):
    """torch.optim.Adagrad: s <- s + g^2; p <- p - lr / (1 + (t-1) lr_decay) * g / (sqrt(s) + eps)."""

    kind = 1
    state_names = ("sum",)
    nonnegative_state = ("s1",)

    def __init__(self, lr=0.01, eps=1e-10, lr_decay=0.0):
        super().__init__(lr)
        self.eps = check_number(eps, "eps", low=0, low_open=True)
        self.lr_decay = check_number(lr_decay, "lr_decay", low=0)

    def hyper(self):
        return [0.0, 0.0, 0.0, self.eps, 0.0, self.lr_decay]


class RMSProp(Optimizer):
    """torch.optim.RMSprop (alpha = rho, default 0.99 as torch's):
    s <- rho s + (1-rho) g^2; p <- p - lr g / (sqrt(s) + eps)."""

    kind = 2
    state_names = ("square_avg",)
    nonnegative_state = ("s1",)

    def __init__(self, lr=0.01, rho=0.99, eps=1e-8):
        super().__init__(lr)
        self.rho = check_number(rho, "rho", low=0, high=1, high_open=True)
        self.eps = check_number(eps, "eps", low=0, low_open=True)

    def hyper(self):
        return [0.0, self.rho, 0.0, self.eps, 0.0, 0.0]


class Adam(Optimizer):
    """torch.optim.Adam: bias-corrected first and second moments.

    m <- b1 m + (1-b1) g; v <- b2 v + (1-b2) g^2;
    p <- p - lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps).

    ``eps_hat=True`` adds eps before the bias correction instead (Kingma & Ba 2015, end of
    section 2, "epsilon hat"; scikit-learn's and Keras's Adam):
    p <- p - lr sqrt(1-b2^t)/(1-b1^t) * m / (sqrt(v) + eps).
    The two differ only where sqrt(v) is within a few orders of magnitude of eps while
    1 - b2^t is far from 1 (e.g. weights moved by an L2 term alone in the first thousand steps);
    the eps-hat form also takes one division per element fewer.
    """

    kind = 3
    state_names = ("exp_avg", "exp_avg_sq")
    nonnegative_state = ("s2",)

    def __init__(self, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, eps_hat=False):
        super().__init__(lr)
        self.beta1 = check_number(beta1, "beta1", low=0, high=1, high_open=True)
        self.beta2 = check_number(beta2, "beta2", low=0, high=1, high_open=True)
        self.eps = check_number(eps, "eps", low=0, low_open=True)
        if not isinstance(eps_hat, (bool, np.bool_)):
            raise TypeError(f"eps_hat must be True or False; got {eps_hat!r}")
        self.eps_hat = bool(eps_hat)

    def hyper(self):
        return [0.0, self.beta1, self.beta2, self.eps, 0.0, 0.0, float(self.eps_hat)]


class AdamW(Adam):
    """torch.optim.AdamW: Adam with decoupled weight decay p <- p (1 - lr wd) on weights (not biases)."""

    def __init__(self, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01,
                 eps_hat=False):
        super().__init__(lr, beta1, beta2, eps, eps_hat)
        self.weight_decay = check_number(weight_decay, "weight_decay", low=0)


OPTIMIZERS = {"sgd": SGD, "momentum": lambda lr=0.1: SGD(lr, momentum=0.9),
              "nesterov": lambda lr=0.1: SGD(lr, momentum=0.9, nesterov=True),
              "adagrad": AdaGrad, "rmsprop": RMSProp, "adam": Adam, "adamw": AdamW}


def make(name, lr=None):
    """An optimiser by name (for the command line): sgd, momentum, nesterov, adagrad, rmsprop,
    adam, adamw."""
    check_choice(name, OPTIMIZERS, "optimizer")
    return OPTIMIZERS[name]() if lr is None else OPTIMIZERS[name](lr=lr)
