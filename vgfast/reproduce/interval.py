"""5. interval: width of {a : |w sigma'(wa + b)| >= 1} against |w| (ch. 5 problems)."""
import math

import numpy as np

from .book import BOOK, SOURCES
from .common import Experiment, _g, _pyplot, _save
from .config import Config


def experiment_interval(cfg: Config) -> dict:
    """Width of {a : |w sigma'(wa + b)| >= 1} against |w| (ch. 5 problems, eq. 123)."""
    from ..analysis import admissible_interval, interval_width, max_interval_width

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
    from ..analysis import plot_admissible_interval, sigmoid_prime

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


EXPERIMENT = Experiment(
    "interval", "5. How narrow is the way out: the admissible interval",
    experiment_interval, _figures_interval, _section_interval)
