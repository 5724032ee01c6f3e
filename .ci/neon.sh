#!/usr/bin/env bash
# CI: the C core without Python. tests/c/test_kernels.c checks every
# instruction set the CPU supports (accuracy against a long double oracle,
# special values, layouts, in place):
#   1. natively with the host gcc and -fopenmp (x86-64 here: scalar, avx2, avx512;
#      the threaded _mt kernels checked bitwise against the serial ones);
#   2. cross-compiled for aarch64 (static) and run under qemu-aarch64 user
#      emulation: scalar and neon.
# Installs the cross toolchain and qemu from Debian if they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=csoftmax/_src
CORE="$SRC/cpu.c $SRC/dispatch.c $SRC/precise.c $SRC/stream.c $SRC/kern_scalar.c $SRC/kern_avx2.c $SRC/kern_avx512.c $SRC/kern_neon.c"
FLAGS="-std=c99 -O2 -ffp-contract=off -Wall -Wextra -Wundef -Werror -Iinclude -I$SRC"
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
SECONDS=0

need=()
command -v aarch64-linux-gnu-gcc >/dev/null || need+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
command -v qemu-aarch64 >/dev/null || need+=(qemu-user)
if [ ${#need[@]} -gt 0 ]; then
    echo "== installing ${need[*]}"
    SUDO=
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    echo "   installed in ${SECONDS}s"
fi

status=0

echo "== native ($(uname -m)): gcc $(gcc -dumpversion)"
# shellcheck disable=SC2086
gcc $FLAGS -fopenmp tests/c/test_kernels.c $CORE -lm -o "$OUT/test_native"
"$OUT/test_native" | tee "$OUT/native.log" || status=1

echo "== aarch64 (qemu-aarch64): aarch64-linux-gnu-gcc $(aarch64-linux-gnu-gcc -dumpversion)"
# shellcheck disable=SC2086
if aarch64-linux-gnu-gcc $FLAGS -static tests/c/test_kernels.c $CORE -lm -o "$OUT/test_aarch64" 2>"$OUT/static.log"; then
    RUN=(qemu-aarch64 "$OUT/test_aarch64")
else
    echo "   (static link failed, dynamic with the cross sysroot instead)"
    cat "$OUT/static.log"
    # shellcheck disable=SC2086
    aarch64-linux-gnu-gcc $FLAGS tests/c/test_kernels.c $CORE -lm -o "$OUT/test_aarch64"
    RUN=(qemu-aarch64 -L /usr/aarch64-linux-gnu "$OUT/test_aarch64")
fi
"${RUN[@]}" | tee "$OUT/aarch64.log" || status=1

# the two runs' closing lines "N passed, M failed", added up
total=$(cat "$OUT/native.log" "$OUT/aarch64.log" |
    awk '/^[0-9]+ passed, [0-9]+ failed$/ { p += $1; f += $3; k++ }
         END { if (k != 2) f += 1; printf "%d passed, %d failed", p, f }')
echo "== neon.sh: ${SECONDS}s, $([ $status -eq 0 ] && echo OK || echo FAILED)"
echo "neon.sh: $total"
exit $status
