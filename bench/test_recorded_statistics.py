"""Issue 12's first-order quantities recorded every step inside train()'s loop, beside torch.func.

Workload: ``[784, 30, 30, 30, 10]``, sigmoid everywhere, cross-entropy, SGD lr 0.1, one epoch of
10,000 MNIST-shaped rows (bench/_workloads.py) in mini-batches of 100 (100 steps), float64 and
float32, one BLAS thread and one torch thread; ``train()`` with its defaults otherwise (running
cost and accuracy, seed 0). Runners, each an epoch's worth of work (100 mini-batches of 100):

- **plain**: ``vgfast.train(net, X, y, batch_size=100)``, nothing recorded;
- **economy**: ``record=ECONOMY`` (``norm_test``, ``noise_scale``, ``trace_cov``,
  ``update_size``, ``distance``), ``record_every="step"`` and ``"epoch"``;
- **first-order**: ``record=FIRST_ORDER`` (adding ``inner_test``, ``ortho_test``, ``gsnr`` and
  the per-layer ``layer_trace_cov``, ``layer_noise_scale``, ``layer_norm_test``,
  ``layer_gsnr``), ``record_every="step"`` and ``"epoch"``;
- **torch.func**: the same quantities from ``vmap(grad(loss))`` and the sums
  (``bench/_torch_func.py``) on one mini-batch of 100, called 100 times;
- **torch**: PyTorch's own plain training epoch (``_workloads.Torch``), the reference step.

Per step, vgfast's cost of the quantities is (first-order epoch - plain epoch) / 100 and its
whole recording step the first-order epoch / 100; torch.func's is one call, and a torch step
that records them costs torch.func + the plain torch step. Before timing, the suite checks that
one recording step of train() on the first 100 rows gives torch.func's values on those rows at
the initial parameters (rtol 1e-9 in float64, 1e-4 in float32), and update_size = distance =
lr ||gbar||.

Run: ``python -m pytest bench/test_recorded_statistics.py --benchmark-only
--benchmark-group-by=group`` or ``python bench/test_recorded_statistics.py [--rounds N]`` for the
tables of bench/README.md (interleaved rounds in a rotating order, CPU time: every runner is
single-threaded; medians of the per-round ratios).
"""
import os
import sys
import time

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import _workloads as W  # noqa: E402
from _torch_func import TorchStatistics  # noqa: E402

import vgfast  # noqa: E402

BATCH = 100
STEPS = W.N_ROWS // BATCH
DTYPES = ("float64", "float32")
ECONOMY = ("norm_test", "noise_scale", "trace_cov", "update_size", "distance")
FIRST_ORDER = ECONOMY + ("inner_test", "ortho_test", "gsnr", "layer_trace_cov",
                         "layer_noise_scale", "layer_norm_test", "layer_gsnr")
STATS = [k for k in FIRST_ORDER if k not in ("update_size", "distance")]
RTOL = {"float64": 1e-9, "float32": 1e-4}


class TorchFuncEpoch:
    """torch.func's quantities for one mini-batch of BATCH rows, computed `calls` times (an
    epoch's worth of steps): the per-step cost of recording them in a PyTorch loop."""
    name = "torch.func"

    def __init__(self, X, y, dtype, calls=STEPS):
        net = vgfast.Network(W.SIZES, seed=0, dtype=dtype)
        self.stats = TorchStatistics(net, X[:BATCH], y[:BATCH])
        self.calls = calls

    def reset(self):
        pass

    def run(self):
        for _ in range(self.calls):
            self.stats()


def runners(dtype, X, y):
    """{name: runner with reset() and run()}: one epoch's worth of steps each."""
    Xd = np.ascontiguousarray(X, dtype=dtype)
    out = {"plain": W.Engine(Xd, y, dtype, BATCH)}
    for label, names in (("economy", ECONOMY), ("first-order", FIRST_ORDER)):
        for every in ("step", "epoch"):
            out[f"{label} {every}"] = W.Engine(Xd, y, dtype, BATCH, record=names,
                                               record_every=every)
    if W.torch is not None:
        out["torch.func"] = TorchFuncEpoch(Xd, y, dtype)
        out["torch"] = W.Torch(Xd, y, dtype, BATCH)
    return out


