#!/usr/bin/env bash
# dockgate's end-to-end benchmark (benches/e2e.rs; what it measures: benches/README.md).
#
#   scripts/bench.sh            build --release, install what is missing, start a private
#                               dockerd with a --tlsverify TCP endpoint, run
#                               `cargo bench --bench e2e`, stop that dockerd
#
# Installs (apt-get, when missing): nginx, haproxy; and docker.io via
# scripts/dockerd-test.sh deps. The private dockerd lives under
# ${DOCKGATE_BENCH_ROOT:-/var/tmp/dockgate-bench}: its own data/exec roots, socket,
# managed containerd, no bridge (--bridge none), no iptables; it only answers
# API calls (_ping, version, ps), it never runs containers. Its TLS endpoint and
# every front use one throwaway PKI written by `dockgate certs example`.
#
# Honours (passed through to the bench):
#   DOCKGATE_BENCH_ROUNDS (3)  DOCKGATE_BENCH_SECS (2)  DOCKGATE_BENCH_STREAM_MIB (1024)
#   DOCKGATE_BENCH_IDLE_CONNS (10000)  DOCKGATE_BENCH_ONLY (all; e.g. keepalive,newconn)
#   DOCKGATE_BENCH_FRONTS (all; e.g. dockgate,nginx)  CARGO_TARGET_DIR
#   DOCKGATE_BENCH_NO_DOCKERD=1   skip the real-dockerd rows (no root needed)
#   DOCKGATE_BENCH_DOCKGATE_BIN   another dockgate binary to measure (A/B runs)
#
# The table goes to stdout; progress and logs go to stderr.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

log() { printf 'bench: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

ROOT=${DOCKGATE_BENCH_ROOT:-/var/tmp/dockgate-bench}
TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
BIN=$TARGET_DIR/release/dockgate
WANT_DOCKERD=1
[[ ${DOCKGATE_BENCH_NO_DOCKERD:-0} == 1 ]] && WANT_DOCKERD=0
if ((WANT_DOCKERD)) && [[ $(id -u) -ne 0 ]]; then
    log "not root: skipping the real-dockerd rows (dockerd needs root)"
    WANT_DOCKERD=0
fi

# --- packages -----------------------------------------------------------------
need=()
command -v nginx >/dev/null 2>&1 || need+=(nginx)
command -v haproxy >/dev/null 2>&1 || need+=(haproxy)
if ((${#need[@]})); then
    if [[ $(id -u) -eq 0 ]]; then
        log "installing ${need[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q >&2
        apt-get install -y -q --no-install-recommends "${need[@]}" >&2
    else
        log "not root: cannot install ${need[*]}; those columns will be empty"
    fi
fi
((WANT_DOCKERD)) && bash scripts/dockerd-test.sh deps

# --- build ----------------------------------------------------------------------
log "building dockgate (release)"
cargo build --release --bin dockgate >&2

# 10,000 idle TLS connections: the load generator and each front need an fd each.
hard=$(ulimit -Hn)
want=20000
if [[ $hard != unlimited ]] && ((hard < want)); then want=$hard; fi
ulimit -n "$want" || log "warning: could not raise ulimit -n to $want (now $(ulimit -n))"
log "ulimit -n $(ulimit -n)"

mkdir -p "$ROOT"
PKI=$ROOT/pki
rm -rf -- "$PKI"
"$BIN" certs example --out "$PKI" >&2

# --- private dockerd with a --tlsverify TCP endpoint ------------------------------
DOCKERD_PID=

# SIGTERM, then wait up to 30 s for the process to exit.
stop_pid() {
    kill -TERM "$1" 2>/dev/null || true
    for _ in $(seq 1 150); do
        kill -0 "$1" 2>/dev/null || return 0
        sleep 0.2
    done
}

# shellcheck disable=SC2329 # invoked by the EXIT trap
cleanup() {
    local status=$?
    if [[ -n $DOCKERD_PID ]] && kill -0 "$DOCKERD_PID" 2>/dev/null; then
        log "stopping the bench dockerd (pid $DOCKERD_PID)"
        stop_pid "$DOCKERD_PID"
        kill -KILL "$DOCKERD_PID" 2>/dev/null || true
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
    local p
    for p in $(seq 23760 23860); do
        if ! ss -Htln "sport = :$p" | grep -q .; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

if ((WANT_DOCKERD)); then
    SOCK=$ROOT/docker.sock
    old=$(cat "$ROOT/dockerd.pid" 2>/dev/null || true)
    if [[ -n $old ]] && [[ $(cat "/proc/$old/comm" 2>/dev/null) == dockerd ]]; then
        log "stopping a bench dockerd left by an earlier run (pid $old)"
        stop_pid "$old"
    fi
    rm -rf -- "$ROOT/exec"
    rm -f -- "$SOCK" "$ROOT/dockerd.pid"
    PORT=$(free_port) || die "no free port in 23760-23860 for dockerd's TLS endpoint"
    printf '{ "deprecated-key-path": "%s" }\n' "$ROOT/key.json" >"$ROOT/daemon.json"
    log "starting dockerd (unix://$SOCK, tcp://127.0.0.1:$PORT --tlsverify)"
    # Without --containerd, dockerd runs (and stops) a containerd of its own under --exec-root.
    setsid dockerd \
        --config-file "$ROOT/daemon.json" \
        --data-root "$ROOT/data" \
        --exec-root "$ROOT/exec" \
        --pidfile "$ROOT/dockerd.pid" \
        -H "unix://$SOCK" \
        -H "tcp://127.0.0.1:$PORT" \
        --tlsverify \
        --tlscacert "$PKI/ca.pem" \
        --tlscert "$PKI/server/cert.pem" \
        --tlskey "$PKI/server/key.pem" \
        --storage-driver vfs \
        --bridge none \
        --iptables=false \
        --ip6tables=false \
        --ip-masq=false \
        --exec-opt native.cgroupdriver=cgroupfs \
        </dev/null >"$ROOT/dockerd.log" 2>&1 &
    DOCKERD_PID=$!
    deadline=$((SECONDS + 60))
    until DOCKER_CONFIG=$ROOT/cli-config timeout 5 docker -H "unix://$SOCK" version >/dev/null 2>&1; do
        kill -0 "$DOCKERD_PID" 2>/dev/null || {
            tail -n 30 "$ROOT/dockerd.log" >&2
            die "dockerd exited during startup (log: $ROOT/dockerd.log)"
        }
        ((SECONDS < deadline)) || die "dockerd did not answer within 60 s (log: $ROOT/dockerd.log)"
        sleep 0.3
    done
    log "dockerd $(DOCKER_CONFIG=$ROOT/cli-config docker -H "unix://$SOCK" version --format '{{.Server.Version}}') is up (pid $DOCKERD_PID)"
    export DOCKGATE_BENCH_DOCKERD_SOCK=$SOCK
    export DOCKGATE_BENCH_DOCKERD_TLS=127.0.0.1:$PORT
    export DOCKGATE_BENCH_DOCKERD_PID=$DOCKERD_PID
fi

export DOCKGATE_BENCH_PKI=$PKI
export DOCKGATE_BENCH_DOCKGATE_BIN=${DOCKGATE_BENCH_DOCKGATE_BIN:-$BIN}
log "running cargo bench --bench e2e (about 10 minutes)"
cargo bench --bench e2e
