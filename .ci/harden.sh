#!/usr/bin/env bash
# Hardening checks (issue 7), run by .ci/run and by hand:
#   bash .ci/harden.sh [setup] [asan] [fuzz] [valgrind] [leaks]     (default: all)
#   FUZZ_TIME=600 bash .ci/harden.sh fuzz                             (fuzz longer)
# Stages (each builds what it needs in copies of the tree under $HARDEN_WORK,
# default a fresh temp dir: the checkout's own build is never touched):
#   setup     tools into the active venv (else .venv-harden): cython,
#             setuptools, atheris, the test deps; valgrind from apt if missing
#   asan      ASan + UBSan (+ float-cast-overflow) build; the test suite under it
#             (less three long accuracy sweeps and the C-API build tests) with
#             LSan at exit (.ci/lsan.supp; tests/test_dask.py without LSan, and
#             the run again once if LSan's tracer dies rather than reports);
#             then the error-path, special-value, fuzz-corpus and hardening tests
#             again under CSOFTMAX_ISA=scalar and avx2
#   fuzz      tests/fuzz/fuzz_csoftmax.py (atheris, coverage-guided) on the plain
#             build for FUZZ_TIME s (60), then every input it kept replayed on
#             the ASan build; crash inputs land in $HARDEN_WORK/fuzz-artifacts:
#             keep them in tests/fuzz/corpus/ (plain pytest replays that dir)
#   valgrind  memcheck on a plain (-O3 -g) build over a subset (< 3 min): the
#             fuzz corpus (every dtype, layout and out kind), short rows, special
#             values at every position; the verdict is valgrind's exit code 99
#   leaks     tests/leak_check.py: 1e5 calls per function and path, traced
#             memory, RSS and refcounts (plain build)
# HARDEN_ASAN_ISAS="scalar avx2" (default): the ISAs the asan stage reruns
# its subset under (.ci/run: scalar only; valgrind runs the avx2 kernels).
# HARDEN_ASAN_DASK=0 (.ci/run, for its time budget): the asan stage leaves out
# tests/test_dask.py (75 s under ASan; pure Python over the kernels the main
# run checks, on chunks that are views like the ones its layout tests pass).
# HARDEN_REUSE=1 (by hand): keep the builds of a previous run in $HARDEN_WORK.
# HARDEN_PLAIN=installed (.ci/run): fuzz, valgrind and leaks use the installed
# csoftmax (built from this tree by `pip install .`) instead of a new build.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
STAGES=" ${*:-setup asan fuzz valgrind leaks} "
for s in $STAGES; do
    case $s in setup|asan|fuzz|valgrind|leaks) ;; *) echo "unknown stage: $s" >&2; exit 2;; esac
done
has() { [[ "$STAGES" == *" $1 "* ]]; }
FUZZ_TIME=${FUZZ_TIME:-60}
WORK=${HARDEN_WORK:-$(mktemp -d "${TMPDIR:-/tmp}/csoftmax-harden.XXXXXX")}
mkdir -p "$WORK"
echo "== harden.sh: stages${STAGES% }, work dir $WORK"

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
results=()
failed=0
T0=$SECONDS
record() {  # name status start-seconds detail
    results+=("$(printf '%-9s %-6s %4ss  %s' "$1" "$2" $((SECONDS - $3)) "$4")")
    [ "$2" = ok ] || failed=$((failed + 1))
}

# ---- Python: the active venv (.ci/run's), else a venv of our own
if [ -z "${VIRTUAL_ENV:-}" ]; then
    [ -x "$ROOT/.venv-harden/bin/python" ] || python3 -m venv "$ROOT/.venv-harden"
    # shellcheck disable=SC1091
    . "$ROOT/.venv-harden/bin/activate"
fi
PY=$(python -c 'import sys; print(sys.executable)')   # the binary itself (no shell shim under LD_PRELOAD)

if has setup; then
    t=$SECONDS
    python -m pip install --quiet "cython>=3.1" "setuptools>=64" "numpy>=2.0" "pytest>=7" \
        "hypothesis>=6.80" "mpmath>=1.3" "scipy>=1.15" atheris
    if ! command -v valgrind >/dev/null; then
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends valgrind >/dev/null
    fi
    record setup ok "$t" "$(python -c 'import atheris, Cython, numpy; print("cython", Cython.__version__, "numpy", numpy.__version__)'), $(valgrind --version)"
