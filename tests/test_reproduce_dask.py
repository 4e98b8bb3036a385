"""`vgfast reproduce --scheduler`: the training jobs of an experiment sent to Dask worker
processes give the same numbers, figures and report as the default threads."""
import json
import logging
import os
import re

import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("mlxtend")
distributed = pytest.importorskip("distributed")

from vgfast import reproduce  # noqa: E402

# 3 and 7 training jobs; array and dict results; optimiser factories that must pickle
EXPERIMENTS = ("speed", "cures")


def _main(out, *args):
    return reproduce.main([*EXPERIMENTS, "--quick", "--subset", "--out", str(out),
                           "--no-progress", *args])


def _outputs(out):
    """{file: content} with the timings (the only thing allowed to differ) taken out."""
    files = {}
    for name in sorted(os.listdir(out)):
        path = os.path.join(out, name)
        if name.endswith(".json"):
            with open(path) as f:
                doc = json.load(f)
            doc.pop("seconds")
            doc.pop("cpu_seconds")
            files[name] = doc
        elif name == "report.md":
            with open(path, encoding="utf-8") as f:
                files[name] = re.sub(r"mode, \d+\.\d s of CPU time", "mode, X s", f.read())
        elif name.endswith(".png"):
            with open(path, "rb") as f:
                files[name] = f.read()
    return files


@pytest.mark.slow
def test_same_numbers_on_dask_worker_processes_as_in_threads(tmp_path):
    assert _main(tmp_path / "threads") == 0
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=":0",
                                  silence_logs=logging.CRITICAL) as cluster, \
            distributed.Client(cluster) as client:
        with distributed.get_task_stream(client) as stream:
            assert _main(tmp_path / "dask", "--scheduler", cluster.scheduler_address) == 0
        workers = set(client.nthreads())
    ran = [t for t in stream.data if str(t["key"]).startswith("vgfast-reproduce-")]
    # every training job ran on a worker process of the cluster, not in this process
    assert sorted(str(t["key"]).split("-")[2] for t in ran) == ["cures"] * 7 + ["speed"] * 3
    assert {t["worker"] for t in ran} <= workers
    threads, dask = _outputs(tmp_path / "threads"), _outputs(tmp_path / "dask")
    assert sorted(threads) == sorted(dask)
    assert {"speed.json", "cures.json", "report.md", "cures.png", "speed_ratio.png"} <= set(dask)
    for name in threads:
        assert dask[name] == threads[name], name


def test_bad_scheduler_is_refused(tmp_path, capsys):
    assert reproduce.main(["speed", "--scheduler", "nowhere", "--out", str(tmp_path)]) == 2
    assert "--scheduler" in capsys.readouterr().err
    with pytest.raises(ValueError, match="scheduler must be"):
        reproduce.run(["speed"], str(tmp_path), reproduce.Config(quick=True, scheduler=3))
    assert not os.listdir(tmp_path)  # nothing written


@pytest.mark.skipif(os.name == "nt", reason="kills processes with SIGKILL")
def test_a_job_whose_worker_dies_is_run_again_then_reported(tmp_path):
    import sys

    import dask
    from vgfast.reproduce.jobs import Progress, _dask_map

    sys.path.insert(0, os.path.dirname(__file__))
    from _sweep_runs import die_once_job

    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                           host="127.0.0.1", dashboard_address=":0",
                                           silence_logs=logging.CRITICAL)
    with cluster, distributed.Client(cluster) as client:
        bar = Progress(3, "t", enabled=False)
        # job 1's worker dies once: it is run again and the results come back in job order
        out = _dask_map(client, die_once_job, [0, 1, 3], str(tmp_path), bar, "t")
        assert [result for result, cpu_seconds in out] == [0, 2, 6]
        assert os.path.exists(tmp_path / "died-1")
        # job 2 kills every worker it meets: after `retries` more tries, a clear error
        with pytest.raises(RuntimeError, match=r"job 0 \(2\) lost its Dask worker 2 time"):
            _dask_map(client, die_once_job, [2], str(tmp_path), bar, "t", retries=1)
        assert len([n for n in os.listdir(tmp_path) if n.startswith("dies-")]) == 2
