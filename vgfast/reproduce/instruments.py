"""9. instruments: Cockpit's gradient tests recorded inside the engine's loop while the
chapter's deepest network ([784, 30, 30, 30, 30, 10]) trains: are the early layers' gradients
mostly noise?"""
import numpy as np

from ..network import Network
from .book import SOURCES
from .common import Experiment, _estimate, _g, _save, _subset_tag
from .config import Config
from .jobs import Batch, run_plan

RECORD = ("cost", "grad_norms", "norm_test", "inner_test", "ortho_test", "noise_scale", "gns",
          "gsnr", "layer_gsnr", "layer_noise_scale", "update_size", "distance")
PROBES = ("alpha", "hessian_max", "hessian_trace", "grad_hist")


def _median_log10(hist):
    """The median of log10 |g| over the elements with |g| >= 1e-20 (bins 1.. of
    vgfast.analysis.probes; bin 0 holds the exact zeros, e.g. the weights from MNIST's blank
    border pixels), interpolated linearly within its half-decade; None if it is in the top
    bin or there is no such element."""
    from ..analysis.probes import HIST_EDGES
    h = np.asarray(hist[1:], dtype=np.float64)
    if h.sum() <= 0:
        return None
    c = np.cumsum(h / h.sum())
    k = int(np.searchsorted(c, 0.5))
    if k >= len(HIST_EDGES) - 1:
        return None
    below = c[k - 1] if k else 0.0
    return float(HIST_EDGES[k] + 0.5 * (0.5 - below) / (c[k] - below))


def experiment_instruments(cfg: Config) -> dict:
    """Train the book's 4-hidden-layer sigmoid network (its initialisation, η = 0.1,
    mini-batches of 10, λ = 5) and record, averaged over every 50 steps, the instruments of
    vgfast.analysis.INSTRUMENTS (each computed on the step's mini-batch before its update), and
    every 100 steps probe the curvature (largest Hessian eigenvalue by Lanczos, trace by
    Hutchinson), Cockpit's alpha and the per-layer histograms of gradient elements."""
    return run_plan(_instruments_plan, cfg)


def _instruments_run(job, data):
    from .. import SGD, train
    epochs, seed = job
    X, y = data
    net = Network([784, 30, 30, 30, 30, 10], seed=seed)
    h = train(net, X, y, epochs=epochs, batch_size=10, optimizer=SGD(0.1),
              lmbda=5.0 * len(X) / 50_000, record=RECORD + PROBES, record_every=50, seed=seed,
              probe_every=100)
    return {name: np.asarray(getattr(h, name))
            for name in ("record_steps", "probe_steps") + RECORD + PROBES}


def _instruments_plan(cfg):
    n = 1000 if cfg.quick else 10_000
    epochs = 1 if cfg.quick else 3
    X, y = cfg.images(n)
    # the per-example statistics cost about as much again as the step, the probes (every 100
    # steps, ~25 ms each) about as much once more
    cost = _estimate([784, 30, 30, 30, 30, 10], train_rows=3 * epochs * len(X))
    [h] = yield Batch(_instruments_run, [(epochs, 0)], (X, y), "instruments",
                      cost=lambda job: cost, after=2.0)
    out = {"rows": int(len(X)), "epochs": epochs, "batch": 10, "every": 50,
           "subset": cfg.is_subset, "data": cfg.images_note(n) if cfg.is_subset else
           f"the first {len(X)} training images",
           "record_steps": h["record_steps"].tolist(), "probe_steps": h["probe_steps"].tolist(),
           "probe_every": 100}
    for name in RECORD + PROBES:
        out[name] = h[name].tolist()
    g = h["layer_gsnr"]
    ns = h["layer_noise_scale"]
    out["gsnr_first_last_start"] = [float(g[0, 0]), float(g[0, -2])]
    out["gsnr_first_last_end"] = [float(g[-1, 0]), float(g[-1, -2])]
    out["noise_first_last_end"] = [float(ns[-1, 0]), float(ns[-1, -2])]
    out["median_log10_grad_last"] = [_median_log10(hl) for hl in h["grad_hist"][-1]]
    out["zero_fraction_last"] = [float(hl[0]) for hl in h["grad_hist"][-1]]
    return out


def _figures_instruments(r, out):
    from types import SimpleNamespace

    from ..analysis import plot_instruments
    h = SimpleNamespace(record_steps=np.asarray(r["record_steps"]),
                        probe_steps=np.asarray(r["probe_steps"]),
                        **{k: np.asarray(r[k], dtype=np.float64) for k in RECORD + PROBES})
    fig = plot_instruments(h, title="[784, 30, 30, 30, 30, 10], mini-batch 10, η = 0.1"
                                    + _subset_tag(r))
    return [_save(fig, out, "instruments.png",
                  "Cockpit-style instruments recorded inside the engine's loop, averages over "
                  "50 steps: cost, ‖δˡ‖, the three gradient tests, the noise scale (per step, "
                  "and the two-batch estimate with moving averages, whose |G|² estimate at "
                  "mini-batches of 10 is so noisy that it dips below 0: the gaps on the log "
                  "scale), the mean GSNR and the "
                  "noise scale of each layer, step size and distance travelled; every 100 "
                  "steps: Cockpit's α, the Hessian's largest eigenvalue and trace, and each "
                  "layer's histogram of individual gradient elements.")]