fi

copy_tree() {  # the working tree's source files (tracked and new, not ignored) into $1
    rm -rf "$1"
    mkdir -p "$1"
    if git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
        git -C "$ROOT" ls-files -z -co --exclude-standard |
            tar -C "$ROOT" --null --ignore-failed-read -T - -cf - | tar -C "$1" -xf -
    else
        tar -C "$ROOT" --exclude='*.so' --exclude=build --exclude='__pycache__' -cf - \
            csoftmax include tests setup.py pyproject.toml README.md | tar -C "$1" -xf -
    fi
}

build() {  # dir label [CFLAGS LDFLAGS]: in-place build of a copy, checked to import from there
    local dir=$1 label=$2 t=$SECONDS
    if [ "${HARDEN_REUSE:-0}" = 1 ] && compgen -G "$dir/csoftmax/_core.*.so" >/dev/null; then
        rm -rf "$dir/tests" && cp -a "$ROOT/tests" "$dir/tests"     # by hand: tests only
        echo "== $label build: reused (HARDEN_REUSE=1), tests/ refreshed"
        return 0
    fi
    copy_tree "$dir"
    if ! (cd "$dir" && CFLAGS="${3:-}" LDFLAGS="${4:-}" "$PY" setup.py build_ext --inplace --force >build.log 2>&1); then
        tail -40 "$dir/build.log"
        echo "== $label build FAILED"
        return 1
    fi
    echo "== $label build: $((SECONDS - t)) s"
}

ASAN_LIB=$(gcc -print-file-name=libasan.so)
SAN_CFLAGS="-fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=all -fno-omit-frame-pointer -fno-wrapv -g1 -O1"
SAN_LDFLAGS="-fsanitize=address,undefined"
# per command, never exported: an exported LD_PRELOAD runs every child under ASan
SAN_ENV=(env LD_PRELOAD="$ASAN_LIB" PYTHONMALLOC=malloc
         ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1:halt_on_error=1
         LSAN_OPTIONS="suppressions=$ROOT/.ci/lsan.supp:print_suppressions=0"
         UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1)
PYTEST=(-m pytest -q -p no:cacheprovider --capture=sys)   # --capture=sys: sanitizer reports stay visible

check_import() {  # dir [env...]: the extension imported is the one built in dir
    local dir=$1
    shift
    (cd "$dir" && "$@" "$PY" -c "import csoftmax._core as c, sys; f = c.__file__; print('   imports', f); sys.exit(not f.startswith('$dir/'))")
}

asan_ready=0
if has asan || has fuzz; then
    [ -f "$ASAN_LIB" ] || { echo "libasan not found (gcc -print-file-name=libasan.so)"; exit 1; }
    if build "$WORK/asan" "ASan+UBSan" "$SAN_CFLAGS" "$SAN_LDFLAGS" && check_import "$WORK/asan" "${SAN_ENV[@]}"; then
        asan_ready=1
    else
        record asan-build FAIL "$SECONDS" "see above"
    fi
fi

