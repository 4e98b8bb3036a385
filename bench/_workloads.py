"""The benchmark workloads, shared by the pytest-benchmark suite and bench/report.py.

One epoch of [784, 30, 30, 30, 10], sigmoid everywhere, cross-entropy cost, plain SGD lr 0.1,
on 10,000 MNIST-shaped rows (random values in [0, 1), fixed seed, labels 0-9), run five ways:

engine       vgfast.train(...), the compiled engine (one nogil call per epoch)
numpy        a vectorised numpy loop over mini-batches (same maths, written as one would)
reference    vgfast._reference.sgd_epoch, the engine's readable pure-numpy specification
per-example  the book's network2 loop: one Python backprop per example, column vectors;
             timed on the first PER_EXAMPLE_ROWS rows only, examples/s scaled from that
torch        PyTorch CPU: nn.Sequential of Linear + Sigmoid, BCE-with-logits summed over the
             outputs and averaged over the batch, torch.optim.SGD, a Python loop over
             mini-batches of a tensor permuted at the start of the epoch (inside the timing)
roof         only the GEMMs the engine does per step (forward Z = A W^T; backward dW = D^T A and
             D_prev = D W), on preallocated arrays, in one nogil loop (vgfast._blas.gemm_sequence)

Every runner has reset() (untimed: puts the initial parameters back) and run() (timed: one epoch).
All of them start from the same parameters and visit the rows in the same order as the engine
(the permutation train() draws from seed 0), so their results can be compared with the engine's.
"""
import math
import time

import numpy as np

import vgfast
from vgfast import _reference, network2
from vgfast._blas import gemm_sequence

try:  # PyTorch is optional: its runners are skipped when it is absent
    import torch
except ImportError:  # pragma: no cover - depends on the environment
    torch = None

SIZES = [784, 30, 30, 30, 10]
N_ROWS = 10_000
DATA_SEED = 0
TRAIN_SEED = 0
LR = 0.1
BATCHES = (10, 100, 1000)
DTYPES = ("float64", "float32")
PER_EXAMPLE_ROWS = 1_000
PER_EXAMPLE_BATCHES = (10, 100)
RECORD = ("grad_norms", "weight_grad_norms", "cost")


# ------------------------------------------------------------------------------------ data

def make_data(n=N_ROWS, n_in=SIZES[0], n_classes=SIZES[-1], seed=DATA_SEED):
    """MNIST-shaped data: X (n, 784) float64 uniform in [0, 1), y (n,) int64 labels 0-9."""
    rng = np.random.default_rng(seed)
    return rng.random((n, n_in)), rng.integers(0, n_classes, n).astype(np.int64)


def one_hot(y, n_classes, dtype):
    T = np.zeros((y.shape[0], n_classes), dtype)
    T[np.arange(y.shape[0]), y] = 1
    return T


def engine_perm(n, seed=TRAIN_SEED):
    """The row order train(..., shuffle=True, seed=seed) uses in its first epoch."""
    rng = np.random.default_rng(seed)
    rng.integers(0, 2 ** 63)  # train() draws the dropout seed first
    return rng.permutation(n).astype(np.int64)


def initial_params(dtype, seed=0, sizes=SIZES):
    return vgfast.Network(sizes, dtype=dtype, seed=seed).params.copy()


# ------------------------------------------------------------------------------------ counts

def gemm_flops_per_example(sizes=SIZES):
    """2 m n_in n_out flops per GEMM, per row of the batch: forward L GEMMs, backward L
    weight-gradient GEMMs and L - 1 delta GEMMs."""
    pairs = [a * b for a, b in zip(sizes[:-1], sizes[1:])]
    return 2 * sum(pairs) + 2 * sum(pairs) + 2 * sum(pairs[1:])


FLOPS_PER_EXAMPLE = gemm_flops_per_example()


def rates(seconds, rows):
    """examples/s and GFLOP/s (GEMM flops only) for `rows` examples in `seconds`."""
    return rows / seconds, rows * FLOPS_PER_EXAMPLE / seconds / 1e9


