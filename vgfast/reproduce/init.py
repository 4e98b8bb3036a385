"""6. init: sigmoid/tanh/ReLU x five initialisers: variance per layer at initialisation
(Glorot & Bengio, He et al., the lecture) and accuracy after a fixed budget."""
import math
from functools import partial

import numpy as np

from ..network import Network
from ..optim import SGD
from ..train import DivergenceError, train
from .book import SOURCES
from .common import (Experiment, _arr, _estimate, _g, _geomean, _legend_outside, _pm, _pyplot,
                     _save, _seeds, _stats, _subset_tag)
from .config import Config
from .jobs import Batch, run_plan


INIT_ACTIVATIONS = ("sigmoid", "tanh", "relu")
INIT_SCHEMES = ("large", "nielsen", "lecun_uniform", "glorot_uniform", "he_normal")
INIT_LABELS = {"large": "N(0,1) ('large')", "nielsen": "book N(0,1/n_in)",
               "lecun_uniform": "LeCun U(±1/√n_in)", "glorot_uniform": "Glorot uniform",
               "he_normal": "He N(0,2/n_in)"}


def _predicted_factor(activation, init, n=100):
    """Per-layer variance factor in the linear regime (the lecture: Var(y) = n Var(w) Var(x));
    ReLU halves it (He et al.). None for sigmoid (not zero-centred)."""
    from ..init import WEIGHT_VARIANCE
    v = n * WEIGHT_VARIANCE[init](n, n)
    return {"tanh": v, "relu": v / 2}.get(activation)


def _init_statistics(net, X, y):
    """Per hidden layer: measured variances at initialisation and, when
    :mod:`vgfast.analysis.variance` is there, the Glorot/He predictions and saturation."""
    try:
        from ..analysis.variance import (layer_statistics, saturation, theory_backward,
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
    return run_plan(_init_plan, cfg)


def _init_cost(job, n_stat, n_train, n_validation):
    activation, _, _, epochs, width, hidden = job
    # tanh's libm call costs about as much as the layer's products here
    factor = 2.0 if activation == "tanh" else 1.0
    return factor * _estimate([784] + [width] * hidden + [10], train_rows=epochs * n_train,
                              forward_rows=3 * n_stat + n_validation)


def _init_plan(cfg):
    width, hidden = 100, 8
    Xs, ys = cfg.images(1000)
    d = cfg.data()
    X, y = cfg.images(1000 if cfg.quick else 3000)
    epochs = 1 if cfg.quick else 3
    seeds = list(range(cfg.n_seeds))
    jobs = [(a, i, s, epochs, width, hidden) for a in INIT_ACTIVATIONS for i in INIT_SCHEMES
            for s in seeds]
    runs = yield Batch(_init_run, jobs, (Xs, ys, X, y, d.X_validation, d.y_validation), "init",
                       cost=partial(_init_cost, n_stat=len(Xs), n_train=len(X),
                                    n_validation=len(d.X_validation)),
                       after=3.0)
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


EXPERIMENT = Experiment(
    "init", "6. Initialisation and activation (the lecture; Glorot & Bengio; He et al.)",
    experiment_init, _figures_init, _section_init, plan=_init_plan)
