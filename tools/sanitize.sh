#!/usr/bin/env bash
# Build vgfast's extensions with AddressSanitizer and UndefinedBehaviorSanitizer and run the
# engine tests against them; count the findings.
#
#   tools/sanitize.sh                          # the engine, gradient, fast-path and fuzz tests
#   tools/sanitize.sh tests/test_engine.py -k divergence     # any pytest arguments
#
# The checkout is copied (git ls-files, or every file when not in git) to a temporary folder
# and built there with -fsanitize=address,undefined -fno-sanitize-recover=undefined
# -fno-omit-frame-pointer, so the installed package and the checkout's own build are not
# touched. The ASan runtime must be loaded first (LD_PRELOAD) because python itself is not
# instrumented. Leak detection is off: CPython and numpy keep allocations until exit.
# Every instruction set the CPU runs is exercised (VGFAST_ISA=baseline, then the default).
#
# Prints "N sanitizer findings" and exits 1 when N > 0, 2 when the tests fail, 3 when the
# toolchain lacks the sanitizer runtimes.
set -u
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
CC=${CC:-gcc}
asan=$("$CC" -print-file-name=libasan.so)
ubsan=$("$CC" -print-file-name=libubsan.so)
if [ ! -e "$asan" ] || [ ! -e "$ubsan" ]; then
    echo "no ASan/UBSan runtime for $CC (libasan.so, libubsan.so)" >&2
    exit 3
fi
if [ $# -eq 0 ]; then
    set -- tests/test_engine.py tests/test_gradients.py tests/test_fused.py \
        tests/test_recording.py tests/test_batchnorm.py tests/test_direct.py
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/vgfast-sanitize.XXXXXX")
trap 'rm -rf "$work"' EXIT
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git ls-files -z | xargs -0 -I{} cp --parents {} "$work"/
else
    cp -r . "$work"/
fi
flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g"
start=$(date +%s)
(cd "$work" && CFLAGS="$flags" LDFLAGS="$flags" "$PYTHON" setup.py -q build_ext --inplace \
    >"$work/build.log" 2>&1) || { cat "$work/build.log" >&2; echo "build failed" >&2; exit 2; }
log="$work/sanitize.log"
rc=0
for isa in baseline auto; do
    (cd "$work" && VGFAST_ISA=$isa LD_PRELOAD="$asan:$ubsan" PYTHONPATH="$work" \
        ASAN_OPTIONS=detect_leaks=0:abort_on_error=0:halt_on_error=1:print_summary=1 \
        UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        OPENBLAS_NUM_THREADS=1 MPLBACKEND=Agg \
        "$PYTHON" -m pytest -q -p no:cacheprovider -x "$@") >>"$log" 2>&1 || rc=$?
done
elapsed=$(( $(date +%s) - start ))
findings=$(grep -cE "ERROR: AddressSanitizer|runtime error:" "$log")
grep -E -A12 "ERROR: AddressSanitizer|runtime error:" "$log" | head -80
tail -n 3 "$log"
echo "$findings sanitizer findings (${elapsed} s, build included; log of both runs above)"
if [ "$findings" -gt 0 ]; then exit 1; fi
if [ "$rc" -ne 0 ]; then echo "the tests failed under the sanitizers" >&2; exit 2; fi
exit 0