# ------------------------------------------------------------------------------------ runners

class Engine:
    """(a) the engine through the public API."""
    name = "engine"

    def __init__(self, X, y, dtype, batch, record=(), record_every="epoch", sizes=SIZES):
        self.X = np.ascontiguousarray(X, dtype=dtype)
        self.y = y
        self.batch = batch
        self.rows = X.shape[0]
        self.net = vgfast.Network(sizes, dtype=dtype, seed=0)
        self.p0 = self.net.params.copy()
        # train() as a user calls it: default arguments (the running training metrics, the
        # data checked as it is gathered)
        self.kw = dict(epochs=1, batch_size=batch, seed=TRAIN_SEED)
        if record:
            self.kw.update(record=record, record_every=record_every)

    def reset(self):
        self.net.params[...] = self.p0

    def run(self):
        return vgfast.train(self.net, self.X, self.y, optimizer=vgfast.SGD(LR), **self.kw)

    def params(self):
        return self.net.params.copy()


class NumpyLoop:
    """(b) a vectorised numpy loop over mini-batches: the engine's maths, written plainly."""
    name = "numpy"

    def __init__(self, X, y, dtype, batch, sizes=SIZES):
        self.dtype = np.dtype(dtype).type
        self.X = np.ascontiguousarray(X, dtype=dtype)
        self.T = one_hot(y, sizes[-1], dtype)
        self.batch = batch
        self.rows = X.shape[0]
        self.p0 = initial_params(dtype, sizes=sizes)
        self.flat = self.p0.copy()
        net = vgfast.Network(sizes, dtype=dtype)
        self.Ws, self.bs = net._split(self.flat)

    def reset(self):
        self.flat[...] = self.p0

    def run(self):
        X, T, Ws, bs, bsz = self.X, self.T, self.Ws, self.bs, self.batch
        perm = engine_perm(self.rows)
        L = len(Ws)
        with np.errstate(over="ignore"):
            for start in range(0, self.rows, bsz):
                idx = perm[start:start + bsz]
                a = X[idx]
                m = a.shape[0]
                acts = [a]
                for W, b in zip(Ws, bs):
                    a = 1.0 / (1.0 + np.exp(-(a @ W.T + b)))
                    acts.append(a)
                d = a - T[idx]                               # cross-entropy + sigmoid output
                step = LR / m
                for l in range(L - 1, -1, -1):
                    gW = d.T @ acts[l]
                    gb = d.sum(axis=0)
                    if l > 0:
                        a_l = acts[l]
                        d = (d @ Ws[l]) * (a_l * (1.0 - a_l))  # sigma' = a (1 - a)
                    Ws[l] -= step * gW
                    bs[l] -= step * gb

    def params(self):
        return self.flat.copy()


class ReferenceLoop:
    """(b') vgfast._reference.sgd_epoch: the readable specification (also computes the cost)."""
    name = "reference"

    def __init__(self, X, y, dtype, batch):
        self.X = np.ascontiguousarray(X, dtype=dtype)
        self.y = y
        self.batch = batch
        self.rows = X.shape[0]
        self.net = vgfast.Network(SIZES, dtype=dtype, seed=0)
        self.p0 = self.net.params.copy()
        self.out = self.p0

    def reset(self):
        self.out = self.p0

    def run(self):
        self.out = _reference.sgd_epoch(self.net, self.p0, self.X, self.y,
                                        engine_perm(self.rows), self.batch, LR)

    def params(self):
        return self.out.copy()


