"""Two builds of vgfast side by side on one epoch workload: interleaved processes, CPU time.

    python bench/ab_builds.py DIR_A DIR_B [--rounds 9] [--dtype float64] [--batch 200]

DIR_A and DIR_B are checkouts with their extensions built in place (``python setup.py
build_ext --inplace``; e.g. a ``git worktree`` of the commit before a change). Each round runs
one process per build (the order alternating between rounds), each training MNIST
``[784, 100, 10]`` (relu, Adam 1e-3; the bundled 5,000-digit subset) for 40 epochs and reporting
CPU time per epoch (``--workload epoch``), or fitting vgfast.sklearn.MLPClassifier on the same
digits under bench/test_sklearn.py's workloads (``sklearn-a``, ``sklearn-b``: ms per fit, the
best of two). Prints each build's median and the median of the per-round ratios B / A:
on a shared, noisy machine the ratio within a round is what compares. This is how the steps of
the sparse first layer were measured (bench/README.md).
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile

CHILD = r"""
import sys, time, warnings
import numpy as np
import vgfast
from vgfast.datasets import load_mnist
d = load_mnist(subset=True)
X = np.vstack([d.X_train, d.X_validation]).astype(sys.argv[1])
y = np.concatenate([d.y_train, d.y_validation])
if sys.argv[3] == "epoch":
    net = vgfast.Network([784, 100, 10], activation="relu", dtype=sys.argv[1], seed=0)
    t = time.process_time()
    vgfast.train(net, X, y, epochs=40, batch_size=int(sys.argv[2]),
                 optimizer=vgfast.Adam(1e-3), seed=0, monitor=False)
    print(1e3 * (time.process_time() - t) / 40, net._engine.first_layer)
else:  # bench/test_sklearn.py's workloads (a) and (b), best of two fits
    from vgfast.sklearn import MLPClassifier
    kw = (dict(hidden_layer_sizes=(100,), activation="logistic", solver="sgd", batch_size=10)
          if sys.argv[3] == "sklearn-a" else {})
    best = np.inf
    for _ in range(2):
        t = time.process_time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est = MLPClassifier(random_state=0, max_iter=15, **kw).fit(X, y)
        best = min(best, time.process_time() - t)
    print(1e3 * best, est.network_._engine.first_layer)
"""


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--dtype", default="float64", choices=("float64", "float32"))
    ap.add_argument("--batch", type=int, default=200)
    ap.add_argument("--workload", default="epoch", choices=("epoch", "sklearn-a", "sklearn-b"))
    args = ap.parse_args(argv)
    dirs = [os.path.abspath(args.a), os.path.abspath(args.b)]
    times = {d: [] for d in dirs}
    paths = {}
    cwd = tempfile.mkdtemp()  # not a checkout: "-c" puts the working directory on sys.path
    for r in range(args.rounds):
        for d in (dirs if r % 2 == 0 else dirs[::-1]):
            env = dict(os.environ, PYTHONPATH=d, OPENBLAS_NUM_THREADS="1")
            out = subprocess.run([sys.executable, "-c", CHILD, args.dtype, str(args.batch),
                                  args.workload],
                                 env=env, capture_output=True, text=True, check=True,
                                 cwd=cwd).stdout.split()
            times[d].append(float(out[0]))
            paths[d] = out[1]
    for d in dirs:
        unit = "epoch" if args.workload == "epoch" else "fit"
        print(f"{d}: {statistics.median(times[d]):.2f} ms per {unit} (first layer: {paths[d]})")
    ratios = [b / a for a, b in zip(times[dirs[0]], times[dirs[1]])]
    print(f"median of the per-round ratios B / A: {statistics.median(ratios):.3f}")


if __name__ == "__main__":
    main()
