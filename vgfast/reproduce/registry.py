"""The experiments, in report order, and which of them run by default."""
import os

from . import cures, depth, exploding, fashion, init, instruments, interval, norms, speed

#: name -> :class:`~vgfast.reproduce.common.Experiment` (compute, figures, report section)
EXPERIMENTS = {m.EXPERIMENT.name: m.EXPERIMENT
               for m in (depth, norms, speed, exploding, interval, init, cures, fashion,
                         instruments)}

#: experiments that need no MNIST (fashion reads its own data set)
NO_DATA = ("exploding", "interval", "fashion")


def _fashion_available(cfg):
    from ..datasets import FASHION_MNIST_DIR
    return os.path.isdir(cfg.fashion or FASHION_MNIST_DIR)


def default_experiments(cfg):
    """Every experiment, but ``fashion`` only when Fashion-MNIST is there."""
    return [n for n in EXPERIMENTS if n != "fashion" or _fashion_available(cfg)]
