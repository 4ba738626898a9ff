#!/usr/bin/env bash
# dockgate's one test command: starts a private dockerd (scripts/dockerd-test.sh),
# runs `cargo test --all-targets` against it, and stops it again.
#
#   scripts/test.sh [extra cargo test args...]   e.g. scripts/test.sh -- --nocapture
#
# Exports to the tests:
#   DOCKGATE_TEST_DOCKER_SOCK  path of the test daemon's unix socket
#   DOCKGATE_REQUIRE_DOCKERD=1 tests needing dockerd fail instead of skipping
# Honours:
#   DOCKGATE_TEST_ROOT         state directory (default /var/tmp/dockgate-test)
#   DOCKGATE_TEST_KEEP_DOCKERD=1  leave the daemon running afterwards (faster reruns)
#
# Must run as root (the daemon needs it). Missing Debian packages (docker.io,
# busybox-static, ...) are installed with apt-get.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ $(id -u) -ne 0 ]]; then
    echo "scripts/test.sh: must be run as root: the integration tests need a private dockerd" >&2
    echo "  (it creates a bridge, mounts and containers). Try: sudo -E env PATH=\"\$PATH\" $0 $*" >&2
    exit 1
fi
if ! command -v cargo >/dev/null 2>&1; then
    echo "scripts/test.sh: cargo not found in PATH ($PATH)" >&2
    exit 1
fi

bash scripts/dockerd-test.sh deps

# shellcheck disable=SC2329 # invoked by the EXIT trap
cleanup() {
    local status=$?
    if [[ ${DOCKGATE_TEST_KEEP_DOCKERD:-0} == 1 ]]; then
        echo "scripts/test.sh: leaving the test dockerd running (DOCKGATE_TEST_KEEP_DOCKERD=1)" >&2
    else
        bash scripts/dockerd-test.sh stop || echo "scripts/test.sh: warning: stopping the test dockerd failed" >&2
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

bash scripts/dockerd-test.sh start
eval "$(bash scripts/dockerd-test.sh env)"
export DOCKGATE_TEST_DOCKER_SOCK
export DOCKGATE_REQUIRE_DOCKERD=1
echo "scripts/test.sh: DOCKGATE_TEST_DOCKER_SOCK=$DOCKGATE_TEST_DOCKER_SOCK" >&2

status=0
cargo test --all-targets "$@" || status=$?
exit "$status"