if has asan && [ $asan_ready = 1 ]; then
    t=$SECONDS
    rc=0
    # all but three accuracy sweeps whose time is the mpmath oracle's, not the
    # kernels' (their code paths are covered by the rest): 5 min instead of 8;
    # and not tests/test_capi.py, whose time is spent compiling extensions
    # (gcc under the preloaded libasan) that call the kernels tested here
    local_k="not (test_float16_all_finite_values or test_random_rows_every_length"
    local_k="$local_k or (test_accuracy and test_long_rows and not float64-1-100000)"
    # and not the GIL-release test of the conversions, a timing window: under
    # ASan the copies' large mallocs and frees (poisoning, quarantine) run
    # with the GIL and emptied one of its ten bins once in CI
    local_k="$local_k or test_gil_released_for_conversions_too)"
    # and tests/test_dask.py in a process of its own without LSan: dask and
    # distributed leave thread pools that are still exiting when LSan stops the
    # world at exit, and its tracer then dies ("LeakSanitizer has encountered a
    # fatal error"; seen once in CI). Its kernels are the ones the main run checks.
    asan_main() {  # log [extra LSAN_OPTIONS]
        (cd "$WORK/asan" && "${SAN_ENV[@]}" LSAN_OPTIONS="suppressions=$ROOT/.ci/lsan.supp:print_suppressions=0${2:-}" \
            "$PY" "${PYTEST[@]}" tests --durations=5 -k "$local_k" \
            --ignore=tests/test_capi.py --ignore=tests/test_dask.py) 2>&1 |
            tee "$1" | tail -n 25
    }
    asan_main "$WORK/asan.log" || rc=1
    # LSan's tracer failing (ptrace) is not a leak report: that one run again, once
    if grep -q 'LeakSanitizer has encountered a fatal error' "$WORK/asan.log" &&
        ! grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:|^[0-9]+ failed' "$WORK/asan.log"; then
        echo "== LSan's tracer failed at exit (not a leak report): the run again, once, with LSan's thread log"
        mv "$WORK/asan.log" "$WORK/asan-tracer-failed.txt"
        rc=0
        asan_main "$WORK/asan.log" ":verbosity=1:log_threads=1" || rc=1
    fi
    detail=$(grep -E '^[0-9]+ (passed|failed)' "$WORK/asan.log" | tail -1 || true)
    if [ "${HARDEN_ASAN_DASK:-1}" = 1 ]; then
        (cd "$WORK/asan" && "${SAN_ENV[@]}" ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1:halt_on_error=1 \
            "$PY" "${PYTEST[@]}" tests/test_dask.py) 2>&1 | tee "$WORK/asan-dask.log" | tail -n 3 || rc=1
        detail="$detail; dask (no LSan): $(grep -E '^[0-9]+ (passed|failed)' "$WORK/asan-dask.log" | tail -1 || true)"
    fi
    # the scalar (and avx2) kernels too, on the error-path and special-value tests
    for isa in ${HARDEN_ASAN_ISAS-scalar avx2}; do
        (cd "$WORK/asan" && CSOFTMAX_ISA=$isa "${SAN_ENV[@]}" "$PY" -c \
            "import csoftmax, sys; sys.exit(csoftmax.isa_info()['active'] != '$isa')") 2>/dev/null || continue
        (cd "$WORK/asan" && CSOFTMAX_ISA=$isa "${SAN_ENV[@]}" "$PY" "${PYTEST[@]}" \
            tests/test_bad_input.py tests/test_special_values.py tests/test_short_rows.py \
            tests/test_fuzz_corpus.py tests/test_hardening.py -k "not 2_31") 2>&1 |
            tee "$WORK/asan-$isa.log" | tail -n 3 || rc=1
        detail="$detail; $isa: $(grep -E '^[0-9]+ (passed|failed)' "$WORK/asan-$isa.log" | tail -1 || true)"
    done
    if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$WORK"/asan*.log; then
        rc=1
        grep -E -A12 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$WORK"/asan*.log | head -60 || true
    fi
    record asan "$([ $rc = 0 ] && echo ok || echo FAIL)" "$t" "${detail:-no pytest summary}"
fi

plain_ready=0
if has fuzz || has valgrind || has leaks; then
    if [ "${HARDEN_PLAIN:-build}" = installed ]; then
        # .ci/run: the extension it just installed from this tree (-O3 -g), reached
        # from a copy of the tree without a build through csoftmax's fallback
        copy_tree "$WORK/plain"
        (cd "$WORK/plain" && "$PY" -c "import csoftmax._core as c, sys; f = c.__file__; print('   imports the installed', f); sys.exit('$WORK/plain/' in f)") &&
            plain_ready=1 || record plain FAIL "$SECONDS" "no installed csoftmax"
    else
        build "$WORK/plain" "plain (-O3 -g)" && check_import "$WORK/plain" env && plain_ready=1 ||
            record plain-build FAIL "$SECONDS" "see above"
    fi
fi

