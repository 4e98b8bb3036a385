"""train(): epochs, shuffling, batching, recording, early stopping, progress.

Each epoch is one call into the compiled engine, which loops over the mini-batches without the
GIL (gather rows by the permutation, forward, backward, record, update). Python runs once per
epoch: it draws the permutation, evaluates the learning-rate schedule for the epoch's steps,
and evaluates the network on the validation set (and on the training set when asked).
"""
import sys
import time

import numpy as np

from ._validate import as_matrix, as_targets, check_choice, check_finite_rows, check_number
from .checkpoint import check_path, load_training_state, optimizer_spec, save_training_state
from .history import History
from .optim import SGD, Optimizer
from ._probe import Prober, probe_interval
from ._probe import instrument_options as _options
from . import _core

RECORDABLE = ("grad_norms", "weight_grad_norms", "cost", "grad_norm_preclip", "trace_cov",
              "noise_scale", "norm_test", "inner_test", "ortho_test", "gsnr", "layer_trace_cov",
              "layer_noise_scale", "layer_norm_test", "layer_gsnr", "update_size", "distance",
              "activation_mean",
              "activation_std", "saturation", "dead_fraction", "update_ratio", "gns",
              "grad_hist", "alpha", "hessian_trace", "hessian_max")
PER_LAYER_EXTRA = ("activation_mean", "activation_std", "saturation", "dead_fraction",
                   "update_ratio", "layer_trace_cov", "layer_noise_scale", "layer_norm_test",
                   "layer_gsnr")
# Cockpit's gradient-noise quantities (see vgfast._core.grad_stats and
# vgfast.analysis.gradient_statistics) and the update's size and distance travelled
SCALAR_EXTRA = ("trace_cov", "noise_scale", "norm_test", "inner_test", "ortho_test", "gsnr",
                "update_size", "distance", "gns")
# measured every `probe_every` steps between engine calls (vgfast.analysis.probes)
PROBES = ("grad_hist", "alpha", "hessian_trace", "hessian_max")
# built from per-example gradients or the mini-batch's own cost (refused with dropout/BN)
NOISE_RECORDS = _core.GRAD_STATS + ("gns",) + PROBES

CLIP_MODES = {"norm": 1, "layer_norm": 2, "value": 3}
MONITOR_MODES = ("running", "full")
# The engine's fused SGD update (see vgfast/_core.pyx, epoch()). Tests set this to False to run
# the general path on the same problems and compare the two.
_FUSED = True
# train() compacts X's rows for the sparse first layer (_core.TileRows) when it runs at least
# this many epochs: building them costs about a third of an epoch's scan of X, each epoch then
# saves a little more than that (bench/epochs.py: 3% of a 10-epoch run is the build; at 5 epochs
# it did not pay, at 10-15 it saves up to 7%)
TILES_MIN_EPOCHS = 8


def _monitor_spec(monitor):
    """'running', 'full' or None from train()'s monitor argument."""
    if monitor is True:
        return "full"
    if monitor is False or monitor is None:
        return None
    if isinstance(monitor, str) and monitor in MONITOR_MODES:
        return monitor
    raise ValueError(f"monitor must be 'running' (the mean over the epoch's mini-batches, free), "
                     f"'full' or True (an exact pass over the training set after each epoch) or "
                     f"False; got {monitor!r}")


