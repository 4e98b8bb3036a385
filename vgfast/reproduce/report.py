"""The writer: one experiment -> DIR/<name>.json and its figures; every JSON in DIR ->
report.md and report.html; run() runs a list of experiments and rebuilds the report."""
import base64
import html
import json
import os
import re
import time
from contextlib import nullcontext

from .. import __version__
from .common import _jsonable
from .config import Config
from .drawing import FigureProcess
from .jobs import (Schedule, _single_thread_blas, _workers, check_scheduler, run_plan,
                   scheduler_session, uses_dask)
from .registry import EXPERIMENTS, default_experiments


def run_experiment(name, cfg, out):
    """Compute one experiment, write DIR/<name>.json and its figures; return the JSON dict."""
    exp = EXPERIMENTS[name]
    t0, c0 = time.perf_counter(), time.process_time()
    remote = [] if uses_dask(cfg.scheduler) else None  # CPU seconds of jobs run elsewhere
    results = run_plan(exp.plan, cfg, remote) if exp.plan is not None else exp.compute(cfg)
    cpu = time.process_time() - c0 + sum(remote or ())
    return _write_experiment(name, cfg, out, results, time.perf_counter() - t0, cpu)


def _write_experiment(name, cfg, out, results, seconds, cpu_seconds, figures=None):
    """DIR/<name>.json and the figures of computed results (drawn here unless given); the
    JSON dict."""
    exp = EXPERIMENTS[name]
    results = _jsonable(results)
    if figures is None:
        figures = exp.figures(results, out)
    doc = {"experiment": name, "title": exp.title, "vgfast": __version__,
           "settings": {"quick": cfg.quick, "seeds": cfg.n_seeds, "mnist": cfg.mnist,
                        "subset": cfg.subset, "command": _command(name, cfg)},
           "seconds": round(seconds, 3), "cpu_seconds": round(cpu_seconds, 3),
           "results": results, "figures": figures}
    with open(os.path.join(out, f"{name}.json"), "w") as f:
        json.dump(doc, f, indent=1, allow_nan=False)
    return doc


def _run_scheduled(names, cfg, out):
    """Every experiment's jobs on one pool of threads (:class:`~.jobs.Schedule`), longest
    first; each experiment's figures drawn in a child process (:mod:`.drawing`) as soon as its
    results are in, and its JSON written when they are drawn.

    An experiment's ``seconds`` is then the time from the start of the run to its results (they
    overlap), ``cpu_seconds`` the CPU time of its jobs and its own code.
    """
    t0 = time.perf_counter()
    planned = [n for n in names if EXPERIMENTS[n].plan is not None]
    computed, done = {}, {}
    drawing = FigureProcess()
    schedule = Schedule(_workers(cfg, cfg.n_jobs), cfg.progress)

    def computed_one(name, results, cpu):
        computed[name] = (_jsonable(results), time.perf_counter() - t0, cpu)
        drawing.submit(name, computed[name][0], out)
        write(drawing.collect())

    def write(drawn):
        for name, figures in drawn:
            results, seconds, cpu = computed[name]
            done[name] = _write_experiment(name, cfg, out, results, seconds, cpu, figures)

    try:
        for name in planned:
            schedule.add(name, EXPERIMENTS[name].plan, cfg)
        for name in names:  # no training: a fraction of a second each, while the pool works
            if name not in planned:
                c = time.thread_time()
                computed_one(name, EXPERIMENTS[name].compute(cfg), time.thread_time() - c)
        for name, results, cpu in schedule.finished():
            computed_one(name, results, cpu)
        write(drawing.collect(wait=True))
    finally:
        schedule.close()
        drawing.close()
    return {name: done[name] for name in names}


def _command(name, cfg):
    parts = ["vgfast reproduce", name]
    if cfg.quick:
        parts.append("--quick")
    if cfg.seeds is not None:
        parts.append(f"--seeds {cfg.seeds}")
    if cfg.mnist:
        parts.append(f"--mnist {cfg.mnist}")
    if cfg.subset:
        parts.append("--subset")
    if cfg.fashion and name == "fashion":
        parts.append(f"--fashion {cfg.fashion}")
    return " ".join(parts)


def _load_docs(out):
    docs = []
    for name in EXPERIMENTS:
        path = os.path.join(out, f"{name}.json")
        if os.path.isfile(path):
            with open(path) as f:
                docs.append(json.load(f))
    return docs


_INTRO = ("Reproduction of the experiments of Michael Nielsen, *Neural Networks and Deep "
          "Learning*, ch. 5 \"Why are deep neural networks hard to train?\", the lecture "
          "\"Exploding and vanishing gradients\", Glorot & Bengio (2010) and He et al. (2015), "
          "with vgfast {version}. Every number is in the JSON file of its section; figures are "
          "PNG files in this directory. Spreads are mean ± sample standard deviation over "
          "seeds.")