class PerExample:
    """(c) the book's network2 loop (CrossEntropyCost, lmbda = 0): per mini-batch, one Python
    backprop per example with column vectors, then the update. Float64 as in the book.

    Timed on the first PER_EXAMPLE_ROWS rows of the epoch's order only: it is ~100x slower.
    """
    name = "per-example"

    def __init__(self, X, y, dtype, batch, rows=PER_EXAMPLE_ROWS, sizes=SIZES):
        self.sizes = sizes
        perm = engine_perm(X.shape[0])[:rows]
        T = one_hot(y, sizes[-1], dtype)
        # network2's data layout: a list of (x, y) column vectors, prepared once
        self.data = [(np.ascontiguousarray(X[i].reshape(-1, 1), dtype=dtype),
                      T[i].reshape(-1, 1)) for i in perm]
        self.batch = batch
        self.rows = rows
        self.p0 = initial_params(dtype, sizes=sizes)
        net = vgfast.Network(sizes, dtype=dtype)
        w0, b0 = net._split(self.p0)
        self.w0 = [w.copy() for w in w0]
        self.b0 = [b.reshape(-1, 1).copy() for b in b0]
        self.net = net
        self.reset()

    def reset(self):
        self.weights = [w.copy() for w in self.w0]
        self.biases = [b.copy() for b in self.b0]

    # the book's network2 backprop, one example of column vectors (vgfast.network2 keeps it
    # for subclasses that override methods): these attributes are what it reads
    cost = network2.CrossEntropyCost

    @property
    def num_layers(self):
        return len(self.sizes)

    def backprop(self, x, y):
        return network2._book_backprop(self, x, y)

    def update_mini_batch(self, mini_batch, eta):
        nabla_b = [np.zeros(b.shape) for b in self.biases]
        nabla_w = [np.zeros(w.shape) for w in self.weights]
        for x, y in mini_batch:
            delta_nabla_b, delta_nabla_w = self.backprop(x, y)
            nabla_b = [nb + dnb for nb, dnb in zip(nabla_b, delta_nabla_b)]
            nabla_w = [nw + dnw for nw, dnw in zip(nabla_w, delta_nabla_w)]
        self.weights = [w - (eta / len(mini_batch)) * nw for w, nw in zip(self.weights, nabla_w)]
        self.biases = [b - (eta / len(mini_batch)) * nb for b, nb in zip(self.biases, nabla_b)]

    def run(self):
        data, bsz = self.data, self.batch
        for k in range(0, len(data), bsz):
            self.update_mini_batch(data[k:k + bsz], LR)

    def params(self):
        flat = np.zeros_like(self.p0)
        ws, bs = self.net._split(flat)
        for w, b, w1, b1 in zip(ws, bs, self.weights, self.biases):
            w[...] = w1
            b[...] = b1.ravel()
        return flat


def torch_mlp(sizes, tdt):
    """nn.Sequential of Linear + Sigmoid, logits out (the output sigmoid is in the loss)."""
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(torch.nn.Linear(a, b, dtype=tdt))
        if i < len(sizes) - 2:
            layers.append(torch.nn.Sigmoid())
    return torch.nn.Sequential(*layers)


class Torch:
    """(d) PyTorch CPU, the idiomatic loop."""
    name = "torch"

    def __init__(self, X, y, dtype, batch):
        if torch is None:
            raise RuntimeError("torch is not installed")
        tdt = {"float64": torch.float64, "float32": torch.float32}[np.dtype(dtype).name]
        self.X = torch.from_numpy(np.array(X, dtype=dtype))  # a writable copy
        self.T = torch.from_numpy(one_hot(y, SIZES[-1], dtype))
        self.batch = batch
        self.rows = X.shape[0]
        self.model = torch_mlp(SIZES, tdt)
        self.linears = [m for m in self.model if isinstance(m, torch.nn.Linear)]
        self.p0 = initial_params(dtype)
        self.net = vgfast.Network(SIZES, dtype=dtype)
        self.loss = torch.nn.BCEWithLogitsLoss(reduction="sum")
        self.opt = torch.optim.SGD(self.model.parameters(), lr=LR)
        self.reset()

    def reset(self):
        ws, bs = self.net._split(self.p0)
        with torch.no_grad():
            for lin, w, b in zip(self.linears, ws, bs):
                lin.weight.copy_(torch.from_numpy(w))
                lin.bias.copy_(torch.from_numpy(b))

    def run(self):
        perm = torch.from_numpy(engine_perm(self.rows))
        Xp, Tp = self.X[perm], self.T[perm]
        model, loss, opt, bsz = self.model, self.loss, self.opt, self.batch
        for start in range(0, self.rows, bsz):
            xb = Xp[start:start + bsz]
            tb = Tp[start:start + bsz]
            opt.zero_grad()
            # cross-entropy summed over the outputs, averaged over the batch
            c = loss(model(xb), tb) / xb.shape[0]
            c.backward()
            opt.step()

    def params(self):
        flat = np.zeros_like(self.p0)
        ws, bs = self.net._split(flat)
        with torch.no_grad():
            for lin, w, b in zip(self.linears, ws, bs):
                w[...] = lin.weight.numpy()
                b[...] = lin.bias.numpy()
        return flat


