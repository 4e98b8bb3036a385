"""What the probes cost (issue 12): one epoch of the bench workload with each probe taken every
100 steps, beside the same epoch without probes.

pytest:  python -m pytest bench/test_probes.py --benchmark-only --benchmark-group-by=group
script:  python bench/test_probes.py --rounds 7   (interleaved rounds, CPU time; prints per
         probe the extra milliseconds and that cost in plain training steps, medians)
"""
import argparse
import time

import numpy as np
import pytest

import _workloads as W
import vgfast

EVERY = 100
CASES = {"none": (), "grad_hist": ("grad_hist",), "alpha": ("alpha",),
         "hessian_trace": ("hessian_trace",), "hessian_max": ("hessian_max",),
         "all four": ("grad_hist", "alpha", "hessian_trace", "hessian_max")}


def epoch(X, y, batch, record):
    net = vgfast.Network(W.SIZES, seed=W.TRAIN_SEED)
    return vgfast.train(net, X, y, epochs=1, batch_size=batch, optimizer=vgfast.SGD(W.LR),
                        record=record, probe_every=EVERY, seed=W.TRAIN_SEED)


@pytest.mark.parametrize("batch", [10, 100])
@pytest.mark.parametrize("case", list(CASES))
def test_probe_epoch(benchmark, mnist_like, batch, case):
    X, y = mnist_like
    benchmark.group = f"probes every {EVERY} steps, batch {batch}"
    h = benchmark.pedantic(epoch, args=(X, y, batch, CASES[case]), rounds=3, iterations=1)
    assert len(h.probe_steps) == (len(X) // batch // EVERY if CASES[case] else 0)


def main():
    from threadpoolctl import threadpool_limits

    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    X, y = W.make_data()
    with threadpool_limits(1, "blas"):
        for batch in (10, 100):
            steps = len(X) // batch
            probes = steps // EVERY
            cpu = {c: [] for c in CASES}
            for _ in range(args.rounds):
                for c, rec in CASES.items():
                    t = time.process_time()
                    epoch(X, y, batch, rec)
                    cpu[c].append(time.process_time() - t)
            base = np.array(cpu["none"])
            step_ms = 1e3 * np.median(base) / steps
            print(f"batch {batch}: plain epoch {1e3 * np.median(base):.1f} ms CPU "
                  f"({step_ms:.3f} ms per step), {probes} probes")
            for c in list(CASES)[1:]:
                extra = 1e3 * np.median((np.array(cpu[c]) - base) / probes)
                print(f"  {c:14s} {extra:7.2f} ms per probe = {extra / step_ms:6.1f} steps; "
                      f"epoch x{np.median(np.array(cpu[c]) / base):.3f}")


if __name__ == "__main__":
    main()
