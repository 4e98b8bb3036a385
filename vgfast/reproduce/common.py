"""Small helpers every experiment shares: statistics, JSON conversion, number formats, the
networks of the chapter, and saving figures."""
import math
import os
from dataclasses import dataclass

import numpy as np

from ..network import Network


@dataclass(frozen=True)
class Experiment:
    """One experiment: ``compute(cfg) -> dict`` of plain numbers, ``figures(results, out) ->
    [{file, caption}]`` and ``section(results) -> [("p", text) | ("table", head, rows)]``.

    ``plan``, for an experiment that trains networks, is the generator ``compute`` runs: it
    yields its independent jobs (a :class:`~vgfast.reproduce.jobs.Batch`) and returns the
    results, so that :func:`~vgfast.reproduce.run` can run the jobs of every experiment on one
    pool (``compute(cfg)`` is ``run_plan(plan, cfg)``).
    """

    name: str
    title: str
    compute: object
    figures: object
    section: object
    plan: object = None


# Seconds on one core of the reference machine (Xeon, AVX-512, OpenBLAS, one BLAS thread),
# fitted to the runs of `vgfast reproduce`: per multiply-add, per layer and row of a step, and
# per input value read. They only order the jobs (longest first); they change no number.
_SECONDS_PER_MAC = 4e-11
_SECONDS_PER_LAYER_ROW = 4e-7
_SECONDS_PER_INPUT = 3e-9


def _estimate(sizes, train_rows=0, forward_rows=0):
    """Estimated seconds of `train_rows` rows of training (forward, backward, update) and
    `forward_rows` rows of evaluation of a network of these sizes."""
    macs = sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    layers = len(sizes) - 1
    return (train_rows * (3 * macs * _SECONDS_PER_MAC + layers * _SECONDS_PER_LAYER_ROW)
            + forward_rows * (macs * _SECONDS_PER_MAC + sizes[0] * _SECONDS_PER_INPUT
                              + layers * _SECONDS_PER_LAYER_ROW / 3))


def _stats(values):
    """mean, sample sd, 5th/50th/95th percentiles, min, max and the values (None = not finite)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    f = v[np.isfinite(v)]
    out = {"n": int(f.size), "values": v.tolist()}
    if f.size == 0:
        out.update(mean=None, sd=None, p5=None, median=None, p95=None, min=None, max=None)
        return out
    out.update(mean=float(f.mean()), sd=float(f.std(ddof=1)) if f.size > 1 else 0.0,
               p5=float(np.percentile(f, 5)), median=float(np.median(f)),
               p95=float(np.percentile(f, 95)), min=float(f.min()), max=float(f.max()))
    return out


def _geomean(values):
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v) & (v > 0)]
    return float(np.exp(np.mean(np.log(v)))) if v.size else None


def _jsonable(x):
    """numpy -> Python; NaN/Inf -> None (strict JSON)."""
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, (np.bool_, bool)):
        return bool(x)
    if isinstance(x, (np.integer, int)):
        return int(x)
    if isinstance(x, (np.floating, float)):
        x = float(x)
        return x if math.isfinite(x) else None
    return x


def _arr(x):
    """A JSON list (None for missing) as a float array (nan for missing)."""
    return np.array([np.nan if v is None else v for v in np.ravel(np.asarray(x, dtype=object))],
                    dtype=np.float64).reshape(np.shape(x))


def _pm(s, scale=1.0, digits=3):
    """'mean ± sd' of a _stats dict (just the value when there is one)."""
    if s is None or s.get("mean") is None:
        return "n/a"
    if s["n"] == 1:
        return f"{s['mean'] * scale:.{digits}f}"
    return f"{s['mean'] * scale:.{digits}f} ± {s['sd'] * scale:.{digits}f}"


def _seeds(r):
    n = len(r["seeds"])
    return "1 seed" if n == 1 else f"{n} seeds"


def _g(x, digits=3):
    """A number in short general format, 'n/a' when missing."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return f"{x:.{digits}g}"


def _layer_speeds(net, X, y):
    """(||delta^l|| per layer, mean per-example ||dC_x/db^l||), output layer last.

    ||delta^l|| is the norm of the mean gradient over the rows, the book's "speed of
    learning". These are ``batch`` and ``per_example_mean`` of
    :func:`vgfast.analysis.speed.gradient_norms`, computed as it computes them (the same
    numbers bit for bit, for up to its chunk of 8192 rows) from one ``net.trace``, without the
    weight-gradient norms and the cost it also computes (a third of its time, unused here).
    """
    n = X.shape[0]
    if n > 8192:
        from ..analysis.speed import gradient_norms
        g = gradient_norms(net, X, y)
        return g.batch, g.per_example_mean
    _, _, deltas = net.trace(X, y)
    batch, each = [], []
    for d in deltas:
        d = np.asarray(d, np.float64)
        batch.append(np.linalg.norm(d.sum(axis=0) / n))
        each.append(np.sqrt(np.einsum("ij,ij->i", d, d)).sum())
    return np.array(batch), np.array(each) / n


def _net(hidden, width=30, **kw):
    return Network([784] + [width] * hidden + [10], **kw)


def _legend_outside(ax, **kw):
    """A legend to the right of the axes, off the data."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, **kw)


def _pyplot():
    from .._plot import pyplot
    return pyplot()


def _save(fig, out, filename, caption):
    fig.savefig(os.path.join(out, filename), dpi=100, bbox_inches="tight")
    _pyplot().close(fig)
    return {"file": filename, "caption": caption}


def _subset_tag(r):
    """A suffix for figure titles when the numbers come from the bundled subset."""
    return " — bundled 5k subset, not the book's data" if r.get("subset") else ""

