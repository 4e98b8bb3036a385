"""The engine's C kernels (csrc/vg_kernels.c), callable from the benchmarks.

Built together with _phase_driver.c, which loops the kernels over an epoch's steps for
phases.py.

vgfast exposes no bare kernel entry points except ``vgfast._core.optimizer_step``.
For the kernels it does not expose, this module compiles csrc/vg_kernels.c on its own into a
temporary shared library with the flags the extension is built with (Python's sysconfig CFLAGS
plus setup.py's -O3 -std=c99 -fno-math-errno) and loads it with ctypes. The machine code is then
the same as in vgfast/_core*.so up to inlining across the Cython boundary (the kernels are
called through extern functions there too). Returns None when no C compiler is available.
"""
import ctypes
import hashlib
import os
import shlex
import subprocess
import sysconfig
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CSRC = os.path.join(ROOT, "csrc")
SETUP_FLAGS = ["-O3", "-std=c99", "-fno-math-errno"]
_lib = None


def build_flags():
    cc = (sysconfig.get_config_var("CC") or "cc").split()
    cflags = shlex.split(sysconfig.get_config_var("CFLAGS") or "")
    return cc, cflags + ["-fPIC", "-shared"] + SETUP_FLAGS + ["-I", CSRC]


def load():
    """The ctypes library of csrc/vg_kernels.c, built once per source version, or None."""
    global _lib
    if _lib is not None:
        return _lib
    src = os.path.join(CSRC, "vg_kernels.c")
    driver = os.path.join(HERE, "_phase_driver.c")
    if not os.path.exists(src):
        return None
    h = hashlib.sha1()
    for path in [os.path.join(CSRC, n) for n in ("vg_kernels.c", "vg_kernels.h",
                                                  "vg_kernels_impl.h")] + [driver]:
        with open(path, "rb") as f:
            h.update(f.read())
    cc, flags = build_flags()
    with open(os.path.join(CSRC, "vg_kernels.h")) as f:
        header = f.read()
    # vg_opt_step(..., int64_t t) or, since the undo of overflowing updates, (..., t, T *old)
    opt_old = "int64_t t, T *old)" in " ".join(header.split())
    if opt_old:
        flags = flags + ["-DVGB_OPT_OLD"]
    h.update(" ".join(cc + flags).encode())
    out = os.path.join(tempfile.gettempdir(), f"vgfast_bench_kernels_{h.hexdigest()[:12]}.so")
    if not os.path.exists(out):
        tmp = out + f".{os.getpid()}.tmp"
        try:
            subprocess.run(cc + flags + [src, driver, "-o", tmp, "-lm"], check=True,
                           capture_output=True)
        except (OSError, subprocess.CalledProcessError):
            return None
        os.replace(tmp, out)
    lib = ctypes.CDLL(out)
    lib.opt_old = opt_old
    i64, dbl, ip = ctypes.c_int64, ctypes.c_double, ctypes.c_void_p
    for s in ("_d", "_f"):
        f = getattr(lib, "vg_opt_step" + s)
        f.argtypes = [ctypes.c_int, ip, ip, ip, ip, i64, ip, i64] + ([ip] if opt_old else [])
        f.restype = ctypes.c_int
        f = getattr(lib, "vg_sumsq" + s)
        f.argtypes = [ip, i64]
        f.restype = dbl
    _lib = lib
    return lib


def opt_step_ctypes(kind, p, g, s1, s2, hyper, t):
    """vg_opt_step over whole flat buffers (the signature of vgfast._core.optimizer_step)."""
    lib = load()
    h = np.zeros(8, np.float64)
    h[:len(hyper)] = hyper
    f = lib.vg_opt_step_d if p.dtype == np.float64 else lib.vg_opt_step_f
    old = [None] if lib.opt_old else []
    return bool(f(kind, p.ctypes.data, g.ctypes.data, s1.ctypes.data, s2.ctypes.data, p.size,
                  h.ctypes.data, t, *old))


def sumsq(x):
    lib = load()
    f = lib.vg_sumsq_d if x.dtype == np.float64 else lib.vg_sumsq_f
    return f(x.ctypes.data, x.size)