class Roof:
    """(e) the GEMM-only roof: the engine's GEMMs for every step of the epoch, nothing else.

    A mini-batch above CHUNK_ROWS rows is, as in the engine, split into equal chunks of about
    that many rows, each with its own forward, delta and weight-gradient GEMMs."""
    name = "roof"
    CHUNK_ROWS = 128  # vgfast/_core.pyx

    def __init__(self, X, y, dtype, batch, sizes=SIZES):
        rows = X.shape[0]
        if rows % batch:
            raise ValueError("the roof assumes equal mini-batches")
        chunks = 1 if batch <= self.CHUNK_ROWS else -(-batch // self.CHUNK_ROWS)
        if batch % chunks:
            raise ValueError("the roof assumes equal chunks")
        self.rows = rows
        self.steps = rows // batch * chunks
        rng = np.random.default_rng(1)
        m, L = batch // chunks, len(sizes) - 1
        f = lambda *s: np.ascontiguousarray(rng.random(s) - 0.5, dtype=dtype)  # noqa: E731
        A = [f(m, n) for n in sizes]                      # A_0 .. A_L
        Z = [f(m, n) for n in sizes[1:]]                  # Z_1 .. Z_L
        D = [f(m, n) for n in sizes[1:]]                  # D_1 .. D_L
        W = [f(b, a) / math.sqrt(a) for a, b in zip(sizes[:-1], sizes[1:])]
        G = [np.zeros_like(w) for w in W]
        mats = [(A[l], W[l], Z[l], False, True, 1.0) for l in range(L)]        # Z = A W^T
        for l in range(L - 1, -1, -1):
            mats.append((D[l], A[l], G[l], True, False, 1.0 / m))              # dW = D^T A / m
            if l > 0:
                mats.append((D[l], W[l], D[l - 1], False, False, 1.0))         # D_prev = D W
        self.mats = mats
        self._keep = (A, Z, D, W, G)

    def reset(self):
        pass

    def run(self):
        gemm_sequence(self.mats, self.steps)


RUNNERS = {"engine": Engine, "numpy": NumpyLoop, "reference": ReferenceLoop,
           "per-example": PerExample, "torch": Torch, "roof": Roof}


# ------------------------------------------------------------------------------------ timing

CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def best_time(runner, repeats=5, warmup=1, budget=None, clock="wall"):
    """Best of `repeats` timed runs (after `warmup` untimed ones); reset() is never timed.

    budget: stop early (after at least 2 timed runs) once this many seconds have been spent.
    clock: "wall" (time.perf_counter) or "cpu" (time.process_time: this process's CPU time,
    which other processes on a shared machine do not inflate; valid because every runner is
    single-threaded here).
    """
    now = CLOCKS[clock]
    for _ in range(warmup):
        runner.reset()
        runner.run()
    best, spent = float("inf"), 0.0
    for i in range(repeats):
        runner.reset()
        t0 = now()
        runner.run()
        dt = now() - t0
        best = min(best, dt)
        spent += dt
        if budget is not None and i >= 1 and spent > budget:
            break
    return best
