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
    [{file, caption}]`` and ``section(results) -> [("p", text) | ("table", head, rows)]``."""

    name: str
    title: str
    compute: object
    figures: object
    section: object


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
    learning". Uses :func:`vgfast.analysis.speed.gradient_norms`; computed from
    ``net.gradient`` when that module is not there (the second array is then None).
    """
    try:
        from ..analysis.speed import gradient_norms
    except ImportError:
        return net.gradient(X, y).norms()[0], None
    g = gradient_norms(net, X, y)
    return g.batch, g.per_example_mean


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

