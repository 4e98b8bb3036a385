"""train()'s probes: instruments measured every k steps between engine calls.

The engine runs an epoch in one call; when probes are asked, train() runs it as segments that
end at the probe steps (the engine carries the open record's sums across them, so the
parameters and every per-step record are bitwise those of one call). Before a probe step the
prober measures, on that step's mini-batch at the parameters before its update, the
histograms and curvature asked for; for ``alpha`` the probe step runs alone and the prober
measures the step just taken on the same rows.
"""
import numpy as np

from ._validate import check_number
from .threads import one_blas_thread

OPTIONS = {"hutchinson_samples": 16, "lanczos_steps": 20, "gns_beta": 0.99, "seed": 0}


def instrument_options(options):
    """train()'s instrument_options, checked, with the defaults filled in."""
    if options is None:
        return dict(OPTIONS)
    if not isinstance(options, dict):
        raise TypeError(f"instrument_options must be a dict with keys from {sorted(OPTIONS)}; "
                        f"got {type(options).__name__}")
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ValueError(f"instrument_options: unknown key(s) {unknown}; the keys are "
                         f"{sorted(OPTIONS)}")
    out = dict(OPTIONS, **options)
    for k in ("hutchinson_samples", "lanczos_steps"):
        out[k] = check_number(out[k], f"instrument_options['{k}']", low=1, integer=True)
    out["seed"] = check_number(out["seed"], "instrument_options['seed']", low=0, integer=True)
    out["gns_beta"] = check_number(out["gns_beta"], "instrument_options['gns_beta']", low=0,
                                   high=1, high_open=True)
    return out


def probe_interval(probe_every, steps):
    """Steps between probes from train()'s probe_every ('epoch' or an int >= 1)."""
    if isinstance(probe_every, str) and probe_every == "epoch":
        return steps
    return check_number(probe_every, "probe_every ('epoch' or steps)", low=1, integer=True)


class Prober:
    """Measures the probes asked for and appends them to the History."""

    def __init__(self, net, names, every, options, X, labels, T, hist):
        from .analysis import curvature

        self.net, self.every, self.opt, self.hist = net, every, options, hist
        self.X, self.labels, self.T = X, labels, T
        self.names = set(names)
        self.alpha = "alpha" in self.names
        self.curv = bool(self.names & {"hessian_trace", "hessian_max"})
        if self.curv:
            curvature._check_supported(net)  # an activation without f'' is refused up front

    def starts(self, t_before, steps):
        """The epoch's steps (0-based) whose optimiser step count t_before + s is a multiple of
        the interval."""
        return list(range((-t_before) % self.every, steps, self.every))

    def before(self, rows, t):
        """Measure on the rows of the coming step (t steps taken); returns what after() needs.
        (One BLAS thread: the products here are small; see vgfast.threads.one_blas_thread.)"""
        with one_blas_thread():
            return self._before(rows, t)

    def _before(self, rows, t):
        from .analysis import probes as P
        from .analysis.curvature import HessianOperator

        net, hist = self.net, self.hist
        Xb = self.X[rows]
        if not np.isfinite(Xb).all():
            return None  # the engine refuses these rows next, and train() puts everything back
        Yb = self.labels[rows] if self.labels is not None else self.T[rows]
        rng = np.random.default_rng([self.opt["seed"], t])
        hist.probe_steps.append(int(t))
        if "grad_hist" in self.names:
            try:
                hist.grad_hist.append(P.gradient_histogram(net, Xb, Yb))
            except FloatingPointError:
                hist.grad_hist.append(np.full((net.L, P.HIST_BINS), np.nan))
        if self.curv:
            try:
                op = HessianOperator(net, Xb, Yb)
                tr = P._hutchinson(op, self.opt["hutchinson_samples"], rng).value \
                    if "hessian_trace" in self.names else None
                ev = P._lanczos_max(op, self.opt["lanczos_steps"], rng).value \
                    if "hessian_max" in self.names else None
            except FloatingPointError:
                tr = ev = np.nan
            if "hessian_trace" in self.names:
                hist.hessian_trace.append(tr)
            if "hessian_max" in self.names:
                hist.hessian_max.append(ev)
        return (Xb, Yb, net.params.copy()) if self.alpha else None

    def after(self, state):
        """alpha of the step just taken from the parameters before() saw."""
        from .analysis.probes import _step_alpha

        Xb, Yb, start = state
        try:
            with one_blas_thread():
                a = _step_alpha(self.net, Xb, Yb, start, self.net.params.copy()).alpha
        except FloatingPointError:
            a = np.nan
        self.hist.alpha.append(a)
