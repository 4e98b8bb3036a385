"""2. norms: ||delta^l|| at initialisation over many seeds, and the per-neuron bars."""
from functools import partial

import numpy as np

from .book import BOOK, SOURCES, book_curves
from .common import (Experiment, _estimate, _g, _layer_speeds, _legend_outside, _net, _pm,
                     _pyplot, _save, _stats, _subset_tag)
from .config import Config
from .jobs import Batch, run_plan


def experiment_norms(cfg: Config) -> dict:
    """||delta^l|| of the hidden layers at initialisation, over many initialisations.

    The book (generate_gradient.py): the mean of dC/db over the first 1000 training images,
    right after network2's default initialisation: 0.07, 0.31 for [784,30,30,10] and so on.
    """
    return run_plan(_norms_plan, cfg)


def _norms_run(job, data):
    """||delta^l|| and the mean per-example ||dC_x/db^l|| of the hidden layers, one row per
    seed of the job."""
    hidden, seeds = job
    X, y = data
    norms = np.empty((len(seeds), hidden))
    per_example = np.full((len(seeds), hidden), np.nan)
    for i, seed in enumerate(seeds):
        batch, each = _layer_speeds(_net(hidden, seed=seed), X, y)
        norms[i] = batch[:-1]
        if each is not None:
            per_example[i] = each[:-1]
    return norms, per_example


def _norms_cost(job, n):
    hidden, seeds = job
    # a trace (forward and backward) and the cost (a forward) per initialisation
    return len(seeds) * _estimate([784] + [30] * hidden + [10], train_rows=n,
                                  forward_rows=n)


_SEEDS_PER_JOB = 10


def _norms_plan(cfg):
    X, y = cfg.images(1000)
    n_init = 10 if cfg.quick else 100
    _, book_initial = book_curves()
    out = {"book": {str(k): v for k, v in BOOK["norms"].items()}, "n_images": len(X),
           "images": cfg.images_note(1000), "n_inits": n_init, "data": cfg.data_note(),
           "subset": cfg.is_subset, "book_initial_gradient": book_initial,
           "sources": [SOURCES["book"], SOURCES["book_code"]], "nets": {}}
    jobs = [(hidden, tuple(range(s, min(s + _SEEDS_PER_JOB, n_init))))
            for hidden in (2, 3, 4) for s in range(0, n_init, _SEEDS_PER_JOB)]
    runs = yield Batch(_norms_run, jobs, (X, y), "norms", cost=partial(_norms_cost, n=len(X)),
                       after=0.6)
    for hidden in (2, 3, 4):
        parts = [r for (h, _), r in zip(jobs, runs) if h == hidden]
        norms = np.concatenate([p[0] for p in parts])
        per_example = np.concatenate([p[1] for p in parts])
        grad = _net(hidden, seed=0).gradient(X, y)
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


EXPERIMENT = Experiment(
    "norms", "2. The speed of learning at initialisation, layer by layer",
    experiment_norms, _figures_norms, _section_norms, plan=_norms_plan)
