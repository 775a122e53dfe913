#!/usr/bin/env bash
# tests/run.sh DIR TEST... - run each test program in its own process with a
# timeout, print one line per test, and end with "N passed, N failed".
#   A TEST of the form NAME:VAR=VALUE runs NAME with VAR=VALUE in its
#   environment (the Makefile runs the I/O tests again with SY_IO=epoll).
#   EMULATOR="valgrind ..." or "qemu-aarch64 -L ..." runs each under it;
#   TEST_TIMEOUT_MULT=N multiplies every timeout (slow machines, emulators);
#   LOAD=1 runs the suite on a loaded machine: one CPU-bound hog per core
#     (nproc), at the tests' own priority, for as long as the suite runs;
#   LOAD=squeeze does that and also runs each test on one core (taskset),
#     so that all of its CPUs share that core with a hog.
# The hogs are killed when the suite ends, however it ends (a trap; and each
# hog exits by itself within a second if this script is gone, e.g. SIGKILL).
set -u
dir=$1
shift
mult=${TEST_TIMEOUT_MULT:-1}
[ -n "${EMULATOR:-}" ] && mult=$((mult * 10))
load=${LOAD:-}
[ "$load" = 0 ] && load=
case $load in
'' | 1 | squeeze) ;;
*)
    echo "tests/run.sh: LOAD=$load: known values are 1 and squeeze" >&2
    exit 2
    ;;
esac

hogs=()
current= # the running test's timeout process
log=
cleanup() {
    [ -n "$current" ] && kill -TERM "$current" 2>/dev/null
    [ ${#hogs[@]} -gt 0 ] && kill -TERM "${hogs[@]}" 2>/dev/null
    wait 2>/dev/null
    rm -f "${log:-}"
    hogs=()
    current=
}
trap cleanup EXIT
trap 'cleanup; echo "tests/run.sh: interrupted" >&2; exit 130' INT TERM HUP

# A hog spins; every 200000 turns (well under a second) it checks that the
# script that started it is still there.
hog() {
    local i=0
    while :; do
        if ((++i >= 200000)); then
            i=0
            kill -0 "$1" 2>/dev/null || exit 0
        fi
    done
}

pin=()
if [ -n "$load" ]; then
    n=$(nproc)
    for ((k = 0; k < n; k++)); do
        hog $$ &
        hogs+=($!)
    done
    what="$n CPU-bound hogs"
    if [ "$load" = squeeze ]; then
        first=$(sed -n 's/^Cpus_allowed_list:[[:space:]]*\([0-9]*\).*/\1/p' /proc/self/status)
        pin=(taskset -c "${first:-0}")
        what="$what, each test on CPU ${first:-0} alone"
    fi
    echo "LOAD=$load: $what"
fi

pass=0
fail=0
failed=()
for t in "$@"; do
    limit=$((60 * mult))
    start=$(date +%s%N)
    log=$(mktemp)
    # In the background and waited for, so that a signal (Ctrl-C) reaches
    # the trap at once rather than after the test.
    # shellcheck disable=SC2086
    prog=${t%%:*}
    envs=()
    [ "$prog" != "$t" ] && envs=(env "${t#*:}")
    timeout -k 5 "$limit" ${pin[@]+"${pin[@]}"} ${envs[@]+"${envs[@]}"} ${EMULATOR:-} "$dir/$prog" \
        >"$log" 2>&1 </dev/null &
    current=$!
    wait "$current"
    rc=$?
    current=
    ms=$((($(date +%s%N) - start) / 1000000))
    if [ $rc -eq 0 ]; then
        pass=$((pass + 1))
        printf 'PASS  %-28s %6d ms\n' "$t" "$ms"
    else
        fail=$((fail + 1))
        failed+=("$t")
        why="exit $rc"
        [ $rc -eq 124 ] && why="timeout after ${limit}s"
        printf 'FAIL  %-28s %6d ms  (%s)\n' "$t" "$ms" "$why"
        sed 's/^/      | /' "$log" | tail -40
    fi
    rm -f "$log"
done
cleanup
[ $fail -gt 0 ] && echo "failed: ${failed[*]}"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
