"""What a sweep returns: its runs as rows (dicts), a pandas DataFrame, and a plot of a metric
against a grid key with the spread over seeds."""
import numpy as np

DEFAULT_RUN = "vgfast.sweep.training.train_run"


class SweepResult:
    """The runs of a sweep, read back from its store.

    Attributes
    ----------
    rows : list of dict
        One per run, in grid order: the config's keys, the result's keys (a result key wins
        over a config key of the same name), ``status`` (``done``, ``error`` or ``lost``) and
        ``error`` (the traceback or reason, None when done). The default run's ``history`` is
        a :class:`vgfast.History`.
    runs : list of dict
        The store's rows as they are: ``key``, ``status``, ``run``, ``config``, ``result``,
        ``error``, ``started``, ``finished``, ``worker``, ``attempts``.
    grid_keys : list of str
        The keys that vary (the grid's keys).
    """

    def __init__(self, runs, grid_keys):
        self.runs = runs
        self.grid_keys = list(grid_keys)
        self.rows = [self._row(r) for r in runs]

    @staticmethod
    def _row(run):
        row = dict(run["config"])
        result = dict(run["result"] or {})
        if run["run"] == DEFAULT_RUN and isinstance(result.get("history"), dict):
            from ..history import History
            result["history"] = History.from_dict(result["history"])
        row.update(result)
        row["status"], row["error"] = run["status"], run["error"]
        return row

    def __len__(self):
        return len(self.rows)

    def counts(self):
        """{status: number of runs}."""
        out = {"done": 0, "error": 0, "lost": 0}
        for r in self.rows:
            out[r["status"]] = out.get(r["status"], 0) + 1
        return out

    def __repr__(self):
        c = self.counts()
        return (f"SweepResult({len(self)} runs: {c['done']} done, {c['error']} error, "
                f"{c['lost']} lost; grid keys {self.grid_keys})")

    def to_pandas(self):
        """The rows as a pandas DataFrame (grid keys first, then the other columns)."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("to_pandas needs pandas: pip install pandas (or use .rows)") from None
        df = pd.DataFrame(self.rows)
        first = [k for k in self.grid_keys if k in df.columns]
        return df[first + [c for c in df.columns if c not in first]]

    def plot(self, metric, x, ax=None, seed="seed", logx=None, title=None):
        """`metric` against the grid key `x`: one line per combination of the other grid keys
        (seeds excepted), the mean over seeds with a band from the lowest to the highest seed
        and each seed as a dot.

        Parameters
        ----------
        metric : str, a result (or config) key holding numbers, e.g. ``"validation_accuracy"``
        x : str, a grid key
        ax : matplotlib Axes, optional
        seed : str, the key whose values are repeats (spread, not lines); default ``"seed"``
        logx : bool, log-scale x; default: when x is numeric, positive and spans > 2 decades

        Returns
        -------
        matplotlib Axes
        """
        from .._plot import plt_axes
        if x not in self.grid_keys:
            raise ValueError(f"x must be a grid key, one of {self.grid_keys}; got {x!r}")
        done = [r for r in self.rows if r["status"] == "done"]
        if not any(metric in r for r in done):
            raise ValueError(f"metric {metric!r} is in no finished run; keys of the rows: "
                             f"{sorted(set().union(*map(set, done))) if done else []}")
        others = [k for k in self.grid_keys if k not in (x, seed)]
        xs = _unique([r[x] for r in done])
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in xs)
        xs = sorted(xs) if numeric else xs
        pos = {_hashable(v): (v if numeric else i) for i, v in enumerate(xs)}
        _, ax = plt_axes(ax)
        for line in _unique([tuple(_hashable(r.get(k)) for k in others) for r in done]):
            points = {}
            for r in done:
                if tuple(_hashable(r.get(k)) for k in others) == line and r.get(metric) is not None:
                    points.setdefault(_hashable(r[x]), []).append(float(r[metric]))
            if not points:
                continue
            px = [pos[k] for k in pos if k in points]
            vals = [points[k] for k in pos if k in points]
            label = ", ".join(f"{k}={v}" for k, v in zip(others, line)) or metric
            mean = [np.mean(v) for v in vals]
            (ln,) = ax.plot(px, mean, marker="o", label=label)
            if any(len(v) > 1 for v in vals):
                ax.fill_between(px, [min(v) for v in vals], [max(v) for v in vals],
                                color=ln.get_color(), alpha=0.2, linewidth=0)
            for p, v in zip(px, vals):
                ax.scatter([p] * len(v), v, color=ln.get_color(), s=8, alpha=0.6)
        if not numeric:
            ax.set_xticks(range(len(xs)))
            ax.set_xticklabels([str(v) for v in xs])
        elif logx or (logx is None and xs and min(xs) > 0 and max(xs) / min(xs) > 100):
            ax.set_xscale("log")
        n_seeds = len(_unique([r.get(seed) for r in done]))
        ax.set_xlabel(x)
        ax.set_ylabel(metric)
        ax.set_title(title or f"{metric} against {x}"
                     + (f" ({n_seeds} seeds: mean, min-max band)" if n_seeds > 1 else ""))
        if others:
            ax.legend(fontsize="small")
        return ax


def _hashable(v):
    if isinstance(v, list):
        return tuple(_hashable(x) for x in v)
    if isinstance(v, dict):
        return tuple(sorted((k, _hashable(x)) for k, x in v.items()))
    return v


def _unique(values):
    seen, out = set(), []
    for v in values:
        h = _hashable(v)
        if h not in seen:
            seen.add(h)
            out.append(v)
    return out