def _meta_line(doc):
    s = doc["settings"]
    cost = (f"{doc['cpu_seconds']:.1f} s of CPU time" if "cpu_seconds" in doc else
            f"{doc['seconds']:.1f} s")
    return (f"`{s['command']}` — {'quick' if s['quick'] else 'full'} mode, {cost}; numbers in "
            f"`{doc['experiment']}.json`.")


def render_markdown(docs):
    lines = ["# vgfast: why are deep neural networks hard to train?", "",
             _INTRO.format(version=__version__), ""]
    for doc in docs:
        lines += [f"## {doc['title']}", "", f"*{_meta_line(doc)}*", ""]
        for block in EXPERIMENTS[doc["experiment"]].section(doc["results"]):
            if block[0] == "p":
                lines += [block[1], ""]
            elif block[0] == "table":
                head, rows = block[1], block[2]
                lines.append("| " + " | ".join(h.replace("|", "\\|") for h in head) + " |")
                lines.append("|" + "|".join("---" for _ in head) + "|")
                lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |"
                          for row in rows]
                lines.append("")
        for fig in doc["figures"]:
            lines += [f"![{fig['caption']}]({fig['file']})", "", f"*{fig['caption']}*", ""]
    return "\n".join(lines)


def _inline_html(text):
    text = html.escape(text)
    text = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)
    text = re.sub(r"`(.+?)`", r"<code>\1</code>", text)
    return re.sub(r"\*(.+?)\*", r"<em>\1</em>", text)


def render_html(docs, out):
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             "<title>vgfast reproduce</title>",
             "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;"
             "line-height:1.45;padding:0 1em}table{border-collapse:collapse;margin:1em 0;"
             "font-size:90%}td,th{border:1px solid #bbb;padding:3px 8px;text-align:left}"
             "th{background:#eee}img{max-width:100%}figcaption{font-style:italic;"
             "color:#444}.meta{color:#666;font-size:90%}</style></head><body>",
             "<h1>vgfast: why are deep neural networks hard to train?</h1>",
             f"<p>{_inline_html(_INTRO.format(version=__version__))}</p>"]
    for doc in docs:
        parts.append(f'<h2 id="{doc["experiment"]}">{html.escape(doc["title"])}</h2>')
        parts.append(f'<p class="meta">{_inline_html(_meta_line(doc))}</p>')
        for block in EXPERIMENTS[doc["experiment"]].section(doc["results"]):
            if block[0] == "p":
                parts.append(f"<p>{_inline_html(block[1])}</p>")
            elif block[0] == "table":
                parts.append("<table><tr>" + "".join(f"<th>{_inline_html(h)}</th>"
                                                      for h in block[1]) + "</tr>")
                parts += ["<tr>" + "".join(f"<td>{_inline_html(c)}</td>" for c in row) + "</tr>"
                          for row in block[2]]
                parts.append("</table>")
        for fig in doc["figures"]:
            with open(os.path.join(out, fig["file"]), "rb") as f:
                data = base64.b64encode(f.read()).decode("ascii")
            parts.append(f'<figure><img alt="{html.escape(fig["file"])}" '
                         f'title="{html.escape(fig["file"])}" src="data:image/png;base64,{data}">'
                         f"<figcaption>{_inline_html(fig['caption'])}</figcaption></figure>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(out):
    """Rebuild DIR/report.md and DIR/report.html from every <name>.json in DIR."""
    docs = _load_docs(out)
    with open(os.path.join(out, "report.md"), "w", encoding="utf-8") as f:
        f.write(render_markdown(docs))
    with open(os.path.join(out, "report.html"), "w", encoding="utf-8") as f:
        f.write(render_html(docs, out))
    return docs


def run(experiments=None, out="vgfast-report", cfg=None):
    """Run experiments (default all) into `out`, rebuild the report; {name: JSON dict}.

    BLAS is held to one thread (when threadpoolctl is installed) and independent training
    runs go to parallel threads instead: faster for these small matrices, and every number
    is the same whatever ``cfg.jobs`` is. The runs of all the experiments share one pool of
    ``cfg.n_jobs`` threads, the longest first, and each experiment's figures are drawn as soon
    as its runs are done, while the pool goes on with the others. With ``cfg.scheduler`` set
    to ``"processes"`` or a Dask address the runs go to Dask instead, experiment after
    experiment (one cluster or client for all of them), with the same numbers.
    """
    cfg = cfg or Config()
    check_scheduler(cfg.scheduler)
    names = default_experiments(cfg) if not experiments else list(experiments)
    unknown = [n for n in names if n not in EXPERIMENTS]
    if unknown:
        raise ValueError(f"unknown experiment(s) {unknown}; choose from {list(EXPERIMENTS)}")
    os.makedirs(out, exist_ok=True)
    limit = _single_thread_blas()
    done = {}
    with (limit() if limit is not None else nullcontext()), scheduler_session(cfg):
        if uses_dask(cfg.scheduler):
            for name in names:
                done[name] = run_experiment(name, cfg, out)
        else:
            done = _run_scheduled(names, cfg, out)
    write_report(out)
    return done


