"""The instruments dashboard (vgfast.analysis.plot_instruments) and `vgfast reproduce
instruments`: the figure draws exactly what train() recorded."""
import json

import numpy as np
import pytest

import vgfast
from vgfast.analysis import INSTRUMENTS, plot_instruments

pytest.importorskip("matplotlib")


def trained_history(record=INSTRUMENTS):
    rng = np.random.default_rng(0)
    X, y = rng.random((200, 16)), rng.integers(0, 4, 200)
    net = vgfast.Network([16, 12, 8, 4], seed=0)
    return vgfast.train(net, X, y, epochs=2, batch_size=10, record=record, record_every=5,
                        seed=0, probe_every=7)


def test_every_panel_draws_the_recorded_numbers():
    h = trained_history()
    fig = plot_instruments(h)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == 11
    drawn = {ax.get_title(): [line.get_ydata() for line in ax.get_lines()] for ax in axes}
    np.testing.assert_array_equal(drawn["mini-batch cost"][0], h.cost)
    gsnr = drawn["mean GSNR per layer"]
    assert len(gsnr) == h.layer_gsnr.shape[1] == 3
    for l, line in enumerate(gsnr):
        np.testing.assert_array_equal(line, h.layer_gsnr[:, l])
    tests = drawn["gradient tests (Cockpit)"]
    for line, name in zip(tests, ("norm_test", "inner_test", "ortho_test")):
        np.testing.assert_array_equal(line, getattr(h, name))
    noise = drawn["noise scale B_simple = tr Σ / |G|²"]
    np.testing.assert_array_equal(noise[0], h.noise_scale)
    np.testing.assert_array_equal(noise[1], h.gns)
    np.testing.assert_array_equal(drawn["α, normalised step length (Cockpit)"][0], h.alpha)
    curv = drawn["curvature of the mini-batch cost"]
    np.testing.assert_array_equal(curv[0], h.hessian_max)
    np.testing.assert_array_equal(curv[1], h.hessian_trace)
    hist = drawn["gradient elements, |g| ≥ 1e-20 (first ⋯, last —)"]
    for l in range(3):  # last probe solid, first dotted, per layer; bin 0 (zeros) left out
        for line, k in ((hist[2 * l], -1), (hist[2 * l + 1], 0)):
            np.testing.assert_allclose(line, h.grad_hist[k, l, 1:] / h.grad_hist[k, l, 1:].sum(),
                                       rtol=1e-15)
    probed = {"α, normalised step length (Cockpit)", "curvature of the mini-batch cost"}
    for ax in axes:
        if ax.get_title().startswith("gradient elements"):
            continue
        want = h.probe_steps if ax.get_title() in probed else h.record_steps
        for line in ax.get_lines():
            if len(line.get_xdata()) == 2 and ax.get_title() in probed:
                continue  # the alpha = 0 reference line
            np.testing.assert_array_equal(line.get_xdata(), want)


def test_only_what_was_recorded_is_drawn_and_an_empty_history_is_refused(tmp_path):
    h = trained_history(("cost", "distance"))
    fig = plot_instruments(h, path=tmp_path / "d.png")
    assert len([ax for ax in fig.axes if ax.get_visible()]) == 2
    assert (tmp_path / "d.png").stat().st_size > 0
    with pytest.raises(ValueError, match="none of the dashboard's quantities"):
        plot_instruments(vgfast.History())


def test_reproduce_instruments_quick(tmp_path):
    from vgfast.reproduce import main
    assert main(["instruments", "--quick", "--subset", "--out", str(tmp_path),
                 "--no-progress"]) == 0
    r = json.loads((tmp_path / "instruments.json").read_text())["results"]
    g = np.array(r["layer_gsnr"], dtype=float)
    assert g.shape == (len(r["record_steps"]), 5)
    assert (tmp_path / "instruments.png").exists()
    assert "9. Training instruments" in (tmp_path / "report.md").read_text()
