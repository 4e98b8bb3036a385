"""``vgfast reproduce``: the experiments of Nielsen's ch. 5 and the lecture, beside their numbers.

Nielsen, *Neural Networks and Deep Learning*, ch. 5 "Why are deep neural networks hard to
train?"; the lecture "Exploding and vanishing gradients"; Glorot & Bengio (2010); He et al.
(2015). Each experiment is a module of this package holding its jobs, its figures and its
report section; its compute function returns a dict of plain numbers (JSON-ready) and the
shared writer (:mod:`.report`) turns that dict into ``DIR/<name>.json``, PNG figures and a
section of ``DIR/report.md`` and ``DIR/report.html``:

========== =========================================================================
depth      accuracy of 1-4 hidden layers of 30 sigmoid units (book: 96.48/96.90/96.57/96.53 %)
norms      ||delta^l|| at initialisation, many seeds, and the per-neuron bars (book: 0.07/0.31 ...)
speed      ||delta^l|| during 500 epochs of full-batch gradient descent on 1000 images
exploding  the w = 100, b_j = -w a_{j-1} chain: every term w sigma'(z) = 25
interval   width of {a : |w sigma'(wa+b)| >= 1} against |w|; max 0.4477 at |w| = 6.894
init       sigmoid/tanh/ReLU x five initialisers: variance per layer at init, accuracy
cures      a 6-hidden-layer sigmoid net, plain and with ReLU+He, tanh+Glorot, Adam, clipping, L2
fashion    the depth experiment on Fashion-MNIST (when it is installed)
========== =========================================================================

Shared modules: :mod:`.book` (the book's numbers and curves), :mod:`.config` (the data and
protocol setup), :mod:`.common` (statistics, formats, figures), :mod:`.jobs` (the job runner:
one pool of threads for the runs of every experiment, or Dask), :mod:`.drawing` (the figures,
drawn in a child process while the runs go on), :mod:`.registry` (the list), :mod:`.report`
(the writer), :mod:`.cli`.

Command line (``vgfast reproduce`` or ``python -m vgfast.reproduce``)::

    vgfast reproduce [EXPERIMENT...] [--out DIR] [--seeds N] [--quick] [--mnist PATH]
                     [--no-progress] [--jobs N] [--scheduler WHERE]

From Python::

    >>> from vgfast import reproduce
    >>> reproduce.main(["norms", "interval", "--quick", "--out", "report"])   # doctest: +SKIP
    >>> results = reproduce.experiment_norms(reproduce.Config(quick=True))     # doctest: +SKIP

``--scheduler processes`` (a Dask LocalCluster) or ``--scheduler tcp://host:8786`` sends the
independent training runs to Dask: the data go to the workers once, the networks are built
there, the results come back with ``as_completed``; the numbers are the same as with threads.

Running a subset of experiments rewrites their JSON and figures and rebuilds the report from
every ``<name>.json`` present in DIR, so earlier sections are kept.
"""

from .book import BOOK, BOOK_STEPS, FULL_MNIST_TRAIN, SOURCES, _ratio_summary, book_curves
from .cli import _summary, main
from .common import Experiment
from .config import Config
from .cures import CURE_EXPECTED, experiment_cures
from .depth import experiment_depth
from .exploding import experiment_exploding
from .fashion import experiment_fashion
from .init import INIT_ACTIVATIONS, INIT_LABELS, INIT_SCHEMES, experiment_init
from .interval import experiment_interval
from .jobs import Progress
from .norms import experiment_norms
from .registry import EXPERIMENTS, NO_DATA, default_experiments
from .report import render_html, render_markdown, run, run_experiment, write_report
from .speed import experiment_speed

__all__ = ["main", "run", "Config", "EXPERIMENTS", "BOOK", "experiment_depth",
           "experiment_norms", "experiment_speed", "experiment_exploding",
           "experiment_interval", "experiment_init", "experiment_cures"]

# names importable from vgfast.reproduce as before the split into modules
_REEXPORTED = (BOOK_STEPS, FULL_MNIST_TRAIN, SOURCES, _ratio_summary, book_curves, _summary,
               Experiment, CURE_EXPECTED, experiment_fashion, INIT_ACTIVATIONS, INIT_LABELS,
               INIT_SCHEMES, Progress, NO_DATA, default_experiments, render_html,
               render_markdown, run_experiment, write_report)