class DivergenceError(FloatingPointError):
    """Training produced a non-finite value. The network holds the last finite parameters.

    Attributes: epoch (0-based), step (global optimiser step, 1-based, that failed), layer
    (0-based weight layer where it first appeared; -1: the batch-norm gamma/beta), what
    ('gradient', 'cost', 'update' or 'batch-norm running statistics'), history (the History up
    to the last finite step).

    The parameters and the batch-norm running statistics are those after the last finite step
    in every case, and ``optimizer.t`` does not count the failed step. When ``what`` is
    'update' (a finite gradient times the learning rate overflowed), the optimiser's moment
    buffers of the layers already updated hold that step's values: start again with a fresh
    optimiser (or ``optimizer.reset()``) rather than retrying with it.
    """

    def __init__(self, epoch, step, layer, what, history):
        self.epoch, self.step, self.layer, self.what, self.history = epoch, step, layer, what, history
        hint = " Parameters are those after the last finite step."
        where = (f"in layer {layer} (W^{layer + 1}, b^{layer + 1}; 0 is the first weight layer, as "
                 f"in History columns)" if layer >= 0 else
                 "in the batch-normalisation layers (gamma, beta or running statistics)")
        super().__init__(f"non-finite {what} at step {step} (epoch {epoch}) {where}.{hint} Lower "
                         f"the learning rate or clip the gradient.")


class EarlyStopping:
    """Stop when `metric` has not improved by min_delta for `patience` epochs; restore the best.

    metric : 'validation_accuracy' (higher is better), 'validation_cost', 'train_cost' (lower).
    """

    def __init__(self, patience=10, metric="validation_accuracy", min_delta=0.0, restore_best=True):
        self.patience = check_number(patience, "patience", low=1, integer=True)
        self.metric = check_choice(metric, {"validation_accuracy", "validation_cost",
                                            "train_cost", "train_accuracy"}, "metric")
        self.min_delta = check_number(min_delta, "min_delta", low=0)
        if not isinstance(restore_best, (bool, np.bool_)):
            raise TypeError(f"restore_best must be True or False; got {restore_best!r}")
        self.restore_best = bool(restore_best)


def _clip_spec(clip):
    if clip is None:
        return 0, 0.0
    if isinstance(clip, (int, float)) and not isinstance(clip, bool):
        return 1, check_number(clip, "clip", low=0, low_open=True)
    if isinstance(clip, tuple) and len(clip) == 2:
        mode = check_choice(clip[0], CLIP_MODES, "clip mode")
        return CLIP_MODES[mode], check_number(clip[1], "clip threshold", low=0, low_open=True)
    raise ValueError(f"clip must be None, a positive max global norm, or (mode, threshold) with "
                     f"mode in {sorted(CLIP_MODES)}; got {clip!r}")


def _dropout_spec(dropout, L):
    keep = np.ones(L)
    if dropout is None:
        return keep
    if isinstance(dropout, (int, float)) and not isinstance(dropout, bool):
        k_in, k_h = 1.0, dropout
    elif isinstance(dropout, tuple) and len(dropout) == 2:
        k_in, k_h = dropout
    else:
        raise ValueError(f"dropout must be a keep probability for hidden units or (keep_input, "
                         f"keep_hidden); got {dropout!r}")
    keep[0] = check_number(k_in, "dropout keep_input", low=0, high=1, low_open=True)
    keep[1:] = check_number(k_h, "dropout keep_hidden", low=0, high=1, low_open=True)
    return keep


def _schedule_values(schedule, what, t, steps, epoch):
    """The schedule's values for the epoch's steps as the engine reads them: (steps,) float64."""
    v = np.asarray(schedule.values(t, steps, epoch))
    if v.shape != (steps,) or v.dtype.kind not in "fiu":
        raise ValueError(f"the {what} schedule {type(schedule).__name__}.values() must give one "
                         f"real value per step of the epoch, shape ({steps},); got shape "
                         f"{v.shape} and dtype {v.dtype}")
    return np.ascontiguousarray(v, dtype=np.float64)


class _Progress:
    def __init__(self, total, enabled):
        self.total, self.enabled, self.t0 = total, enabled, time.perf_counter()

    def update(self, epoch, text):
        if not self.enabled:
            return
        done = epoch + 1
        bar = "#" * int(30 * done / self.total)
        el = time.perf_counter() - self.t0
        sys.stderr.write(f"\r[{bar:<30}] epoch {done}/{self.total} {text} {el:.1f}s")
        if done == self.total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    def close(self):
        if self.enabled:
            sys.stderr.write("\n")
            sys.stderr.flush()


