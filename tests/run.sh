#!/usr/bin/env bash
# tests/run.sh DIR TEST... - run each test program in its own process with a
# timeout, print one line per test, and end with "N passed, N failed".
#   EMULATOR="valgrind ..." or "qemu-aarch64 -L ..." runs each under it;
#   TEST_TIMEOUT_MULT=N multiplies every timeout (slow machines, emulators).
set -u
dir=$1
shift
mult=${TEST_TIMEOUT_MULT:-1}
[ -n "${EMULATOR:-}" ] && mult=$((mult * 10))
pass=0
fail=0
failed=()
for t in "$@"; do
    limit=$((60 * mult))
    start=$(date +%s%N)
    log=$(mktemp)
    # shellcheck disable=SC2086
    timeout -k 5 "$limit" ${EMULATOR:-} "$dir/$t" >"$log" 2>&1
    rc=$?
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
[ $fail -gt 0 ] && echo "failed: ${failed[*]}"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