def _section_instruments(r):
    g = np.asarray(r["layer_gsnr"], dtype=np.float64)
    ns = np.asarray(r["layer_noise_scale"], dtype=np.float64)
    rows = [[f"{l + 1}" + (" (output)" if l == g.shape[1] - 1 else ""), _g(g[0, l]),
             _g(g[-1, l]), _g(ns[0, l]), _g(ns[-1, l])] for l in range(g.shape[1])]
    return [
        ("p", f"The chapter's [784, 30, 30, 30, 30, 10] sigmoid network trains on {r['data']} "
              f"({r['epochs']} epoch(s), mini-batches of {r['batch']}, η = 0.1, λ scaled to "
              f"the book's per-example weight decay). Every step, inside the compiled loop, "
              f"the engine records Cockpit's instruments of that mini-batch (per-example "
              f"gradients in closed form from the deltas and activations; they equal "
              f"vgfast.analysis.gradient_statistics): the norm, inner-product and "
              f"orthogonality tests, the noise scale tr Σ / ‖ḡ‖² (McCandlish et al. 2018) and "
              f"the mean gradient signal-to-noise ratio (GSNR), also per layer. Compared with: "
              f"{SOURCES['book']} (the vanishing gradient) and Cockpit's definitions "
              f"(Schneider, Dangel & Hennig 2021)."),
        ("table", ["layer", "mean GSNR, first record", "mean GSNR, last record",
                   "noise scale, first record", "noise scale, last record"], rows),
        ("p", f"Expected: the early layers learn slowest (‖δˡ‖ grows towards the output, "
              f"section 3), so their mean gradient is a small signal beside the per-example "
              f"spread: a far lower GSNR than the layers near the output. Ours: mean GSNR of "
              f"hidden layer 1 against hidden layer 4 is {_g(r['gsnr_first_last_start'][0])} "
              f"vs {_g(r['gsnr_first_last_start'][1])} at the first record and "
              f"{_g(r['gsnr_first_last_end'][0])} vs {_g(r['gsnr_first_last_end'][1])} at the "
              f"last. The noise scale, a ratio of sums over a layer's parameters (dominated by "
              f"its largest entries), stays of one order across the layers "
              f"({_g(r['noise_first_last_end'][0])} vs {_g(r['noise_first_last_end'][1])} at "
              f"the end): the batch size worth using is about the same for every layer, while "
              f"most of layer 1's parameters see almost pure noise."),
        *_probe_paragraphs(r),
    ]


def _probe_paragraphs(r):
    if not r.get("probe_steps"):
        return []
    lam = np.asarray(r["hessian_max"], dtype=np.float64)
    tr = np.asarray(r["hessian_trace"], dtype=np.float64)
    al = np.asarray(r["alpha"], dtype=np.float64)
    med = r["median_log10_grad_last"]
    layers = ", ".join(f"layer {l + 1}: " + ("—" if m is None else f"10^{m:.1f}")
                       for l, m in enumerate(med))
    zeros = r["zero_fraction_last"]
    return [("p", f"Every {r['probe_every']} steps ({len(lam)} probes), on that step's "
                  f"mini-batch before its update: the largest eigenvalue of the mini-batch "
                  f"cost's Hessian (Lanczos, 20 exact Hessian-vector products) went from "
                  f"{_g(lam[0])} to {_g(lam[-1])} (median {_g(np.nanmedian(lam))}), so the "
                  f"largest stable step of gradient descent on it, 2 / λ_max, is "
                  f"{_g(2 / np.nanmedian(lam))} against η = 0.1; Hutchinson's estimate of its "
                  f"trace (16 Rademacher probes) went from {_g(tr[0])} to {_g(tr[-1])}. "
                  f"Cockpit's α of the probed steps (0: the step reached the minimum of the "
                  f"parabola fitted along it on the same mini-batch, −1: it barely moved or the "
                  f"fit is concave, 1: it overshot to the same height) has median "
                  f"{_g(np.nanmedian(al))}. The median individual gradient element |g| at the "
                  f"last probe, per layer (weights and biases, every example's own gradient, "
                  f"exact zeros left out): {layers} — the vanishing gradient as a "
                  f"distribution. Exact zeros are {zeros[0]:.0%} of layer 1's elements (the "
                  f"weights from blank pixels, x = 0).")]


EXPERIMENT = Experiment(
    "instruments", "9. Training instruments: gradient noise layer by layer",
    experiment_instruments, _figures_instruments, _section_instruments, plan=_instruments_plan)