class _Snapshot:
    """The parameters, batch-norm statistics and optimiser state at the start of train()."""

    def __init__(self, net, optimizer, s1, s2):
        self.net, self.opt, self.s1, self.s2 = net, optimizer, s1, s2
        self.saved = [a.copy() if a is not None else None
                      for a in (net.params, net._engine.running, s1, s2)]
        self.t, self.epoch = optimizer.t, optimizer.epoch

    def restore(self):
        for a, b in zip((self.net.params, self.net._engine.running, self.s1, self.s2), self.saved):
            if a is not None:
                a[...] = b
        self.opt.t, self.opt.epoch = self.t, self.epoch


def train(net, X, Y, epochs=1, batch_size=10, optimizer=None, lmbda=0.0, validation=None,
          record=(), record_every="epoch", seed=None, progress=False, *, l1=0.0, clip=None,
          max_norm=None, dropout=None, early_stopping=None, monitor="running", shuffle=True,
          callback=None, checkpoint=None, checkpoint_every=1, resume=None,
          probe_every="epoch", instrument_options=None, _x_finite=False, _x_tiles=None,
          _callback_private=False):
    """Train `net` in place by mini-batch gradient descent; one engine call per epoch.

    The objective is the mean cost over the mini-batch + (lmbda / 2n) sum ||W||^2 +
    (l1 / n) sum |W| with n = len(X) (network2's convention; biases are never penalised).

    Parameters
    ----------
    net : Network
    X : (n, n_in) float array, examples as rows.
    Y : (n,) integer labels or (n, n_out) targets.
    epochs, batch_size : int. The last mini-batch of an epoch may be smaller.
    optimizer : Optimizer, default ``SGD(lr=0.1)``. Its state persists across calls.
    lmbda, l1 : float >= 0, penalty strengths.
    validation : (X_val, y_val) or None, evaluated after every epoch.
    record : tuple of names (see History for each). Recorded inside the engine's loop, every
        step, averaged over the steps of each record: ``grad_norms``, ``weight_grad_norms``,
        ``cost``, ``grad_norm_preclip``, ``activation_mean``, ``activation_std``,
        ``saturation``, ``dead_fraction``, ``update_ratio``, Cockpit's gradient-noise
        quantities ``trace_cov``, ``noise_scale``, ``norm_test``, ``inner_test``,
        ``ortho_test``, ``gsnr``, ``layer_trace_cov``, ``layer_noise_scale``,
        ``layer_norm_test``, ``layer_gsnr``, the two-batch noise scale ``gns``,
        ``update_size``, ``distance``. Probes, measured every `probe_every` steps on that step's
        mini-batch: ``grad_hist``, ``alpha`` (one more forward/backward after the step),
        ``hessian_trace``, ``hessian_max``.
    record_every : ``"epoch"``, ``"step"`` or an int k: each record is the mean over k steps
        (``"epoch"``: all the steps of the epoch).
    probe_every : ``"epoch"`` (the first step of each epoch) or an int k: the probes are
        taken before every step whose optimiser step count (steps taken so far) is a multiple
        of k. Probes do not change the training: parameters and records are bitwise those of a
        run without them.
    instrument_options : dict or None, any of ``hutchinson_samples`` (Rademacher probes per
        Hessian trace, default 16), ``lanczos_steps`` (per largest eigenvalue, 20), ``seed``
        (of those random vectors, 0; each probe's are drawn from (seed, step)) and ``gns_beta``
        (the weight on the past of the gns moving averages, 0.99).
    seed : int or None, seeds the shuffling and the dropout masks.
    progress : bool, show a progress bar with the current cost and accuracy on stderr.
    clip : None, a max global gradient norm, or (mode, c) with mode ``"norm"`` (global),
        ``"layer_norm"`` (each layer's W and b together) or ``"value"`` (each element to [-c, c]).
    max_norm : float or None, rescale each unit's incoming weights to norm <= max_norm.
    dropout : keep probability of hidden units, or (keep_input, keep_hidden); inverted dropout.
    early_stopping : EarlyStopping or None.
    monitor : ``"running"`` (default), ``"full"`` (or True) or False: what goes into
        ``History.train_cost`` and ``train_accuracy`` after each epoch. ``"running"``: the mean
        over the epoch's mini-batches of the cost and accuracy measured on each mini-batch as
        the engine computes it, before that step's update (as Keras reports training metrics),
        plus the L2/L1 penalty at the epoch's final parameters; free. ``"full"``: an exact pass
        over the whole training set with the epoch's final parameters (network2's
        ``monitor_training_*``), which costs about a third of an epoch. False: neither. The
        validation set, when given, is always evaluated exactly.
    shuffle : bool, draw a new permutation each epoch (else the data's order); or a callable
        ``shuffle(epoch, n)`` returning the epoch's order, a permutation of range(n) (checked).
    callback : callable(epoch, net, history) -> bool or None; returning True stops training.
    checkpoint : path or None. Save the training state there (atomically, see
        :mod:`vgfast.checkpoint`) every `checkpoint_every` epochs, after the last epoch and when
        training stops early: parameters, batch-norm statistics, optimiser state, shuffling RNG,
        dropout counter, History and early-stopping state.
    checkpoint_every : int >= 1, epochs between checkpoints.
    resume : path or None. Continue the run saved by ``checkpoint=``: `net` gets the saved
        parameters, `optimizer` the saved state (default: the saved optimiser), and training
        runs from the saved epoch up to `epochs` in total (`seed` is not used). With the same
        X, Y, batch_size and options, the result is bitwise that of the uninterrupted run.

    Returns
    -------
    History

    Raises
    ------
    DivergenceError
        When a non-finite gradient, cost or update appears; net holds the parameters after the
        last finite step and the error carries the History so far.
    """
    from .network import Network

    if not isinstance(net, Network):
        raise TypeError(f"net must be a vgfast.Network; got {type(net).__name__}")
    # X's NaN/Inf check rides on the engine's row gather (no pass of its own; see _Snapshot)
    X, _ = as_matrix(X, "X", net.dtype, net.sizes[0], check_finite=False)
    n = X.shape[0]
    labels, T = as_targets(Y, "Y", n, net.sizes[-1], net.dtype)
    epochs = check_number(epochs, "epochs", low=0, integer=True)
    batch_size = check_number(batch_size, "batch_size", low=1, integer=True)
    if batch_size > n:
        raise ValueError(f"batch_size ({batch_size}) must be <= the number of training rows ({n})")
    optimizer = SGD(0.1) if optimizer is None and resume is None else optimizer
    if optimizer is not None and not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer must be a vgfast optimizer (SGD, Adam, ...); got "
                        f"{type(optimizer).__name__}")
    lmbda = check_number(lmbda, "lmbda", low=0)
    l1 = check_number(l1, "l1", low=0)
    if isinstance(record, str):
        record = (record,)
    for r in record:
        check_choice(r, RECORDABLE, "record entry")
    if record_every == "epoch":
        every = None
    elif record_every == "step":
        every = 1
    else:
        every = check_number(record_every, "record_every ('epoch', 'step' or steps)", low=1,
                             integer=True)
    clip_mode, clip_c = _clip_spec(clip)
    if "grad_norm_preclip" in record and clip_mode == 0:
        raise ValueError("record 'grad_norm_preclip' needs clip=...")
    opts = _options(instrument_options)
    noise = [r for r in record if r in NOISE_RECORDS]
    if noise and (dropout is not None or any(net.batch_norm)):
        raise ValueError(f"record {noise}: the per-example gradients these are built from are "
                         f"not defined here with dropout (each example's mask) or batch "
                         f"normalisation (batch statistics couple the examples); train without "
                         f"them, or use vgfast.analysis.gradient_statistics on a network without")
    max_norm = 0.0 if max_norm is None else check_number(max_norm, "max_norm", low=0,
                                                          low_open=True)
    keep = _dropout_spec(dropout, net.L)
    if any(net.batch_norm) and (batch_size < 2 or n % batch_size == 1):
        raise ValueError(f"batch_size: batch normalisation needs mini-batches of at least 2 rows; "
                         f"batch_size={batch_size} with n={n} rows leaves a batch of 1")
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable(epoch, net, history) or None; got "
                        f"{type(callback).__name__}")
    if early_stopping is not None and not isinstance(early_stopping, EarlyStopping):
        raise TypeError("early_stopping must be an EarlyStopping or None")
    if validation is not None:
        if not (isinstance(validation, (tuple, list)) and len(validation) == 2):
            raise ValueError("validation must be a pair (X_val, y_val)")
        Xv, _ = as_matrix(validation[0], "validation X", net.dtype, net.sizes[0])
        validation = (Xv, *as_targets(validation[1], "validation y", Xv.shape[0],
                                      net.sizes[-1], net.dtype))
    if early_stopping is not None and early_stopping.metric.startswith("validation") and \
            validation is None:
        raise ValueError(f"early_stopping on {early_stopping.metric} needs validation data")
    monitor = _monitor_spec(monitor)
    if early_stopping is not None and early_stopping.metric.startswith("train") and not monitor:
        raise ValueError(f"early_stopping on {early_stopping.metric} needs monitor='running' or "
                         f"'full'")
    if seed is not None:
        check_number(seed, "seed", low=0, integer=True)
    if checkpoint is not None:
        checkpoint = check_path(checkpoint, "checkpoint")
        checkpoint_every = check_number(checkpoint_every, "checkpoint_every", low=1,
                                        integer=True)
        if optimizer is not None:
            optimizer_spec(optimizer)  # refuse an optimiser that cannot be saved now
    if resume is not None:
        state = load_training_state(resume)
        state.check_compatible(net, n, batch_size)
        optimizer = state.restore(net, optimizer)
        rng, drop_seed, counter = state.generator, state.drop_seed, state.counter
        hist, best, bad_epochs = state.history, state.best, state.bad_epochs
        first = epochs if hist.stopped_early else state.epoch
    else:
        rng = np.random.default_rng(seed)
        drop_seed = int(rng.integers(0, 2 ** 63))
        counter = 0
        hist, best, bad_epochs, first = History(), None, 0, 0
    steps = (n + batch_size - 1) // batch_size
    probes = [r for r in record if r in PROBES]
    probe_k = probe_interval(probe_every, steps)  # checked even when nothing is probed
    prober = Prober(net, probes, probe_k, opts, X, labels, T, hist) if probes else None
    every_k = steps if every is None else min(every, steps)
    n_rec = (steps + every_k - 1) // every_k
    L = net.L
    s1, s2 = optimizer._bind(net)  # an optimiser's state serves one network
    grad = np.zeros(net.n_params, net.dtype)
    hist.steps_per_epoch = steps
    want = set(record)
    prog = _Progress(epochs, progress)
    wd = optimizer.weight_decay
    # X is checked for NaN/Inf by the engine as it gathers each mini-batch (every row once in the
    # first epoch), at no cost of its own. Should it find one, the network and the optimiser are
    # put back as they were when train() was called and the error names the row, as if X had been
    # refused up front.
    # (_x_finite: the caller has checked X, as vgfast.sklearn's estimators do through
    # scikit-learn's validation, and the snapshot is not taken)
    snapshot = _Snapshot(net, optimizer, s1, s2) if epochs > first and not _x_finite else None
    theta0 = net.params.copy() if "distance" in want else None  # theta_0 of 'distance'
    gns_ema = np.array([*hist.gns_state, opts["gns_beta"]], np.float64)  # carried over epochs
    if snapshot is None and not _x_finite and _core.data_bound(X) < 0:
        check_finite_rows(X, "X")
    # When the sparse first layer reads X (mostly zeros, large batches) over many epochs, its
    # rows are compacted once (their nonzero tiles, _core.TileRows) rather than scanned at every
    # step: the same results bit for bit. Not with a callback, which may change X in place between
    # epochs (augmentation): X is then read afresh every epoch. (_x_tiles: built by the caller,
    # for one epoch per call, as vgfast.sklearn's estimators do; X does not change meanwhile.)
    tiles = _x_tiles
    if tiles is None and epochs - first >= TILES_MIN_EPOCHS and callback is None:
        with net._using() as eng:
            tiles = eng.tile_rows(X, batch_size, keep[0], want)
    # W^0's Adam moments, kept transposed by the engine through an epoch (the sparse first
    # layer), stay there from one engine call to the next while nothing between the calls reads
    # the optimiser's state (no callback, or the caller's own that does not: _callback_private;
    # no checkpoint); they go back into the optimiser's state when train() returns or raises
    hold = (callback is None or _callback_private) and checkpoint is None
    try:
        for epoch in range(first, epochs):
            if callable(shuffle):
                perm = np.asarray(shuffle(epoch, n))
                if perm.shape != (n,) or perm.dtype.kind not in "iu" or perm.min() < 0 or \
                        perm.max() >= n or np.bincount(perm, minlength=n).max() != 1:
                    raise ValueError(f"shuffle(epoch, n) must return a permutation of range({n})")
            else:
                perm = rng.permutation(n) if shuffle else np.arange(n)
            perm = perm.astype(np.int64)
            lr = _schedule_values(optimizer.lr, "learning-rate", optimizer.t, steps, optimizer.epoch)
            mom = (_schedule_values(optimizer.momentum, "momentum", optimizer.t, steps,
                                    optimizer.epoch) if optimizer.momentum is not None else None)
            if not np.isfinite(lr).all() or (lr < 0).any():
                raise ValueError("the learning-rate schedule gave a negative or non-finite value")
            if mom is not None and not (np.isfinite(mom).all() and (mom >= 0).all()
                                        and (mom <= 1).all()):
                raise ValueError("the momentum schedule gave a value outside [0, 1]")
            rec_gb = np.zeros((n_rec, L)) if "grad_norms" in want else None
            rec_gw = np.zeros((n_rec, L)) if "weight_grad_norms" in want else None
            rec_c = np.zeros(n_rec) if "cost" in want else None
            rec_p = np.zeros(n_rec) if "grad_norm_preclip" in want else None
            rec_more = {k: np.zeros((n_rec, L)) for k in PER_LAYER_EXTRA if k in want}
            rec_more.update({k: np.zeros(n_rec) for k in SCALAR_EXTRA if k in want})
            if "distance" in want:
                rec_more["theta0"] = theta0
            if "gns" in want:
                rec_more["gns_ema"] = gns_ema
            t_before = optimizer.t
            # the epoch in one engine call, or in segments that end at the probes' steps
            starts = prober.starts(t_before, steps) if prober else []
            cuts = sorted({0, steps, *starts, *([min(a + 1, steps) for a in starts]
                                                if prober is not None and prober.alpha else [])})
            carry = net._engine.record_carry() if len(cuts) > 2 else None
            done = nr = correct = rows = fused = bad_kind = 0
            cost_sum, bad_layer = 0.0, -1
            for a, b in zip(cuts[:-1], cuts[1:]):
                probe = (prober.before(perm[a * batch_size:(a + 1) * batch_size], optimizer.t)
                         if a in starts else None)
                part = lambda v: None if v is None else v[nr:]  # noqa: E731 (records still free)
                with net._using() as eng:
                    (d, optimizer.t, counter, k, bad_kind, bad_layer, c, right, r,
                     f) = eng.train_epoch(
                        net.params, grad, X, T, labels, perm[a * batch_size:b * batch_size],
                        batch_size, optimizer.kind, optimizer.hyper(), wd, lr[a:b],
                        None if mom is None else mom[a:b], s1, s2, optimizer.t, lmbda / n, l1 / n,
                        clip_mode, clip_c, max_norm, keep, drop_seed, counter, every_k,
                        part(rec_gb), part(rec_gw), part(rec_c), part(rec_p),
                        {key: v if key in ("theta0", "gns_ema") else part(v)
                         for key, v in rec_more.items()}, _FUSED, carry, b == steps, tiles,
                        hold)
                # (the engine carries the epoch's cost, right and rows sums across segments)
                done, nr, cost_sum, correct, rows, fused = (done + d, nr + k, c, right, r,
                                                            fused + f)
                if bad_kind:
                    break
                if probe is not None:
                    prober.after(probe)
            hist.fused_steps += fused
            if "gns" in want:
                hist.gns_state = gns_ema[:2].tolist()
            if bad_kind == 5:
                if snapshot is not None:
                    snapshot.restore()
                check_finite_rows(X, "X")
            if not bad_kind:
                optimizer.epoch += 1
            for name, arr in (("grad_norms", rec_gb), ("weight_grad_norms", rec_gw), ("cost", rec_c),
                              ("grad_norm_preclip", rec_p), *rec_more.items()):
                if name in ("theta0", "gns_ema"):
                    continue
                if arr is not None:
                    getattr(hist, name).extend(arr[:nr].tolist())
            hist.record_steps.extend((t_before + np.minimum(np.arange(1, nr + 1) * every_k,
                                                            done)).tolist())
            hist.lr.append(float(lr[0]))
            if bad_kind:
                prog.close()
                hist._finish(L)
                what = {1: "gradient", 2: "cost", 3: "update",
                        4: "batch-norm running statistics"}[bad_kind]
                raise DivergenceError(epoch, t_before + done + 1, bad_layer, what, hist)
            text = ""
            if monitor == "running":
                c = cost_sum / rows + net._penalty(lmbda, l1, n)
                a = correct / rows
                hist.train_cost.append(c)
                hist.train_accuracy.append(a)
                text = f"cost {c:.4f} acc {a:.4f}"
            elif monitor == "full":
                c, a = net._evaluate(X, labels, T, lmbda, l1)
                hist.train_cost.append(c)
                hist.train_accuracy.append(a)
                text = f"cost {c:.4f} acc {a:.4f}"
            if validation is not None:
                Xv, lv, Tv = validation
                vc, va = net._evaluate(Xv, lv, Tv, lmbda, l1, n)
                hist.validation_cost.append(vc)
                hist.validation_accuracy.append(va)
                text += f" val_acc {va:.4f}"
            prog.update(epoch, text)
            if early_stopping is not None:
                series = getattr(hist, early_stopping.metric)
                value = series[-1]
                sign = 1 if early_stopping.metric.endswith("accuracy") else -1
                if best is None or sign * (value - best[0]) > early_stopping.min_delta:
                    best = (value, epoch, net.params.copy(), net._engine.running.copy())
                    bad_epochs = 0
                else:
                    bad_epochs += 1
                if bad_epochs >= early_stopping.patience:
                    hist.stopped_early = True
            stop = hist.stopped_early or (callback is not None and bool(callback(epoch, net, hist)))
            if checkpoint is not None and (stop or epoch + 1 == epochs or
                                           (epoch + 1) % checkpoint_every == 0):
                save_training_state(checkpoint, net, optimizer, rng, drop_seed, counter, epoch + 1,
                                    hist, best=best, bad_epochs=bad_epochs, n_rows=n,
                                    batch_size=batch_size)
            if stop:
                break
    finally:
        with net._using() as eng:
            eng.release_moments()

    if early_stopping is not None and best is not None:
        hist.best_epoch = best[1]
        if early_stopping.restore_best:
            net.params[...] = best[2]
            if len(best) > 3 and best[3] is not None:  # batch-norm statistics of that epoch too
                net._engine.running[...] = best[3]
    if progress and hist.stopped_early:
        prog.close()
    return hist._finish(L)
