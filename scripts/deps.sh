#!/usr/bin/env bash
# scripts/deps.sh [ci] - install what building and testing Switchyard needs on
# Debian: gcc, make, liburing-dev (the io_uring backend; URING=0 builds
# without it), libsqlite3-dev (tests/t_hostlib links its static SQLite) and
# zlib1g-dev (the hand-off's test and benchmarks call zlib: tests/t_handoff.c,
# bench/b_handoff.c, bench/go/handoff.go); with `ci`, also what .ci/run uses
# (valgrind, qemu-user and the AArch64 cross compiler).  Installs only what is
# missing; uses sudo when not root.
set -euo pipefail
pkgs=(gcc make libc6-dev liburing-dev libsqlite3-dev zlib1g-dev)
if [ "${1:-}" = ci ]; then
    pkgs+=(valgrind qemu-user gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
fi
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -ne 0 ] && sudo=sudo
echo "installing: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get install -y -q "${missing[@]}" >&2 ||
    { $sudo apt-get update -q >&2 && $sudo apt-get install -y -q "${missing[@]}" >&2; }
