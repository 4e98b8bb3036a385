#!/usr/bin/env bash
# Run the engine tests under valgrind memcheck and count the errors in vgfast's compiled code.
#
#   tools/memcheck.sh                      # tests/test_engine.py tests/test_gradients.py
#   tools/memcheck.sh tests/test_engine.py -k divergence     # any pytest arguments
#
# CPython, numpy, scipy and OpenBLAS produce valgrind reports of their own (custom allocators,
# deliberate reads of uninitialised padding, blocks held until exit). Rather than maintain
# suppression files for them, every error valgrind reports is written as XML and counted only
# when one of its stacks (where it happened, or where the block was allocated) has a frame in
# vgfast's extension modules (vgfast/_core*.so, vgfast/_blas*.so: the Cython engine and the C
# kernels vg_*). Leaks count when definite (--errors-for-leak-kinds=definite) and allocated
# from vgfast code. PYTHONMALLOC=malloc makes every Python allocation visible to valgrind.
#
# Prints "N errors in vgfast code" (with each error's kind, message and vgfast frames) and
# exits 1 when N > 0, 2 when the tests themselves fail, 3 when valgrind is missing.
set -u
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
if ! command -v valgrind >/dev/null; then
    echo "valgrind not found (apt-get install valgrind)" >&2
    exit 3
fi
if [ $# -eq 0 ]; then
    set -- tests/test_engine.py tests/test_gradients.py
fi
logdir=$(mktemp -d "${TMPDIR:-/tmp}/vgfast-memcheck.XXXXXX")
trap 'rm -rf "$logdir"' EXIT
start=$(date +%s)
PYTHONMALLOC=malloc OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 \
    valgrind --tool=memcheck --xml=yes --xml-file="$logdir/vg.%p.xml" \
    --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite \
    --num-callers=60 --error-limit=no \
    "$PYTHON" -m pytest -q -p no:cacheprovider "$@"
test_rc=$?
elapsed=$(( $(date +%s) - start ))
"$PYTHON" - "$logdir" "$test_rc" "$elapsed" <<'PY'
import glob
import re
import sys
import xml.etree.ElementTree as ET

logdir, test_rc, elapsed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
OURS = re.compile(r"vgfast/_(core|blas)[^/]*\.so$")
IMPORT = re.compile(r"pymod_exec|__Pyx_modinit|PyInit_")


def fmt(f):
    return (f"{f.findtext('fn', '?')} ({f.findtext('file') or f.findtext('obj', '?')}:"
            f"{f.findtext('line', '?')})")


ours, total = [], 0
for path in sorted(glob.glob(f"{logdir}/vg.*.xml")):
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        # a child that exec'd another program (not traced) leaves a bare header: nothing to
        # count; a run killed mid-way leaves an unterminated file: say so
        if "<error>" in open(path, errors="replace").read():
            print(f"warning: {path} is incomplete ({e}); its errors are not counted",
                  file=sys.stderr)
        continue
    for err in root.iter("error"):
        total += 1
        stacks = [stack.findall("frame") for stack in err.findall("stack")]
        frames = [f for st in stacks for f in st if OURS.search(f.findtext("obj", ""))]
        # reports raised while the module is being imported (scipy's cython_blas import and
        # dlopen run below our module-init function) are the importer's, not the engine's
        if not frames or any(IMPORT.search(f.findtext("fn", "")) for f in frames):
            continue
        what = err.findtext("what") or err.findtext("xwhat/text") or ""
        ours.append((err.findtext("kind"), what, [fmt(f) for f in stacks[0][:3]],
                     [fmt(f) for f in frames[:3]]))
for kind, what, top, where in ours:
    print(f"  {kind}: {what}")
    for w in top:
        print(f"      at {w}")
    for w in where:
        print(f"      vgfast frame {w}")
print(f"valgrind memcheck: {total} reports in all, {len(ours)} in vgfast code; tests exited "
      f"{test_rc}; {elapsed} s")
print(f"{len(ours)} errors in vgfast code")
sys.exit(1 if ours else (2 if test_rc else 0))
PY
