"""9. instruments: Cockpit's gradient tests recorded inside the engine's loop while the
chapter's deepest network ([784, 30, 30, 30, 30, 10]) trains: are the early layers' gradients
mostly noise?"""
import numpy as np

from ..network import Network
from .book import SOURCES
from .common import Experiment, _estimate, _g, _save, _subset_tag
from .config import Config
from .jobs import Batch, run_plan

RECORD = ("cost", "grad_norms", "norm_test", "inner_test", "ortho_test", "noise_scale", "gsnr",
          "layer_gsnr", "layer_noise_scale", "update_size", "distance")


def experiment_instruments(cfg: Config) -> dict:
    """Train the book's 4-hidden-layer sigmoid network (its initialisation, η = 0.1,
    mini-batches of 10, λ = 5) and record, averaged over every 50 steps, the instruments of
    vgfast.analysis.INSTRUMENTS (each computed on the step's mini-batch before its update)."""
    return run_plan(_instruments_plan, cfg)


def _instruments_run(job, data):
    from .. import SGD, train
    epochs, seed = job
    X, y = data
    net = Network([784, 30, 30, 30, 30, 10], seed=seed)
    h = train(net, X, y, epochs=epochs, batch_size=10, optimizer=SGD(0.1),
              lmbda=5.0 * len(X) / 50_000, record=RECORD, record_every=50, seed=seed)
    return {name: np.asarray(getattr(h, name)) for name in ("record_steps",) + RECORD}


def _instruments_plan(cfg):
    n = 1000 if cfg.quick else 10_000
    epochs = 1 if cfg.quick else 3
    X, y = cfg.images(n)
    # the per-example statistics cost about as much again as the step
    cost = _estimate([784, 30, 30, 30, 30, 10], train_rows=2 * epochs * len(X))
    [h] = yield Batch(_instruments_run, [(epochs, 0)], (X, y), "instruments",
                      cost=lambda job: cost, after=2.0)
    out = {"rows": int(len(X)), "epochs": epochs, "batch": 10, "every": 50,
           "subset": cfg.is_subset, "data": cfg.images_note(n) if cfg.is_subset else
           f"the first {len(X)} training images",
           "record_steps": h["record_steps"].tolist()}
    for name in RECORD:
        out[name] = h[name].tolist()
    g = h["layer_gsnr"]
    ns = h["layer_noise_scale"]
    out["gsnr_first_last_start"] = [float(g[0, 0]), float(g[0, -2])]
    out["gsnr_first_last_end"] = [float(g[-1, 0]), float(g[-1, -2])]
    out["noise_first_last_end"] = [float(ns[-1, 0]), float(ns[-1, -2])]
    return out


def _figures_instruments(r, out):
    from types import SimpleNamespace

    from ..analysis import plot_instruments
    h = SimpleNamespace(record_steps=np.asarray(r["record_steps"]),
                        **{k: np.asarray(r[k], dtype=np.float64) for k in RECORD})
    fig = plot_instruments(h, title="[784, 30, 30, 30, 30, 10], mini-batch 10, η = 0.1"
                                    + _subset_tag(r))
    return [_save(fig, out, "instruments.png",
                  "Cockpit-style instruments recorded inside the engine's loop, averages over "
                  "50 steps: cost, ‖δˡ‖, the three gradient tests, the noise scale, the mean "
                  "GSNR and the noise scale of each layer, step size and distance travelled.")]


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
    ]


EXPERIMENT = Experiment(
    "instruments", "9. Training instruments: gradient noise layer by layer",
    experiment_instruments, _figures_instruments, _section_instruments, plan=_instruments_plan)
