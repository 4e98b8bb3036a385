"""History: what train() recorded, as numpy arrays; JSON round trip; plots."""
import json

import numpy as np

EPOCH_FIELDS = ("train_cost", "train_accuracy", "validation_cost", "validation_accuracy", "lr")
SCALAR_RECORDS = ("cost", "grad_norm_preclip", "trace_cov", "noise_scale", "norm_test",
                  "inner_test", "ortho_test", "gsnr", "update_size", "distance", "gns")
PER_LAYER = ("grad_norms", "weight_grad_norms", "activation_mean", "activation_std", "saturation",
             "dead_fraction", "update_ratio", "layer_trace_cov", "layer_noise_scale",
             "layer_norm_test", "layer_gsnr")
RECORD_FIELDS = PER_LAYER[:2] + SCALAR_RECORDS + PER_LAYER[2:]
# taken every `probe_every` steps (train()): one entry per probe, at probe_steps
PROBE_SCALARS = ("alpha", "hessian_trace", "hessian_max")
PROBE_FIELDS = ("probe_steps",) + PROBE_SCALARS + ("grad_hist",)
#: log10 |g| edges of grad_hist's inner bins: 48 bins of half a decade from 1e-20 to 1e4. Bin 0
#: holds |g| < 1e-20 (exact zeros included), bins 1..48 ``10**HIST_EDGES[k-1] <= |g| <
#: 10**HIST_EDGES[k]``, bin 49 ``|g| >= 1e4``: HIST_BINS = 50 in all.
HIST_EDGES = np.arange(-20.0, 4.0 + 0.25, 0.5)
HIST_BINS = HIST_EDGES.size + 1


