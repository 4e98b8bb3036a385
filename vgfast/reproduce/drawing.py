"""The figures of :func:`vgfast.reproduce.run`, drawn in a child Python process while the job
threads train.

matplotlib holds the GIL while it lays out and renders a figure, and a training job needs the
GIL for the Python of every epoch between two engine calls: drawn in the process that runs the
job threads, the figures stall them (measured on 2 cores: a 500-epoch ``speed`` job took 7-8 s
instead of 2.3 s while figures were drawn beside it; with the figures in another process, 2.3
s). So a child process draws them: this process sends each experiment's results down a pipe as
one JSON line, the child calls the experiment's ``figures(results, out)`` (the same code on
the same numbers: JSON gives floats back exactly), writes the PNG files and answers with the
list of figures. If the child cannot be started, or fails, the figures are drawn here.
"""
import json
import os
import queue
import subprocess
import sys
import threading

from .registry import EXPERIMENTS

__all__ = ["FigureProcess"]

_PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class FigureProcess:
    """A child process drawing figures: ``submit(name, results, out)``, then ``collect()``
    yields ``(name, figures)`` as they are drawn (``wait=True``: all of them)."""

    def __init__(self):
        self._replies = queue.Queue()
        self._pending = {}  # name -> (results, out)
        self._child = None
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1", MPLBACKEND="Agg")
        code = (f"import sys; sys.path.insert(0, {_PACKAGE_PARENT!r}); "
                f"from vgfast.reproduce.drawing import _serve; _serve()")
        try:
            self._child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                                           stdout=subprocess.PIPE, env=env, text=True,
                                           encoding="utf-8")
        except OSError:
            return
        self._requests = queue.Queue()
        for target, stream in ((self._read, self._child.stdout),
                               (self._write, self._child.stdin)):
            threading.Thread(target=target, args=(stream,), daemon=True).start()

    def _read(self, stream):
        for line in stream:
            self._replies.put(json.loads(line))
        self._replies.put(None)  # the child has ended

    def _write(self, stream):
        """Send the requests (a line can be a megabyte: written here, not in the caller)."""
        try:
            while (line := self._requests.get()) is not None:
                stream.write(line)
                stream.flush()
            stream.close()
        except OSError:  # the child has gone: _read reports it
            pass

    def submit(self, name, results, out):
        """Draw the figures of `name` from its (JSON-ready) results into directory `out`."""
        self._pending[name] = (results, out)
        if self._child is None:
            self._replies.put({"name": name, "here": True})
            return
        self._requests.put(json.dumps({"name": name, "results": results,
                                       "out": os.path.abspath(out)}) + "\n")

    def collect(self, wait=False):
        """Yield (name, figures) for every experiment drawn so far (with `wait`: all)."""
        while self._pending:
            try:
                reply = self._replies.get(block=wait)
            except queue.Empty:
                return
            if reply is None:  # the child ended before answering: draw the rest here
                self._stop()
                for name in list(self._pending):
                    self._replies.put({"name": name, "here": True})
                continue
            name = reply["name"]
            results, out = self._pending.pop(name)
            if "figures" in reply:
                yield name, reply["figures"]
            elif "here" in reply:
                yield name, EXPERIMENTS[name].figures(results, out)
            else:
                raise RuntimeError(f"drawing the figures of {name!r} failed:\n{reply['error']}")

    def _stop(self):
        child, self._child = self._child, None
        if child is not None:
            self._requests.put(None)  # the writer closes the child's stdin: it ends
            child.wait()

    def close(self):
        """End the child (after the figures it is drawing)."""
        self._stop()


def _serve():
    """The child: draw the figures asked for on stdin, one JSON line each, until EOF."""
    import signal
    import traceback

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's: it closes our stdin
    replies = sys.stdout
    sys.stdout = sys.stderr  # anything else printed goes to the terminal, not the replies
    for line in sys.stdin:
        request = json.loads(line)
        name = request["name"]
        try:
            reply = {"name": name,
                     "figures": EXPERIMENTS[name].figures(request["results"], request["out"])}
        except Exception:
            reply = {"name": name, "error": traceback.format_exc()}
        replies.write(json.dumps(reply) + "\n")
        replies.flush()
