"""matplotlib, imported lazily with the Agg backend; a clear error when it is missing."""


def pyplot():
    try:
        import matplotlib
    except ImportError:
        raise ImportError('plots need matplotlib: pip install "vgfast[plot]"') from None
    if matplotlib.get_backend().lower() not in ("agg", "module://matplotlib_inline.backend_inline"):
        try:
            matplotlib.use("Agg")
        except Exception:  # a GUI backend already in use: keep it
            pass
    import matplotlib.pyplot as plt
    return plt


def plt_axes(ax=None, figsize=(6, 4)):
    """(figure, axes): new ones, or ax and its figure."""
    plt = pyplot()
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
    else:
        fig = ax.figure
    return fig, ax
