#!/usr/bin/env bash
# scripts/loaded-runs.sh N SUITE... - run each suite N times in a row under
# LOAD=1 (one CPU-bound hog per core beside the tests, tests/run.sh), one
# line per run, then a tally per suite.  A failing run stops nothing; its
# log is kept in build-loaded-logs/.
#   SUITE: native, asan, tsan, lto, aarch64 (the suites of .ci/run)
#   BPREFIX=dir  builds suite S in folder dir-S
#   LOAD=squeeze squeezes each test onto one core as well
set -uo pipefail
cd "$(dirname "$0")/.."

usage() {
    echo "usage: scripts/loaded-runs.sh N SUITE... (native asan tsan lto aarch64)" >&2
    exit 2
}
[ $# -ge 2 ] || usage
runs=$1
shift
[[ $runs =~ ^[1-9][0-9]*$ ]] || usage

args_of() {
    case $1 in
    native) echo "" ;;
    asan) echo "SAN=asan" ;;
    tsan) echo "SAN=tsan" ;;
    lto) echo "LTO=1" ;;
    aarch64) echo "ARCH=aarch64" ;;
    *) return 1 ;;
    esac
}
for s in "$@"; do
    args_of "$s" >/dev/null || usage
done

load=${LOAD:-1}
logs=build-loaded-logs
mkdir -p "$logs"
declare -A green tests_failed which
for s in "$@"; do
    read -r -a margs <<<"$(args_of "$s")"
    [ -n "${BPREFIX:-}" ] && margs+=("B=$BPREFIX-$s")
    green[$s]=0
    tests_failed[$s]=0
    which[$s]=
    # build first, so that the first run's time is the tests' alone
    if ! make -s "${margs[@]}" all >"$logs/build-$s.log" 2>&1; then
        echo "$s: build failed, see $logs/build-$s.log"
        continue
    fi
    rm -f "$logs/build-$s.log"
    for ((i = 1; i <= runs; i++)); do
        log=$(mktemp)
        start=$(date +%s%N)
        make test LOAD="$load" "${margs[@]}" >"$log" 2>&1
        secs=$((($(date +%s%N) - start) / 1000000000))
        sum=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -1)
        p=${sum%% passed*}
        f=${sum#*passed, }
        f=${f%% failed}
        if [ -z "$sum" ]; then
            p=0
            f=1
        fi
        if [ "$f" -eq 0 ]; then
            green[$s]=$((${green[$s]} + 1))
            printf '%-8s run %3d/%d: %3d passed, %d failed  %5d s\n' "$s" "$i" "$runs" "$p" "$f" "$secs"
            rm -f "$log"
        else
            tests_failed[$s]=$((${tests_failed[$s]} + f))
            keep="$logs/$s-$i-$(date +%Y%m%d-%H%M%S).log"
            mv "$log" "$keep"
            names=$(sed -n 's/^FAIL  \([^ ]*\) .*/\1/p' "$keep" | tr '\n' ' ')
            [ -z "$sum" ] && names="no-summary "
            which[$s]+=$names
            printf '%-8s run %3d/%d: %3d passed, %d failed  %5d s  FAILED: %s-> %s\n' \
                "$s" "$i" "$runs" "$p" "$f" "$secs" "$names" "$keep"
        fi
    done
done
echo "--- tally (LOAD=$load, $runs runs each)"
bad=0
for s in "$@"; do
    printf '%-8s %d/%d runs green' "$s" "${green[$s]}" "$runs"
    if [ "${green[$s]}" -ne "$runs" ]; then
        bad=1
        # how often each test failed
        counts=$(tr ' ' '\n' <<<"${which[$s]}" | sed '/^$/d' | sort | uniq -c |
            awk '{printf "%s%s x%d", sep, $2, $1; sep=", "}')
        printf ', %d test failures: %s' "${tests_failed[$s]}" "$counts"
    fi
    echo
done
exit $bad
