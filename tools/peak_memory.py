"""Peak memory of one training epoch on a ~1 GB dataset, relative to the dataset's size.

    python tools/peak_memory.py                    # 170,000 x 784 float64 (1.07 GB), batch 100
    python tools/peak_memory.py --rows 50000 --cases default

Each case runs in a fresh process (ru_maxrss only grows) that builds the dataset in place
(no temporaries), records the peak RSS so far (the baseline: interpreter + libraries + data),
trains one epoch of a [784, 100, 10] network, and records the peak RSS again. The difference is
what train() adds on top of the data it was given; tracemalloc's peak during train() shows the
same from the allocation side (numpy reports its buffers to tracemalloc).

Cases
-----
default     train(net, X, y, epochs=1, batch_size=100)         (monitor=True: full-set cost and
                                                                accuracy after the epoch)
no-monitor  the same with monitor=False
float32     X float64 into a float32 network (train() converts: one float32 copy of X)
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time
import tracemalloc

MB = 2 ** 20
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # the package built in place in the repository
    sys.path.insert(0, ROOT)


def rss_peak():
    """Peak resident set size of this process in bytes (Linux reports kilobytes)."""
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r * 1024 if sys.platform != "darwin" else r


def rss_now():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None


def child(case, rows, cols, batch, hidden):
    import numpy as np

    import vgfast

    rng = np.random.default_rng(0)
    X = np.empty((rows, cols))
    for i in range(0, rows, 10_000):  # fill in place, chunk by chunk: no temporary copies
        rng.random(out=X[i:i + 10_000])
    y = rng.integers(0, 10, rows)
    dtype = "float32" if case == "float32" else "float64"
    net = vgfast.Network([cols, hidden, 10], dtype=dtype, seed=0)
    base_peak, base_now = rss_peak(), rss_now()
    tracemalloc.start()
    t0 = time.perf_counter()
    vgfast.train(net, X, y, epochs=1, batch_size=batch, monitor=(case != "no-monitor"),
                 optimizer=vgfast.SGD(0.1), seed=0)
    seconds = time.perf_counter() - t0
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(json.dumps({"case": case, "data": X.nbytes, "base_peak": base_peak,
                      "base_now": base_now, "peak": rss_peak(), "traced_peak": traced_peak,
                      "seconds": seconds, "workspace": net._engine.workspace_bytes}))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=170_000)
    ap.add_argument("--cols", type=int, default=784)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--hidden", type=int, default=100)
    ap.add_argument("--cases", nargs="+", default=["default", "no-monitor", "float32"],
                    choices=["default", "no-monitor", "float32"])
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(a.child, a.rows, a.cols, a.batch, a.hidden)
        return
    print(f"dataset {a.rows} x {a.cols} float64 = {a.rows * a.cols * 8 / MB:.0f} MB; "
          f"network [{a.cols}, {a.hidden}, 10]; one epoch, batch {a.batch}")
    print(f"{'case':<11} {'baseline':>9} {'peak':>9} {'train adds':>11} {'x data':>7} "
          f"{'traced':>9} {'x data':>7} {'time':>6}")
    for case in a.cases:
        out = subprocess.run([sys.executable, __file__, "--child", case, "--rows", str(a.rows),
                              "--cols", str(a.cols), "--batch", str(a.batch), "--hidden",
                              str(a.hidden)], capture_output=True, text=True,
                             env=dict(os.environ))
        if out.returncode:
            print(f"{case}: failed\n{out.stderr}", file=sys.stderr)
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        d = r["data"]
        add = r["peak"] - r["base_peak"]
        print(f"{case:<11} {r['base_peak'] / MB:>7.0f}MB {r['peak'] / MB:>7.0f}MB "
              f"{add / MB:>9.0f}MB {add / d:>7.3f} {r['traced_peak'] / MB:>7.0f}MB "
              f"{r['traced_peak'] / d:>7.3f} {r['seconds']:>5.1f}s")
        print(f"{'':<11} peak RSS / dataset = {r['peak'] / d:.3f}; engine workspace "
              f"{r['workspace'] / 1024:.0f} KB")


if __name__ == "__main__":
    main()
