"""7. cures: a 6-hidden-layer sigmoid net, plain and with ReLU+He, tanh+Glorot, Adam,
clipping, L2 (and batch normalisation when the library has it)."""
import inspect
from functools import partial

import numpy as np

from ..network import Network
from ..optim import SGD, Adam
from ..train import DivergenceError, train
from .book import FULL_MNIST_TRAIN, SOURCES
from .common import (Experiment, _arr, _estimate, _g, _legend_outside, _net, _pm, _pyplot, _save,
                     _seeds, _stats, _subset_tag)
from .config import Config
from .jobs import Batch, run_plan


def _batch_norm_support():
    """Where vgfast accepts ``batch_norm`` ('Network' or 'train'), or None if it does not."""
    for where, fn in (("Network", Network.__init__), ("train", train)):
        if "batch_norm" in inspect.signature(fn).parameters:
            return where
    return None


def _cures(n_train):
    """(name, label, Network kwargs, train kwargs, optimizer factory); plain data that pickles,
    so a job can travel to a Dask worker."""
    lmbda = 5.0 * n_train / FULL_MNIST_TRAIN
    cures = [
        ("plain", "sigmoid, book init, SGD η=0.1", {}, {}, partial(SGD, 0.1)),
        ("relu_he", "ReLU + He init", {"activation": "relu", "init": "he_normal"}, {},
         partial(SGD, 0.1)),
        ("tanh_glorot", "tanh + Glorot init", {"activation": "tanh", "init": "glorot_uniform"},
         {}, partial(SGD, 0.1)),
        ("adam", "Adam (lr 1e-3)", {}, {}, partial(Adam, 1e-3)),
        ("clip", "gradient clipping, global norm ≤ 1", {}, {"clip": 1.0}, partial(SGD, 0.1)),
        ("l2", f"L2, λ = {lmbda:.3g} (book's decay per step)", {}, {"lmbda": lmbda},
         partial(SGD, 0.1)),
    ]
    where = _batch_norm_support()
    if where == "Network":
        cures.append(("batch_norm", "batch normalisation", {"batch_norm": True}, {},
                      partial(SGD, 0.1)))
    elif where == "train":
        cures.append(("batch_norm", "batch normalisation", {}, {"batch_norm": True},
                      partial(SGD, 0.1)))
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
    return run_plan(_cures_plan, cfg)


def _cure_cost(job, n_train, n_validation):
    (name, _, net_kw, _, _), _, epochs, hidden = job
    # tanh's libm call and Adam's update cost more than a plain sigmoid step (measured)
    factor = {"tanh": 1.8}.get(net_kw.get("activation"), 1.4 if name == "adam" else 1.0)
    return factor * _estimate([784] + [30] * hidden + [10], train_rows=epochs * n_train,
                              forward_rows=epochs * n_validation)


def _cures_plan(cfg):
    hidden = 6
    d = cfg.data()
    X, y = cfg.images(3000)
    epochs = 3 if cfg.quick else 30
    seeds = list(range(cfg.n_seeds))
    cures = _cures(len(X))
    jobs = [(c, s, epochs, hidden) for c in cures for s in seeds]
    runs = yield Batch(_cure_run, jobs, (X, y, d.X_validation, d.y_validation), "cures",
                       cost=partial(_cure_cost, n_train=len(X),
                                    n_validation=len(d.X_validation)),
                       after=0.5)
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


EXPERIMENT = Experiment(
    "cures", "7. Cures for a 6-hidden-layer sigmoid network",
    experiment_cures, _figures_cures, _section_cures, plan=_cures_plan)
