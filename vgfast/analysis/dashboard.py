"""A training dashboard in the spirit of Cockpit's (Schneider, Dangel & Hennig 2021): what
``vgfast.train(..., record=...)`` recorded, one panel per instrument.

Panels appear for the quantities the History holds: the mini-batch cost; ‖δˡ‖ per layer (the
book's speed of learning); the norm, inner-product and orthogonality tests; the gradient noise
scale B_simple; the mean GSNR per layer; the per-layer noise scale; the step size
‖θ_new − θ_old‖ and the distance ‖θ − θ₀‖. Record them with e.g.
``record=INSTRUMENTS, record_every=50``.
"""
import numpy as np

from .._plot import pyplot

#: everything the dashboard can draw, as train()'s record names
INSTRUMENTS = ("cost", "grad_norms", "norm_test", "inner_test", "ortho_test", "noise_scale",
               "gsnr", "layer_gsnr", "layer_noise_scale", "update_size", "distance")

_PANELS = (
    ("cost", "mini-batch cost", False),
    ("grad_norms", "‖δˡ‖ = ‖∂C/∂bˡ‖ (speed of learning)", True),
    (("norm_test", "inner_test", "ortho_test"), "gradient tests (Cockpit)", True),
    ("noise_scale", "noise scale B_simple = tr Σ / ‖ḡ‖²", True),
    ("layer_gsnr", "mean GSNR per layer", True),
    ("layer_noise_scale", "noise scale per layer", True),
    ("update_size", "step size ‖θ_new − θ_old‖", True),
    ("distance", "distance ‖θ − θ₀‖", False),
)


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
    steps = np.asarray(history.record_steps)
    for ax, (names, label, log) in zip(axes.ravel(), panels):
        for name in names:
            v = np.asarray(getattr(history, name), dtype=np.float64)
            x = steps[:len(v)] if len(steps) >= len(v) else np.arange(1, len(v) + 1)
            if v.ndim == 2:
                for l in range(v.shape[1]):
                    ax.plot(x, v[:, l], lw=1, label=f"layer {l + 1}")
            else:
                ax.plot(x, v, lw=1, label=name if len(names) > 1 else None)
        if log:
            ax.set_yscale("log")
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=6, loc="best")
    for ax in axes.ravel()[len(panels):]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=100, bbox_inches="tight")
    return fig
