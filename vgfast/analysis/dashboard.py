"""A training dashboard in the spirit of Cockpit's (Schneider, Dangel & Hennig 2021): what
``vgfast.train(..., record=...)`` recorded, one panel per instrument.

Panels appear for the quantities the History holds: the mini-batch cost; ‖δˡ‖ per layer (the
book's speed of learning); the norm, inner-product and orthogonality tests; the gradient noise
scale B_simple (per step, and the two-batch estimate with its moving averages); the mean GSNR
per layer; the per-layer noise scale; the step size ‖θ_new − θ_old‖ and the distance ‖θ − θ₀‖;
and from the probes (every ``probe_every`` steps) Cockpit's α, the Hessian's largest eigenvalue
and trace, and per layer the histogram of individual gradient elements over log10 |g| at the
first and the last probe. Record them with e.g.
``record=INSTRUMENTS, record_every=50, probe_every=200``.
"""
import numpy as np

from .._plot import pyplot

#: everything the dashboard can draw, as train()'s record names
INSTRUMENTS = ("cost", "grad_norms", "norm_test", "inner_test", "ortho_test", "noise_scale",
               "gns", "gsnr", "layer_gsnr", "layer_noise_scale", "update_size", "distance",
               "alpha", "hessian_max", "hessian_trace", "grad_hist")

_PANELS = (
    ("cost", "mini-batch cost", False),
    ("grad_norms", "‖δˡ‖ = ‖∂C/∂bˡ‖ (speed of learning)", True),
    (("norm_test", "inner_test", "ortho_test"), "gradient tests (Cockpit)", True),
    (("noise_scale", "gns"), "noise scale B_simple = tr Σ / |G|²", True),
    ("layer_gsnr", "mean GSNR per layer", True),
    ("layer_noise_scale", "noise scale per layer", True),
    ("update_size", "step size ‖θ_new − θ_old‖", True),
    ("distance", "distance ‖θ − θ₀‖", False),
    ("alpha", "α, normalised step length (Cockpit)", False),
    (("hessian_max", "hessian_trace"), "curvature of the mini-batch cost", False),
    ("grad_hist", "gradient elements, |g| ≥ 1e-20 (first ⋯, last —)", False),
)
_PROBED = ("alpha", "hessian_max", "hessian_trace", "grad_hist")
_LABELS = {"noise_scale": "per step", "gns": "two-batch, EMA", "hessian_max": "largest λ",
           "hessian_trace": "trace (Hutchinson)"}


def _has(history, name):
    v = getattr(history, name, None)
    return v is not None and np.size(v) > 0


def plot_instruments(history, path=None, title=None):
    """The dashboard figure of a History; returns the matplotlib figure (saved to `path` when
    given). Per-layer panels label the layers 1 (nearest the input) … L (the output layer).

    Raises ValueError when the History holds none of :data:`INSTRUMENTS`.
    """
    panels = []
    for names, label, log in _PANELS:
        names = (names,) if isinstance(names, str) else names
        names = [n for n in names if _has(history, n)]
        if names:
            panels.append((names, label, log))
    if not panels:
        raise ValueError(f"the History holds none of the dashboard's quantities; train with "
                         f"record={INSTRUMENTS!r}")
    plt = pyplot()
    cols = 3 if len(panels) > 4 else 2
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 2.9 * rows), squeeze=False)
    for ax, (names, label, log) in zip(axes.ravel(), panels):
        if names == ["grad_hist"]:
            _histograms(ax, np.asarray(history.grad_hist, dtype=np.float64))
        for name in names if names != ["grad_hist"] else ():
            steps = np.asarray(history.probe_steps if name in _PROBED else history.record_steps)
            v = np.asarray(getattr(history, name), dtype=np.float64)
            x = steps[:len(v)] if len(steps) >= len(v) else np.arange(1, len(v) + 1)
            if v.ndim == 2:
                for l in range(v.shape[1]):
                    ax.plot(x, v[:, l], lw=1, label=f"layer {l + 1}")
            else:
                ax.plot(x, v, lw=1, marker="." if name in _PROBED else None,
                        label=_LABELS.get(name, name) if len(names) > 1 else None)
        if log:
            ax.set_yscale("log")
        elif names == ["alpha"]:
            ax.axhline(0, color="0.6", lw=0.6)
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("log10 |g|" if names == ["grad_hist"] else "step", fontsize=8)
        ax.tick_params(labelsize=7)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=6, loc="best")
    for ax in axes.ravel()[len(panels):]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title, fontsize=10)
    return _finish(fig, path)


def _histograms(ax, h):
    """Per layer, the fraction of gradient elements per half-decade of |g| at the first probe
    (dotted) and the last (solid). Bin 0 (|g| < 1e-20: exact zeros, such as the weights from
    blank input pixels) is left out and the rest renormalised to sum to 1; the bin from 1e4 up
    is drawn at 1e4."""
    from .probes import HIST_EDGES

    centres = np.concatenate([(HIST_EDGES[:-1] + HIST_EDGES[1:]) / 2, [HIST_EDGES[-1] + 0.25]])
    h = h[:, :, 1:]
    tot = h.sum(axis=2, keepdims=True)
    h = np.divide(h, tot, out=np.zeros_like(h), where=tot > 0)
    for l in range(h.shape[1]):
        line, = ax.plot(centres, h[-1, l], lw=1, label=f"layer {l + 1}")
        if h.shape[0] > 1:
            ax.plot(centres, h[0, l], lw=1, ls=":", color=line.get_color())
    seen = np.flatnonzero((h > 0).any(axis=(0, 1)))
    if seen.size:
        ax.set_xlim(centres[seen[0]] - 0.5, centres[seen[-1]] + 0.5)
    ax.set_ylabel("fraction", fontsize=8)


def _finish(fig, path):
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=100, bbox_inches="tight")
    return fig