if has fuzz && [ $plain_ready = 1 ] && [ $asan_ready = 1 ]; then
    # coverage-guided on the plain build (with gcc's ASan preloaded, libasan's
    # coverage hooks take the place of libFuzzer's and atheris gets no
    # feedback), then every input it kept replayed under ASan+UBSan
    t=$SECONDS
    rm -rf "$WORK/fuzz-artifacts"
    mkdir -p "$WORK/fuzz-corpus" "$WORK/fuzz-artifacts"
    rc=0
    (cd "$WORK/plain" && "$PY" tests/fuzz/fuzz_csoftmax.py --time "$FUZZ_TIME" -print_final_stats=1 \
        -artifact_prefix="$WORK/fuzz-artifacts/" "$WORK/fuzz-corpus" tests/fuzz/corpus) \
        >"$WORK/fuzz.log" 2>&1 || rc=$?
    grep -vE '^#[0-9]+[[:space:]]+(NEW|REDUCE|pulse|RELOAD)' "$WORK/fuzz.log" | grep -v '^"' | tail -n 8 || true
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$WORK/fuzz.log" | tail -1)
    kept=$(find "$WORK/fuzz-corpus" -type f | wc -l)
    (cd "$WORK/asan" && "${SAN_ENV[@]}" "$PY" tests/fuzz/fuzz_csoftmax.py --replay \
        "$WORK/fuzz-corpus" tests/fuzz/corpus "$WORK/fuzz-artifacts") >"$WORK/fuzz-replay.log" 2>&1 || rc=1
    tail -n 3 "$WORK/fuzz-replay.log"
    crashes=$(find "$WORK/fuzz-artifacts" -type f | wc -l)
    [ "$crashes" = 0 ] || { echo "crash inputs:"; ls -l "$WORK/fuzz-artifacts"; rc=1; }
    record fuzz "$([ $rc = 0 ] && echo ok || echo FAIL)" "$t" \
        "${runs:-?} inputs in ${FUZZ_TIME} s (3 calls each), $kept kept and replayed under ASan+UBSan, $crashes crashes"
fi

if has valgrind && [ $plain_ready = 1 ]; then
    t=$SECONDS
    rc=0
    # valgrind hides AVX-512 from the CPU: the avx2 kernels run (scalar: the asan stage);
    # --track-origins=yes (twice the time) to find where an uninitialised value came from
    (cd "$WORK/plain" && PYTHONMALLOC=malloc valgrind --tool=memcheck --error-exitcode=99 \
        --leak-check=no --track-origins=no --num-callers=30 \
        --suppressions="$ROOT/.ci/valgrind-python.supp" \
        "$PY" -m pytest -q -p no:cacheprovider -p no:hypothesispytest \
        "tests/test_fuzz_corpus.py::test_corpus_input" tests/test_short_rows.py \
        "tests/test_special_values.py::test_special_at_every_position" \
        tests/test_options.py::test_special_values_documented_examples \
        tests/test_options.py::test_causal_equals_explicit_tril_mask \
        tests/test_backward.py::test_special_values tests/test_cross_entropy.py::test_special_values \
        tests/test_logsumexp_b.py::test_special_values tests/test_stream.py::test_special_chunks) \
        >"$WORK/valgrind.log" 2>&1 || rc=$?
    tail -n 4 "$WORK/valgrind.log"
    errs=$(grep -E 'ERROR SUMMARY' "$WORK/valgrind.log" | tail -1 | sed 's/^==[0-9]*== //')
    if [ $rc = 99 ]; then
        grep -B2 -A25 -E 'Invalid (read|write)|uninitialised|Conditional jump' "$WORK/valgrind.log" | head -80 || true
    fi
    record valgrind "$([ $rc = 0 ] && echo ok || echo FAIL)" "$t" \
        "$(grep -E '^[0-9]+ (passed|failed)' "$WORK/valgrind.log" | tail -1); ${errs:-no summary}; exit $rc"
fi

if has leaks && [ $plain_ready = 1 ]; then
    t=$SECONDS
    rc=0
    (cd "$WORK/plain" && "$PY" tests/leak_check.py) 2>&1 | tee "$WORK/leaks.log" || rc=1
    grep -qE '^leak_check: [0-9]+ passed, 0 failed' "$WORK/leaks.log" || rc=1
    record leaks "$([ $rc = 0 ] && echo ok || echo FAIL)" "$t" "$(tail -1 "$WORK/leaks.log")"
fi

echo "== harden.sh: $((SECONDS - T0)) s (logs in $WORK)"
for r in "${results[@]}"; do echo "   $r"; done
echo "harden: $((${#results[@]} - failed)) passed, $failed failed"
[ $failed = 0 ]
