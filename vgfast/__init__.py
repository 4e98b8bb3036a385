"""vgfast: fast CPU training of fully connected networks, and the tools to see why deep ones are
hard to train (vanishing, exploding and unstable gradients; Nielsen ch. 5).

>>> import vgfast
>>> net = vgfast.Network([784, 30, 30, 10], seed=0)
>>> hist = vgfast.train(net, X, y, epochs=5, batch_size=10, optimizer=vgfast.SGD(lr=0.1),
...                     record=("grad_norms",))
"""
from . import init, optim
from .checkpoint import Checkpoint, CheckpointError, load
from .analysis.curvature import newton as fit_newton
from .fullbatch import FullBatchResult, fit_cg, fit_lbfgs, full_batch_objective
from .history import History
from .network import Gradient, Network
from .optim import (SGD, AdaGrad, Adam, AdamW, Constant, Cosine, Exponential, InverseTime,
                    LinearDecay, RMSProp, Schedule, StepDecay)
from .threads import blas_threads
from . import sweep  # a package that is also callable: vgfast.sweep(grid, ...)
from .train import DivergenceError, EarlyStopping, train

__version__ = "0.1.0"

__all__ = ["Network", "Gradient", "train", "History", "DivergenceError", "EarlyStopping", "SGD",
           "AdaGrad", "RMSProp", "Adam", "AdamW", "Schedule", "Constant", "LinearDecay",
           "StepDecay", "Exponential", "InverseTime", "Cosine", "init", "optim", "blas_threads",
           "load", "Checkpoint", "CheckpointError", "fit_lbfgs", "fit_cg", "fit_newton", "full_batch_objective", "FullBatchResult", "sweep", "__version__"]