def check_agree(dtype):
    """One recording step of train() on the first BATCH rows equals torch.func on those rows
    at the parameters before the step; update_size and distance are lr ||gbar|| (plain SGD)."""
    if W.torch is None:
        return
    X, y = W.make_data()
    Xb, yb = np.ascontiguousarray(X[:BATCH], dtype), y[:BATCH]
    net = vgfast.Network(W.SIZES, seed=0, dtype=dtype)
    theirs = {k: v.double().numpy() for k, v in TorchStatistics(net, Xb, yb)().items()}
    h = vgfast.train(net, Xb, yb, epochs=1, batch_size=BATCH, optimizer=vgfast.SGD(W.LR),
                     record=FIRST_ORDER, record_every="step", shuffle=False)
    rtol = RTOL[dtype]
    for k in STATS:
        np.testing.assert_allclose(getattr(h, k)[0], theirs[k], rtol=rtol, atol=0, err_msg=k)
    for k in ("update_size", "distance"):
        np.testing.assert_allclose(getattr(h, k)[0], W.LR * theirs["grad_norm"], rtol=rtol,
                                   atol=0, err_msg=k)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("runner", ["plain", "economy step", "economy epoch", "first-order step",
                                    "first-order epoch", "torch.func", "torch"])
def test_recorded_statistics(benchmark, mnist_data, runner, dtype):
    if runner.startswith("torch") and W.torch is None:
        pytest.skip("torch is not installed")
    check_agree(dtype)
    r = runners(dtype, *mnist_data(dtype))[runner]
    benchmark.group = f"recorded statistics {dtype}: {STEPS} steps of batch {BATCH}"
    benchmark.extra_info.update(runner=runner, dtype=dtype, batch=BATCH, steps=STEPS)
    benchmark.pedantic(r.run, setup=r.reset, rounds=5, warmup_rounds=1, iterations=1)


# ------------------------------------------------------------------------------------ report

def measure(rounds, turns=5):
    """{dtype: {runner: [CPU seconds of one epoch's worth, per round]}}.

    In each round the runners of both dtypes take turns, the order rotating from round to round
    (reset() is never timed); vgfast's epochs (20-80 ms) take `turns` turns within the round
    and keep the round's best, torch's runners (0.8-1.7 s) run once."""
    X, y = W.make_data()
    rs = {(dt, k): r for dt in DTYPES for k, r in runners(dt, X, y).items()}
    keys = list(rs)
    for r in rs.values():  # warm-up: workspaces, caches, torch's first calls
        r.reset()
        r.run()
    times = {k: [] for k in keys}
    for i in range(rounds):
        order = keys[i % len(keys):] + keys[:i % len(keys)]
        best = {}
        for turn in range(turns):
            for k in order:
                if turn and k[1].startswith("torch"):
                    continue
                rs[k].reset()
                t0 = time.process_time()
                rs[k].run()
                best[k] = min(best.get(k, np.inf), time.process_time() - t0)
        for k in keys:
            times[k].append(best[k])
    return {dt: {k: np.array(times[d, k]) for d, k in times if d == dt} for dt in DTYPES}


def ratios(t):
    """Per-round ratios (arrays over rounds) of one dtype's times t."""
    plain, rec = t["plain"], t["first-order step"]
    out = {f"{k} / plain": t[k] / plain for k in ("economy step", "economy epoch",
                                                  "first-order step", "first-order epoch")}
    out["stats per step"] = (rec - plain) / STEPS
    if "torch.func" in t:
        tf, ts = t["torch.func"] / STEPS, t["torch"] / STEPS
        out["torch.func / vgfast stats"] = tf / out["stats per step"]
        out["torch.func / vgfast recording step"] = tf / (rec / STEPS)
        out["torch step + torch.func / vgfast recording step"] = (tf + ts) / (rec / STEPS)
        out["torch step / vgfast plain step"] = ts / (plain / STEPS)
    return out


