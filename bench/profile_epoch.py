"""Train the bench workload in a loop, for a sampling profiler: where does an epoch go?

    perf record -o /tmp/epoch.data python bench/profile_epoch.py --batch 10 --dtype float64
    perf report -i /tmp/epoch.data --no-children --sort symbol

One BLAS thread, train() with default arguments, as in bench/test_epoch.py; ``--record`` adds
recorded quantities (``--record trace_cov noise_scale norm_test update_size distance
--record-every step``: what issue 12's recording costs, kernel by kernel).
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.modules.setdefault("torch", None)  # the workloads' PyTorch peer is not needed here

import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

import _workloads as W  # noqa: E402
import vgfast  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=10)
    ap.add_argument("--dtype", default="float64", choices=W.DTYPES)
    ap.add_argument("--epochs", type=int, default=100, help="train() calls of one epoch each")
    ap.add_argument("--record", nargs="*", default=(), help="names for train(record=...)")
    ap.add_argument("--record-every", default="epoch", help="'epoch', 'step' or an int")
    args = ap.parse_args(argv)
    every = args.record_every if args.record_every in ("epoch", "step") else int(args.record_every)
    kw = dict(record=tuple(args.record), record_every=every) if args.record else {}
    X, y = W.make_data()
    X = np.ascontiguousarray(X, dtype=args.dtype)
    net = vgfast.Network(W.SIZES, dtype=args.dtype, seed=0)
    with threadpool_limits(1, "blas"):
        for _ in range(args.epochs):
            vgfast.train(net, X, y, epochs=1, batch_size=args.batch, seed=0, **kw)


if __name__ == "__main__":
    main()