class History:
    """Per-epoch metrics and the recorded statistics of a training run.

    Attributes
    ----------
    train_cost, train_accuracy : ndarray (epochs,)
        Training cost (with the L2/L1 penalty, network2's total_cost) and accuracy (fraction)
        of each epoch. With train()'s default ``monitor="running"`` they are running means:
        the cost and accuracy of each mini-batch, measured as the engine computes them before
        that step's update, averaged over the epoch's rows (as Keras reports training
        metrics; the penalty is taken at the epoch's final parameters). With
        ``monitor="full"`` they are exact, one pass over the whole training set with the
        epoch's final parameters. Empty with ``monitor=False``.
    validation_cost, validation_accuracy : ndarray (epochs,)
        Exact cost and accuracy on the validation set after each epoch (when one is given).
    lr : ndarray (epochs,), the learning rate of each epoch's first step.
    grad_norms : ndarray (records, layers)
        ||dC/db^l|| of the mini-batch mean gradient, the book's "speed of learning" of layer l,
        hidden layers first, the output layer last; averaged over the steps of each record.
    weight_grad_norms : ndarray (records, layers), ||dC/dW^l||_F likewise.
    cost : ndarray (records,), mean mini-batch cost (no penalty), averaged likewise.
    grad_norm_preclip : ndarray (records,), global gradient norm before clipping (when clipping).
    activation_mean, activation_std : ndarray (records, layers), over examples and units of each
        layer's activations a^l (before dropout), the output layer last.
    saturation : ndarray (records, layers), fraction of activations where f' < 0.19 max f'
        (as vgfast.analysis.saturation): sigmoid a < 0.05 or a > 0.95, tanh |a| > 0.9; 0 for
        other activations.
    dead_fraction : ndarray (records, layers), fraction of ReLU units that are 0 for a whole
        mini-batch, averaged over the steps.
    update_ratio : ndarray (records, layers), ||W_new - W_old||_F / ||W_old||_F per step.
    trace_cov, noise_scale, norm_test : ndarray (records,)
        Cockpit's gradient-noise quantities of each step's mini-batch at the parameters before
        its update (g_i: example i's own gradient, no penalty; gbar their mean; m the batch):
        trace_cov = sum_i ||g_i - gbar||^2 / (m - 1), noise_scale = trace_cov / ||gbar||^2
        (McCandlish et al. 2018, B_simple), norm_test = sqrt(trace_cov / (m ||gbar||^2)) (Byrd
        et al. 2012, as Cockpit); NaN for m = 1 (no variance) or gbar = 0. Equal to
        vgfast.analysis.gradient_statistics on that batch. Averaged like the others.
    inner_test, ortho_test : ndarray (records,), with dot_i = g_i . gbar and gg = ||gbar||^2:
        sqrt(sum_i (dot_i - gg)^2 / (m - 1) / m) / gg (Bollapragada et al. 2018) and
        sqrt(sum_i ||g_i - (dot_i / gg) gbar||^2 / (m - 1) / (m gg)), as Cockpit.
    gsnr : ndarray (records,), Cockpit's MeanGSNR: the mean over parameters j of
        gbar_j^2 / (max(sum_i g_ij^2 / m - gbar_j^2, 0) + 1e-5).
    layer_trace_cov, layer_noise_scale, layer_norm_test, layer_gsnr : ndarray (records, layers),
        the same for each layer's parameters alone (are the early layers' gradients mostly
        noise?).
    update_size, distance : ndarray (records,), ||theta_new - theta_old|| of each step and
        ||theta - theta_0|| after it, theta_0 the parameters when train() was called.
    gns : ndarray (records,), the two-batch gradient noise scale of McCandlish et al. (2018,
        app. A.1) with exponential smoothing, after each record's last step: with batch sizes 1
        and m (each example, the mini-batch), per step the unbiased estimates
        |G|^2 ~ (m ||gbar||^2 - S / m) / (m - 1) and tr(Sigma) ~ (S - m ||gbar||^2) / (m - 1)
        (S = sum_i ||g_i||^2) enter moving averages with weight ``gns_beta`` (train()'s
        instrument_options, default 0.99) on the past, and gns = EMA[tr Sigma] / EMA[|G|^2].
        Unlike noise_scale, whose denominator ||gbar||^2 is biased up by tr(Sigma) / m and
        which averages per-step ratios, it smooths numerator and denominator separately. The
        averages start at 0 in each train() call (the ratio needs no bias correction) and carry
        over its epochs and through checkpoint / resume (``gns_state``). NaN until a mini-batch
        of at least 2 rows has been seen (one row has no second batch size). When the
        noise dominates (tr Sigma / m >> |G|^2, e.g. mini-batches of 10 on MNIST) the unbiased
        |G|^2 average can dip below 0 and gns with it: such values say "far more noise than
        signal at this batch size"; smooth longer (gns_beta nearer 1) or use larger batches.
    probe_steps : ndarray (probes,), the optimiser steps taken before each probe: the probes
        (train()'s ``probe_every``) are measured on the mini-batch of step probe_steps + 1 at
        the parameters before its update.
    alpha : ndarray (probes,), Cockpit's normalised step length of that step, on that
        mini-batch (vgfast.analysis.step_alpha): 0 the step reached the minimum of the
        parabola fitted along it, -1 it stayed at the start or the fit is concave, 1 it landed
        on the far side at the start's height.
    hessian_trace : ndarray (probes,), Hutchinson's estimate of the trace of the mini-batch
        cost's Hessian (vgfast.analysis.hessian_trace); hessian_max : its largest eigenvalue by
        Lanczos (vgfast.analysis.hessian_max_eigenvalue). NaN where the Hessian-vector products
        overflowed.
    grad_hist : ndarray (probes, layers, 50), per layer the fractions of the individual gradient
        elements of the mini-batch in each bin of log10 |g| (vgfast.analysis.gradient_histogram;
        bins HIST_EDGES of this module, also vgfast.analysis.probes.HIST_EDGES).
    record_steps : ndarray (records,), the number of optimiser steps taken at each record's end.
    steps_per_epoch : int
    best_epoch : int or None, set by early stopping.
    fused_steps : int, how many of the steps took the engine's fused SGD update (the weight-
        gradient GEMM writing into W); the others took the general path (a diagnostic).

    A History pickles as plain attributes (lists while training, numpy arrays after), so it
    travels to and from sweep workers unchanged; :meth:`to_dict` / :meth:`from_dict` are its
    JSON form (the sweep store's).
    """

    def __init__(self):
        for f in EPOCH_FIELDS + RECORD_FIELDS:
            setattr(self, f, [])
        self.record_steps = []
        self.steps_per_epoch = 0
        self.best_epoch = None
        self.stopped_early = False
        self.fused_steps = 0
        for f in PROBE_FIELDS:
            setattr(self, f, [])
        self.gns_state = [0.0, 0.0]

    def _finish(self, n_layers):
        for f in EPOCH_FIELDS + SCALAR_RECORDS + ("record_steps",):
            setattr(self, f, np.asarray(getattr(self, f), dtype=np.int64 if f == "record_steps"
                                        else np.float64))
        for f in PER_LAYER:
            v = getattr(self, f)
            setattr(self, f, np.asarray(v, np.float64).reshape(-1, n_layers) if len(v)
                    else np.zeros((0, n_layers)))
        self.probe_steps = np.asarray(self.probe_steps, np.int64)
        for f in PROBE_SCALARS:
            setattr(self, f, np.asarray(getattr(self, f), np.float64))
        self.grad_hist = np.asarray(self.grad_hist, np.float64).reshape(-1, n_layers, HIST_BINS)
        return self


    @property
    def epochs(self):
        return len(self.lr)

    def speed_ratio(self):
        """Per record: ||delta^last hidden|| / ||delta^first hidden|| (how much slower layer 1
        learns); see :func:`vgfast.analysis.speed.speed_ratio`."""
        from .analysis.speed import speed_ratio
        return speed_ratio(self)

    def to_dict(self):
        d = {f: np.asarray(getattr(self, f)).tolist() for f in EPOCH_FIELDS + RECORD_FIELDS}
        d.update({f: np.asarray(getattr(self, f)).tolist() for f in PROBE_FIELDS})
        d.update(record_steps=np.asarray(self.record_steps).tolist(),
                 gns_state=[float(x) for x in self.gns_state],
                 steps_per_epoch=self.steps_per_epoch, best_epoch=self.best_epoch,
                 stopped_early=self.stopped_early, fused_steps=int(self.fused_steps))
        return d

    def to_json(self, path=None):
        s = json.dumps(self.to_dict())
        if path is not None:
            with open(path, "w") as f:
                f.write(s)
        return s

    @classmethod
    def from_dict(cls, d):
        h = cls()
        for f in EPOCH_FIELDS + RECORD_FIELDS:
            setattr(h, f, d.get(f, []))
        h.record_steps = d.get("record_steps", [])
        h.steps_per_epoch = d.get("steps_per_epoch", 0)
        h.best_epoch = d.get("best_epoch")
        h.stopped_early = d.get("stopped_early", False)
        h.fused_steps = int(d.get("fused_steps", 0))
        for f in PROBE_FIELDS:
            setattr(h, f, d.get(f, []))
        h.gns_state = [float(x) for x in d.get("gns_state", [0.0, 0.0])]
        widths = [np.shape(d[f])[1] for f in PER_LAYER
                  if np.ndim(d.get(f, [])) == 2 and np.shape(d[f])[0]]
        if np.ndim(d.get("grad_hist", [])) == 3 and np.shape(d["grad_hist"])[0]:
            widths.append(np.shape(d["grad_hist"])[1])
        return h._finish(widths[0] if widths else 1)

    @classmethod
    def from_json(cls, s):
        """From a JSON string or a path to a JSON file."""
        if not s.lstrip().startswith("{"):
            with open(s) as f:
                s = f.read()
        return cls.from_dict(json.loads(s))

    def plot_speed(self, ax=None, title="Speed of learning"):
        """Log-scale ||delta^l|| against record, one line per hidden layer (the book's figure);
        see :func:`vgfast.analysis.speed.plot_speed`."""
        from .analysis.speed import plot_speed
        return plot_speed(self, ax=ax, title=title)

    def __repr__(self):
        parts = [f"epochs={self.epochs}"]
        if len(self.validation_accuracy):
            parts.append(f"validation_accuracy={self.validation_accuracy[-1]:.4f}")
        if len(self.train_cost):
            parts.append(f"train_cost={self.train_cost[-1]:.4g}")
        if len(self.grad_norms):
            parts.append(f"grad_norms={np.asarray(self.grad_norms).shape}")
        return f"History({', '.join(parts)})"