def report(rounds=15, turns=5):
    from threadpoolctl import threadpool_limits

    if W.torch is not None:
        W.torch.set_num_threads(1)
    with threadpool_limits(1, "blas"):
        for dt in DTYPES:
            check_agree(dt)
        times = measure(rounds, turns)
    med = np.median
    print(f"{W.SIZES}, sigmoid, cross-entropy, SGD {W.LR}, {W.N_ROWS} rows in mini-batches of "
          f"{BATCH}; 1 BLAS / 1 torch thread; CPU time; {rounds} interleaved rounds (vgfast: best "
          f"of {turns} turns in each); times are medians per step, ratios medians of the "
          f"per-round ratios (min-max in brackets)\n")
    print("(a) every first-order quantity every step, against torch.func on the same batch\n")
    print("| dtype | vgfast plain step ms | vgfast recording step ms | vgfast: the quantities ms "
          "| torch.func ms | torch plain step ms | torch.func ÷ vgfast quantities | torch.func ÷ "
          "vgfast recording step | (torch step + torch.func) ÷ vgfast recording step |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    rs = {dt: ratios(times[dt]) for dt in DTYPES}

    def cell(x, fmt="{:.1f}x"):
        return f"{fmt.format(med(x))} ({fmt.format(x.min())}–{fmt.format(x.max())})"

    for dt in DTYPES:
        t, r = times[dt], rs[dt]
        ms = lambda k: f"{med(t[k]) / STEPS * 1e3:.3f}"  # noqa: E731
        row = [dt, ms("plain"), ms("first-order step"), f"{med(r['stats per step']) * 1e3:.3f}"]
        if "torch.func" in t:
            row += [ms("torch.func"), ms("torch"), cell(r["torch.func / vgfast stats"]),
                    cell(r["torch.func / vgfast recording step"]),
                    cell(r["torch step + torch.func / vgfast recording step"])]
        else:
            row += ["—"] * 5
        print("| " + " | ".join(row) + " |")
    print("\n(b) recording epoch ÷ plain epoch (train()'s defaults otherwise)\n")
    print("| dtype | plain epoch ms | economy, every step | economy, per epoch | first-order, "
          "every step | first-order, per epoch |")
    print("|---|---:|---:|---:|---:|---:|")
    for dt in DTYPES:
        r = rs[dt]
        cells = [cell(r[f"{k} / plain"], "{:.3f}x") for k in
                 ("economy step", "economy epoch", "first-order step", "first-order epoch")]
        print(f"| {dt} | {med(times[dt]['plain']) * 1e3:.1f} | " + " | ".join(cells) + " |")
    return times


BREAKDOWN = {"update_size": ("update_size",), "distance": ("distance",),
             "trace_cov": ("trace_cov",), "economy": ECONOMY,
             "economy + gsnr": ECONOMY + ("gsnr",),
             "economy + inner_test, ortho_test": ECONOMY + ("inner_test", "ortho_test"),
             "first-order": FIRST_ORDER}


def breakdown(rounds=15, turns=3):
    """What each recorded name costs on its own (record_every="step"), as the per-step extra
    over the plain epoch (median over interleaved rounds of each round's best of `turns`)."""
    from threadpoolctl import threadpool_limits

    X, y = W.make_data()
    print(f"per-step extra CPU time over the plain step, record_every='step', batch {BATCH} "
          f"({rounds} rounds, best of {turns} per round, medians)\n")
    print("| recorded | " + " | ".join(f"{dt} µs (× plain)" for dt in DTYPES) + " |")
    print("|---|" + "---:|" * len(DTYPES))
    res = {}
    with threadpool_limits(1, "blas"):
        for dt in DTYPES:
            Xd = np.ascontiguousarray(X, dtype=dt)
            rs = {"plain": W.Engine(Xd, y, dt, BATCH)}
            rs.update({k: W.Engine(Xd, y, dt, BATCH, record=v, record_every="step")
                       for k, v in BREAKDOWN.items()})
            t = {k: [] for k in rs}
            for r in rs.values():
                r.reset()
                r.run()
            for i in range(rounds):
                best = {}
                for _ in range(turns):
                    for k, r in rs.items():
                        r.reset()
                        t0 = time.process_time()
                        r.run()
                        best[k] = min(best.get(k, np.inf), time.process_time() - t0)
                for k in rs:
                    t[k].append(best[k])
            t = {k: np.array(v) for k, v in t.items()}
            res[dt] = {k: (np.median((t[k] - t["plain"]) / STEPS), np.median(t[k] / t["plain"]))
                       for k in BREAKDOWN}
            res[dt]["plain"] = (np.median(t["plain"]) / STEPS, 1.0)
    for k in ("plain",) + tuple(BREAKDOWN):
        print(f"| {k} | " + " | ".join(
            (f"{res[dt][k][0] * 1e6:.0f} (step)" if k == "plain" else
             f"{res[dt][k][0] * 1e6:+.0f} ({res[dt][k][1]:.3f}x)") for dt in DTYPES) + " |")
    return res


if __name__ == "__main__":
    import argparse

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--turns", type=int, default=5, help="vgfast epochs per runner per round")
    p.add_argument("--breakdown", action="store_true",
                   help="instead: the per-step cost of each recorded name on its own")
    a = p.parse_args()
    if a.breakdown:
        breakdown(a.rounds, min(a.turns, 3))
    else:
        report(a.rounds, a.turns)
