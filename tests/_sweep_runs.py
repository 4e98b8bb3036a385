"""Run functions for the sweep tests. A sweep's run must be a named function that worker
processes can import, so they live here, in a module that imports nothing heavy (each worker
process imports it)."""
import os
import signal
import time
import uuid


def logged_run(config):
    """Leaves one file per call in config['log'], named by the phase the test set, then returns
    x squared; raises for x == 'boom'."""
    log = config["log"]
    with open(os.path.join(log, "phase")) as f:
        phase = f.read()
    with open(os.path.join(log, f"{phase}-{config['x']}-{uuid.uuid4().hex}"), "w"):
        pass
    if config["x"] == "boom":
        raise ValueError("boom: this run fails on purpose")
    return {"y": config["x"] ** 2}


def calls(log, phase):
    """The x of every call made in `phase`: numbers sorted, then names sorted."""
    xs = [n.split("-")[1] for n in os.listdir(log) if n.startswith(f"{phase}-")]
    return sorted(int(x) for x in xs if x.isdigit()) + sorted(x for x in xs if not x.isdigit())


def set_phase(log, phase):
    with open(os.path.join(log, "phase"), "w") as f:
        f.write(phase)


def chaos_run(config):
    """ok: returns; raise: raises; victim: waits to be killed from outside the first time;
    suicide: kills its own worker process every time."""
    mode, marks = config["mode"], config["marks"]
    with open(os.path.join(marks, "starts"), "a") as f:
        f.write(f"{mode} {os.getpid()} {time.time()}\n")
    if mode == "raise":
        raise RuntimeError("this run fails on purpose")
    if mode == "victim":
        pidfile = os.path.join(marks, "victim.pid")
        if not os.path.exists(pidfile):
            with open(pidfile + ".tmp", "w") as f:
                f.write(str(os.getpid()))
            os.replace(pidfile + ".tmp", pidfile)
            time.sleep(60)  # killed long before this ends
    if mode == "suicide":
        with open(os.path.join(marks, "suicides"), "a") as f:
            f.write("x")
        os.kill(os.getpid(), signal.SIGKILL)
    return {"pid": os.getpid()}


def kill_the_victim(marks, stop):
    """SIGKILL the worker process running the 'victim' run, from outside it."""
    pidfile = os.path.join(marks, "victim.pid")
    while not stop.is_set():
        if os.path.exists(pidfile):
            with open(pidfile) as f:
                os.kill(int(f.read()), signal.SIGKILL)
            return
        time.sleep(0.02)


def die_once_job(job, marks):
    """A reproduce job (fn(job, data)): kills its own worker process the first time it runs for
    this job (leaving a mark in the directory `marks`), returns job * 2 after that."""
    mark = os.path.join(marks, f"died-{job}")
    if job == 1 and not os.path.exists(mark):
        with open(mark, "w"):
            pass
        os.kill(os.getpid(), signal.SIGKILL)
    if job == 2:
        with open(os.path.join(marks, f"dies-{uuid.uuid4().hex}"), "w"):
            pass
        os.kill(os.getpid(), signal.SIGKILL)
    return job * 2
