"""The book's numbers and curves, and where each compared number comes from."""
import json

import numpy as np

#: Numbers printed in ch. 5 (and the lecture), to put beside ours.
BOOK = {
    # validation accuracy after 30 epochs, mini-batch 10, eta 0.1, lambda 5, 50,000 images
    "depth_accuracy": {1: 0.9648, 2: 0.9690, 3: 0.9657, 4: 0.9653},
    "depth_protocol": {"n_train": 50000, "epochs": 30, "batch_size": 10, "eta": 0.1,
                       "lmbda": 5.0, "n_validation": 10000},
    # ||delta^l|| at initialisation, mean gradient over the first 1000 training images
    "norms": {2: [0.07, 0.31], 3: [0.012, 0.060, 0.283], 4: [0.003, 0.017, 0.070, 0.285]},
    # the text: "the first hidden layer learns roughly 100 times slower than the last"; the
    # book's own curves (book_curves()) give a median ratio of 74.4 over the 500 epochs
    "speed_ratio_4_text": 100.0,
    "speed_protocol": {"n_train": 1000, "epochs": 500, "batch_size": 1000, "eta": 0.1,
                       "lmbda": 5.0},
    # the exploding-gradient construction: w = 100, z_j = 0, so w sigma'(z) = 100/4 = 25
    "exploding_term": 25.0,
    # problems: the interval width is largest "at |w| ~ 6.9", where it is "~ 0.45"
    "interval_w_star": 6.9,
    "interval_width_star": 0.45,
}

#: Where each compared number comes from.
SOURCES = {
    "book": "Nielsen, Neural Networks and Deep Learning, ch. 5 (\"Why are deep neural networks "
            "hard to train?\")",
    "book_code": "the book's repository, fig/generate_gradient.py and its JSON output "
                 "(MIT licence; shipped in vgfast/data/nielsen)",
    "problems": "ch. 5, problems of the section \"What's causing the vanishing gradient "
                "problem?\"",
    "lecture": "the lecture \"Exploding and vanishing gradients\"",
    "glorot": "Glorot & Bengio (2010), Understanding the difficulty of training deep "
              "feedforward neural networks",
    "he": "He, Zhang, Ren & Sun (2015), Delving deep into rectifiers",
    "ioffe": "Ioffe & Szegedy (2015), Batch normalization",
}


def book_curves():
    """The book's own curves, from its repository (``fig/*.json``, MIT licence, shipped as
    package data in ``vgfast/data/nielsen`` with the licence text).

    Returns
    -------
    norms : dict {2, 3, 4: ndarray (500, hidden)}
        ||delta^l|| of each hidden layer before each of the 500 epochs of generate_gradient.py.
    initial : list of lists
        dC/db of the first six neurons of each hidden layer of [784, 30, 30, 10] at
        initialisation (the book's bar diagram).
    """
    from importlib.resources import files

    base = files("vgfast").joinpath("data", "nielsen")
    norms = {h: np.array(json.loads(base.joinpath(f"norms_during_training_{h}_layers.json")
                                    .read_text(encoding="utf-8")))
             for h in (2, 3, 4)}
    initial = json.loads(base.joinpath("initial_gradient.json").read_text(encoding="utf-8"))
    return norms, initial


def _ratio_summary(norms):
    """start / median / end / minimum of ||delta^last|| / ||delta^1|| along a run (epochs, l)."""
    r = np.asarray(norms)[:, -1] / np.asarray(norms)[:, 0]
    return {"start": float(r[0]), "median": float(np.median(r)), "end": float(r[-1]),
            "min": float(r.min())}


FULL_MNIST_TRAIN = 50000  # the book's training-set size
BOOK_STEPS = BOOK["depth_protocol"]["epochs"] * FULL_MNIST_TRAIN // 10  # 150,000 SGD steps

