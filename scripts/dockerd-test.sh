#!/usr/bin/env bash
# A private, throw-away Docker Engine for dockgate's integration tests.
#
#   scripts/dockerd-test.sh start          start (or reuse) the test daemon
#   scripts/dockerd-test.sh stop [--purge] stop it; --purge also deletes its
#                                          data/exec roots and its bridge
#   scripts/dockerd-test.sh env            print `export DOCKGATE_TEST_DOCKER_SOCK=...`
#   scripts/dockerd-test.sh deps           only install missing Debian packages
#
# Everything lives under ${DOCKGATE_TEST_ROOT:-/var/tmp/dockgate-test}:
#   docker.sock      the only API listener (no TCP listener)
#   data/            --data-root, kept between runs (images; containerd's root
#                    is data/containerd); `stop --purge` deletes it
#   exec/            --exec-root, runtime state, wiped on every fresh start
#                    (containerd's state and socket are in exec/containerd/)
#   dockerd.pid      --pidfile
#   dockerd.log      daemon log of the current run (previous run: dockerd.log.1)
#   containerd.log   likewise for containerd
#   containerd.pid, containerd.toml, daemon.json, key.json, cli-config/, .lock
#
# The daemon (Debian's dockerd 20.10, API 1.41):
#   - runs its own containerd (own config/root/state/socket; never the system
#     one, even if /run/containerd/containerd.sock exists), namespace dockgate-test;
#   - uses its own bridge dgtest0 (10.213.0.1/24), --iptables=false,
#     --ip-masq=false, and the userland proxy (docker-proxy) for published
#     ports; like any dockerd it enables net.ipv4.ip_forward;
#   - uses the vfs storage driver and cgroup parent /dockgate-test;
#   - has the image busybox:local (static busybox, CMD ["sh"], users root and
#     nobody/65534), imported locally since no registry is reachable.
# A fresh start also removes containers/networks/volumes left by earlier runs.
# `start` is idempotent (reuses a healthy daemon with the same configuration)
# and cleans up after killed runs: stale pidfiles, processes (dockerd,
# containerd, shims, container processes), sockets, mounts under the root, and
# a half-deleted data root (it is wiped if the daemon cannot start or run a
# container with it).
#
# Environment:
#   DOCKGATE_TEST_ROOT                 state directory (see above)
#   DOCKGATE_TEST_BRIDGE               bridge name (default dgtest0)
#   DOCKGATE_TEST_BRIDGE_CIDR          bridge address (default 10.213.0.1/24)
#   DOCKGATE_TEST_DOCKERD_TIMEOUT      seconds to wait for dockerd (default 60)
# A second instance may run concurrently with a different root, bridge and CIDR.
#
# Requires root (except `env`). Missing Debian packages (docker.io,
# busybox-static, iproute2) are installed with apt-get. All progress goes to
# stderr; only `env` writes to stdout.
set -euo pipefail

export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
export LC_ALL=C

ROOT_RAW=${DOCKGATE_TEST_ROOT:-/var/tmp/dockgate-test}
case $ROOT_RAW in
/*) ;;
*)
    echo "dockerd-test: DOCKGATE_TEST_ROOT must be an absolute path (got '$ROOT_RAW')" >&2
    exit 2
    ;;
esac
ROOT=$(realpath -m -- "$ROOT_RAW")
if [[ $ROOT == / || $ROOT =~ ^/(bin|boot|dev|etc|home|lib|lib64|opt|proc|root|run|sbin|sys|tmp|usr|var|var/lib|var/tmp)$ ]]; then
    echo "dockerd-test: refusing to use '$ROOT' as DOCKGATE_TEST_ROOT" >&2
    exit 2
fi

DATA=$ROOT/data
EXEC=$ROOT/exec
SOCK=$ROOT/docker.sock
PIDFILE=$ROOT/dockerd.pid
LOG=$ROOT/dockerd.log
DAEMON_JSON=$ROOT/daemon.json
CTD_CONFIG=$ROOT/containerd.toml
CTD_PIDFILE=$ROOT/containerd.pid
CTD_LOG=$ROOT/containerd.log
CTD_STATE=$EXEC/containerd
CTD_SOCK=$CTD_STATE/containerd.sock
LOCKFILE=$ROOT/.lock

# Override both (and DOCKGATE_TEST_ROOT) to run a second instance concurrently.
BRIDGE=${DOCKGATE_TEST_BRIDGE:-dgtest0}
BRIDGE_CIDR=${DOCKGATE_TEST_BRIDGE_CIDR:-10.213.0.1/24}
# Containers go to cgroup /dockgate-test/<id> (per-root name for non-default roots);
# that is also how leftovers of a killed run are found.
if [[ $ROOT == /var/tmp/dockgate-test ]]; then
    CGROUP_PARENT=dockgate-test
else
    CGROUP_PARENT=dockgate-test-$(printf '%s' "$ROOT" | cksum | cut -d' ' -f1)
fi
CTD_NAMESPACE=dockgate-test
CTD_PLUGINS_NAMESPACE=dockgate-test-plugins

IMAGE=busybox:local
IMAGE_LABEL=dockgate.test.rootfs
IMAGE_REV=2 # bump when the rootfs recipe below changes; forces a re-import

READY_TIMEOUT=${DOCKGATE_TEST_DOCKERD_TIMEOUT:-60}

# sun_path is 108 bytes; containerd also listens on "$CTD_SOCK.ttrpc".
if ((${#CTD_SOCK} + 6 > 107)); then
    echo "dockerd-test: DOCKGATE_TEST_ROOT '$ROOT' is too long for unix socket paths" >&2
    exit 2
fi

# The docker CLI must talk to our daemon only, whatever the caller's environment.
unset DOCKER_HOST DOCKER_CONTEXT DOCKER_TLS_VERIFY DOCKER_CERT_PATH DOCKER_API_VERSION
export DOCKER_CONFIG=$ROOT/cli-config

log() { printf 'dockerd-test: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

dk() { docker -H "unix://$SOCK" "$@"; }

require_root() {
    if [[ $(id -u) -ne 0 ]]; then
        die "must run as root (it starts a private dockerd, creates a bridge and mounts); try: sudo $0 $*"
    fi
}

# ---------------------------------------------------------------------------
# Packages

busybox_ok() {
    [[ -x /bin/busybox ]] || return 1
    # Must be statically linked: it is copied alone into the image rootfs.
    # (ldd exits non-zero for static executables.)
    ! ldd /bin/busybox >/dev/null 2>&1
}

ensure_deps() {
    local -a need=()
    local c
    for c in dockerd docker docker-proxy containerd containerd-shim-runc-v2 runc; do
        if ! command -v "$c" >/dev/null 2>&1; then
            need+=(docker.io)
            break
        fi
    done
    busybox_ok || need+=(busybox-static)
    command -v ip >/dev/null 2>&1 || need+=(iproute2)
    # dockerd refuses to start containers when the kernel has AppArmor enabled
    # but apparmor_parser is missing.
    if [[ $(cat /sys/module/apparmor/parameters/enabled 2>/dev/null || true) == Y ]] &&
        ! command -v apparmor_parser >/dev/null 2>&1; then
        need+=(apparmor)
    fi
    ((${#need[@]})) || return 0
    require_root
    log "installing missing packages: ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >&2
    apt-get install -y -q --no-install-recommends "${need[@]}" >&2
    busybox_ok || die "/bin/busybox is still missing or not statically linked"
    command -v dockerd >/dev/null 2>&1 || die "dockerd is still missing after installing docker.io"
}

# ---------------------------------------------------------------------------
# Processes

# pid is alive (and not a zombie)
alive() {
    local pid=$1 stat=
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    read -r stat 2>/dev/null <"/proc/$pid/stat" || return 1
    stat=${stat##*) }
    [[ -n $stat && ${stat:0:1} != Z && ${stat:0:1} != X ]]
}

# proc_match PID COMM GREP-ARGS...: alive, /proc/PID/comm == COMM, and one of its
# argv entries matches (grep -z GREP-ARGS).
proc_match() {
    local pid=$1 want=$2 comm=
    shift 2
    read -r comm 2>/dev/null <"/proc/$pid/comm" || return 1
    [[ $comm == "$want" ]] || return 1
    alive "$pid" || return 1
    grep -qz "$@" "/proc/$pid/cmdline" 2>/dev/null
}

# find_procs COMM GREP-ARGS...: all matching pids, one per line
find_procs() {
    local d pid
    for d in /proc/[0-9]*; do
        pid=${d#/proc/}
        [[ $pid == "$$" || $pid == "$BASHPID" ]] && continue
        if proc_match "$pid" "$@"; then echo "$pid"; fi
    done
}

# children_of PID...: direct children of the given pids
children_of() {
    local d stat rest ppid p
    for d in /proc/[0-9]*; do
        read -r stat 2>/dev/null <"$d/stat" || continue
        rest=${stat##*) }
        ppid=${rest#* }
        ppid=${ppid%% *}
        for p in "$@"; do
            if [[ $ppid == "$p" ]]; then echo "${d#/proc/}"; fi
        done
    done
}

# Our dockerd(s): identified by their exact --data-root argument, plus whatever
# the pidfile names if that process really is our dockerd.
dockerd_pids() {
    {
        local p
        p=$(cat "$PIDFILE" 2>/dev/null || true)
        if [[ -n $p ]] && proc_match "$p" dockerd -xF -- "$DATA"; then echo "$p"; fi
        find_procs dockerd -xF -- "$DATA"
    } | sort -un
}

containerd_pids() {
    find_procs containerd -xF -- "$CTD_CONFIG" | sort -un
}

shim_pids() {
    # comm is truncated to 15 chars: containerd-shim-runc-v2 -> containerd-shim
    find_procs containerd-shim -xF -- "$CTD_SOCK"
}

# Orphaned userland proxies (their dockerd is gone). They normally die with
# dockerd (parent-death signal); this is a safety net.
proxy_pids() {
    local pid stat ppid comm
    for pid in $(find_procs docker-proxy -x -- -container-ip); do
        read -r stat 2>/dev/null <"/proc/$pid/stat" || continue
        stat=${stat##*) }
        ppid=${stat#* }
        ppid=${ppid%% *}
        comm=
        read -r comm 2>/dev/null <"/proc/$ppid/comm" || true
        if [[ $comm != dockerd ]] || ! alive "$ppid"; then echo "$pid"; fi
    done
}

# Processes of our containers: everything in our cgroups, plus the direct
# children of our shims (the containers' init processes).
container_pids() {
    {
        local dir
        local -a shims
        while IFS= read -r dir; do
            find "$dir" -name cgroup.procs -exec cat {} + 2>/dev/null || true
        done < <(find /sys/fs/cgroup -maxdepth 2 -type d -name "$CGROUP_PARENT" 2>/dev/null)
        mapfile -t shims < <(shim_pids)
        if ((${#shims[@]})); then children_of "${shims[@]}"; fi
    } | grep -E '^[0-9]+$' | sort -un || true
}

# terminate TIMEOUT SIGNAL PID...: send SIGNAL, wait up to TIMEOUT s, then KILL.
terminate() {
    local timeout=$1 sig=$2 pid deadline
    shift 2
    local -a pids=()
    for pid in "$@"; do alive "$pid" && pids+=("$pid"); done
    ((${#pids[@]})) || return 0
    kill "-$sig" "${pids[@]}" 2>/dev/null || true
    kill -CONT "${pids[@]}" 2>/dev/null || true # in case they are stopped
    deadline=$((SECONDS + timeout))
    while :; do
        local -a left=()
        for pid in "${pids[@]}"; do alive "$pid" && left+=("$pid"); done
        ((${#left[@]})) || return 0
        if ((SECONDS >= deadline)); then
            if [[ $sig == KILL ]]; then
                log "warning: pids ${left[*]} did not exit after SIGKILL"
                return 0
            fi
            log "pids ${left[*]} ignored SIG$sig for ${timeout}s; sending SIGKILL"
            sig=KILL
            kill -KILL "${left[@]}" 2>/dev/null || true
            deadline=$((SECONDS + 10))
        fi
        pids=("${left[@]}")
        sleep 0.2
    done
}

stop_dockerd() {
    local -a pids
    mapfile -t pids < <(dockerd_pids)
    ((${#pids[@]})) || return 0
    log "stopping dockerd (pid ${pids[*]})"
    # dockerd itself gives containers --shutdown-timeout (3 s) to stop.
    terminate 30 TERM "${pids[@]}"
}

# Kill everything a dead (or stopped) test dockerd may have left behind:
# container processes, shims, userland proxies, and our containerd.
kill_leftovers() {
    local -a pids
    mapfile -t pids < <(container_pids)
    if ((${#pids[@]})); then
        log "killing ${#pids[@]} leftover container process(es)"
        terminate 5 KILL "${pids[@]}"
    fi
    mapfile -t pids < <(shim_pids)
    if ((${#pids[@]})); then
        log "stopping leftover containerd shim(s): ${pids[*]}"
        terminate 2 TERM "${pids[@]}"
    fi
    mapfile -t pids < <(proxy_pids)
    if ((${#pids[@]})); then
        log "stopping leftover docker-proxy process(es): ${pids[*]}"
        terminate 5 TERM "${pids[@]}"
    fi
    mapfile -t pids < <(containerd_pids)
    if ((${#pids[@]})); then
        log "stopping containerd (pid ${pids[*]})"
        terminate 15 TERM "${pids[@]}"
    fi
    # Leftover (now empty) container cgroups.
    local dir
    while IFS= read -r dir; do
        find "$dir" -depth -type d -exec rmdir {} \; 2>/dev/null || true
    done < <(find /sys/fs/cgroup -maxdepth 2 -type d -name "$CGROUP_PARENT" 2>/dev/null)
}

# ---------------------------------------------------------------------------
# Filesystem

# unmount_under DIR [self]: lazily unmount everything mounted strictly below
# DIR (netns bind mounts, container shm mounts, dockerd's bind mount of its
# data root, ...), and DIR itself if "self" is given. Repeats because mounts
# can be stacked.
unmount_under() {
    local dir=$1 self=${2:-} pass m
    local -a mounts
    for pass in 1 2 3 4 5; do
        mapfile -t mounts < <(findmnt -rn -o TARGET 2>/dev/null |
            awk -v p="$dir/" -v d="$dir" -v self="$self" \
                'index($0, p) == 1 || (self != "" && $0 == d)' | sort -r -u)
        ((${#mounts[@]})) || return 0
        ((pass > 1)) || log "unmounting ${#mounts[@]} leftover mount(s) under $dir"
        for m in "${mounts[@]}"; do
            umount -l "$(printf '%b' "$m")" 2>/dev/null || true
        done
    done
    log "warning: mounts remain under $dir"
}

remove_tree() {
    local dir=$1
    [[ -e $dir || -L $dir ]] || return 0
    unmount_under "$dir" self
    rm -rf --one-file-system -- "$dir" 2>/dev/null || {
        unmount_under "$dir" self
        rm -rf -- "$dir"
    }
}

# Everything that does not survive a reboot: processes, mounts, runtime state.
reset_runtime() {
    stop_dockerd
    kill_leftovers
    unmount_under "$ROOT"
    remove_tree "$EXEC"
    rm -f -- "$SOCK" "$PIDFILE" "$CTD_PIDFILE"
}

# ---------------------------------------------------------------------------
# Network

# (Functions below are also called from `if`/`&&` contexts, where `set -e` is
# suspended, so they propagate failures explicitly.)
setup_bridge() {
    if [[ -e /sys/class/net/$BRIDGE && ! -d /sys/class/net/$BRIDGE/bridge ]]; then
        log "$BRIDGE exists but is not a bridge; recreating it"
        ip link del "$BRIDGE" || return 1
    fi
    if [[ ! -e /sys/class/net/$BRIDGE ]]; then
        log "creating bridge $BRIDGE ($BRIDGE_CIDR)"
        ip link add "$BRIDGE" type bridge || return 1
    fi
    if ! ip -4 -o addr show dev "$BRIDGE" | grep -q ' inet '; then
        ip addr add "$BRIDGE_CIDR" dev "$BRIDGE" || return 1
    fi
    ip link set "$BRIDGE" up || return 1
}

# ---------------------------------------------------------------------------
# Daemons

rotate_log() {
    if [[ -f $1 ]]; then mv -f -- "$1" "$1.1"; fi
}

print_logs() {
    local f
    for f in "$LOG" "$CTD_LOG"; do
        [[ -s $f ]] || continue
        log "---- last lines of $f ----"
        tail -n 40 "$f" >&2 || true
    done
}

# Our own daemon.json so /etc/docker/daemon.json cannot interfere. Its only key
# keeps dockerd's identity key out of /etc/docker/key.json (20.10 has no
# command-line flag for it).
daemon_json() {
    printf '{ "deprecated-key-path": "%s" }\n' "$ROOT/key.json"
}

# Own containerd: own root, state and socket; never /etc/containerd/config.toml
# or /run/containerd/containerd.sock.
containerd_toml() {
    cat <<EOF
version = 2
root = "$DATA/containerd"
state = "$CTD_STATE"
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "$CTD_SOCK"

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "$DATA/containerd/opt"
EOF
}

DOCKERD_ARGS=(
    --config-file "$DAEMON_JSON"
    --data-root "$DATA"
    --exec-root "$EXEC"
    --pidfile "$PIDFILE"
    -H "unix://$SOCK"
    --containerd "$CTD_SOCK"
    --containerd-namespace "$CTD_NAMESPACE"
    --containerd-plugins-namespace "$CTD_PLUGINS_NAMESPACE"
    --storage-driver vfs
    --bridge "$BRIDGE"
    --iptables=false
    --ip6tables=false
    --ip-masq=false
    --userland-proxy=true
    --exec-opt native.cgroupdriver=cgroupfs
    --cgroup-parent "/$CGROUP_PARENT"
    --shutdown-timeout 3 # for containers, on daemon shutdown
)

write_configs() {
    mkdir -p "$ROOT" "$DOCKER_CONFIG" || return 1
    daemon_json >"$DAEMON_JSON" || return 1
    containerd_toml >"$CTD_CONFIG" || return 1
    [[ -f $DOCKER_CONFIG/config.json ]] || echo '{}' >"$DOCKER_CONFIG/config.json" || return 1
}

# Is the running daemon pair configured exactly as this script would start it?
# (If not, e.g. after this script changed, it is restarted.)
config_current() {
    local pid=$1
    local -a argv
    mapfile -d '' -t argv 2>/dev/null <"/proc/$pid/cmdline" || return 1
    [[ "${argv[*]:1}" == "${DOCKERD_ARGS[*]}" ]] &&
        [[ $(cat "$DAEMON_JSON" 2>/dev/null) == "$(daemon_json)" ]] &&
        [[ $(cat "$CTD_CONFIG" 2>/dev/null) == "$(containerd_toml)" ]]
}

start_containerd() {
    mkdir -p "$CTD_STATE" || return 1
    rotate_log "$CTD_LOG"
    log "starting containerd"
    # setsid: own session, so ^C in the caller's terminal does not reach it.
    # 9>&-: do not inherit our lock.
    setsid containerd --config "$CTD_CONFIG" --log-level warn \
        </dev/null >"$CTD_LOG" 2>&1 9>&- &
    local pid=$! deadline=$((SECONDS + 30))
    echo "$pid" >"$CTD_PIDFILE"
    until [[ -S $CTD_SOCK ]]; do
        if ! alive "$pid"; then
            print_logs
            log "containerd exited during startup"
            return 1
        fi
        if ((SECONDS >= deadline)); then
            print_logs
            log "containerd did not create $CTD_SOCK within 30 s"
            return 1
        fi
        sleep 0.1
    done
}

dockerd_ready() {
    timeout 10 docker -H "unix://$SOCK" version --format '{{.Server.Version}}' >/dev/null 2>&1
}

start_dockerd() {
    rotate_log "$LOG"
    log "starting dockerd (socket $SOCK)"
    setsid dockerd "${DOCKERD_ARGS[@]}" </dev/null >"$LOG" 2>&1 9>&- &
    local pid=$! deadline=$((SECONDS + READY_TIMEOUT))
    until dockerd_ready; do
        if ! alive "$pid"; then
            print_logs
            log "dockerd exited during startup"
            return 1
        fi
        if ((SECONDS >= deadline)); then
            print_logs
            log "dockerd did not answer on $SOCK within ${READY_TIMEOUT} s"
            return 1
        fi
        sleep 0.3
    done
    log "dockerd $(dk version --format '{{.Server.Version}} (API {{.Server.APIVersion}})') is up (pid $pid)"
}

# Containers, networks and volumes left by earlier (killed) runs are garbage:
# drop them so tests start from a clean daemon. Images are kept.
prune_leftovers() {
    local n
    n=$(dk ps -aq | wc -l) || return 1
    if ((n > 0)); then
        log "removing $n leftover container(s)"
        dk ps -aq | xargs -r docker -H "unix://$SOCK" rm -f -v >/dev/null || return 1
    fi
    dk network prune -f >/dev/null &&
        dk volume prune -f >/dev/null
}

fresh_start() {
    reset_runtime &&
        mkdir -p "$ROOT" "$DATA" &&
        write_configs &&
        setup_bridge &&
        start_containerd &&
        start_dockerd &&
        prune_leftovers
}

# ---------------------------------------------------------------------------
# busybox:local

image_ok() {
    local rev
    rev=$(dk image inspect --format "{{index .Config.Labels \"$IMAGE_LABEL\"}}" "$IMAGE" 2>/dev/null) || return 1
    [[ $rev == "$IMAGE_REV" ]]
}

import_image() {
    local tmp rc=0
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/dockgate-rootfs.XXXXXX") || return 1
    build_rootfs "$tmp" && {
        log "importing $IMAGE from /bin/busybox"
        tar --numeric-owner --owner=0 --group=0 -C "$tmp" -cf - . |
            dk import \
                --change 'CMD ["sh"]' \
                --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
                --change "LABEL $IMAGE_LABEL=$IMAGE_REV" \
                - "$IMAGE" >/dev/null
    } || rc=1
    rm -rf -- "$tmp"
    return "$rc"
}

# Minimal image: static busybox + applet symlinks, root and nobody (65534).
build_rootfs() {
    local r=$1 a
    mkdir -p "$r"/{bin,etc,root,tmp,home,proc,sys,dev,var/tmp,usr} &&
        chmod 0755 "$r" "$r"/{bin,etc,home,proc,sys,dev,var,usr} &&
        chmod 0700 "$r/root" &&
        chmod 1777 "$r/tmp" "$r/var/tmp" &&
        cp /bin/busybox "$r/bin/busybox" &&
        ln -s bin "$r/sbin" &&
        ln -s ../bin "$r/usr/bin" &&
        ln -s ../bin "$r/usr/sbin" || return 1
    for a in $(/bin/busybox --list); do
        [[ $a == busybox || $a == */* ]] && continue
        ln -sf busybox "$r/bin/$a" || return 1
    done
    [[ -e $r/bin/sh && -e $r/bin/httpd ]] || {
        log "/bin/busybox --list did not provide the expected applets"
        return 1
    }
    printf '%s\n' \
        'root:x:0:0:root:/root:/bin/sh' \
        'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' >"$r/etc/passwd" &&
        printf '%s\n' 'root:x:0:' 'nobody:x:65534:' 'nogroup:x:65534:' >"$r/etc/group"
}

smoke_test() {
    local out err
    err=$(mktemp) || return 1
    out=$(timeout 60 docker -H "unix://$SOCK" run --rm "$IMAGE" echo ok 2>"$err") || true
    if [[ $out == ok ]]; then
        rm -f -- "$err"
        return 0
    fi
    log "smoke test 'docker run --rm $IMAGE echo ok' failed: $out $(cat "$err")"
    rm -f -- "$err"
    return 1
}

ensure_image() {
    if ! image_ok; then
        dk image rm -f "$IMAGE" >/dev/null 2>&1 || true
        import_image || return 1
    fi
    smoke_test
}

# ---------------------------------------------------------------------------
# Commands

take_lock() {
    mkdir -p "$ROOT"
    exec 9>"$LOCKFILE"
    if ! flock -w 300 9; then die "could not lock $LOCKFILE within 300 s"; fi
}

cmd_start() {
    require_root start
    ensure_deps
    take_lock
    local -a pids
    mapfile -t pids < <(dockerd_pids)
    if ((${#pids[@]} == 1)) && ! config_current "${pids[0]}"; then
        log "running dockerd (pid ${pids[0]}) has an outdated configuration; restarting it"
    elif ((${#pids[@]} == 1)) && [[ -n $(containerd_pids) ]] && dockerd_ready; then
        log "reusing running dockerd (pid ${pids[0]})"
        setup_bridge && ensure_image && return 0
        log "running dockerd is unhealthy; restarting it"
    elif ((${#pids[@]})); then
        log "dockerd (pid ${pids[*]}) is not answering; restarting it"
    fi

    if fresh_start && ensure_image; then return 0; fi

    log "start failed; retrying with an empty data root ($DATA)"
    reset_runtime
    remove_tree "$DATA"
    if fresh_start && ensure_image; then return 0; fi
    die "could not start the test dockerd (logs: $LOG, $CTD_LOG)"
}

cmd_stop() {
    local purge=0
    case ${1:-} in
    "") ;;
    --purge) purge=1 ;;
    *) die "usage: $0 stop [--purge]" ;;
    esac
    require_root stop
    take_lock
    reset_runtime
    if ((purge)); then
        log "purging $DATA and $EXEC"
        remove_tree "$DATA"
        remove_tree "$EXEC"
        rm -rf -- "$DOCKER_CONFIG"
        rm -f -- "$DAEMON_JSON" "$CTD_CONFIG" "$ROOT/key.json"
        if [[ -e /sys/class/net/$BRIDGE ]]; then
            log "deleting bridge $BRIDGE"
            ip link del "$BRIDGE" || true
        fi
    fi
    log "stopped"
}

cmd_env() {
    printf 'export DOCKGATE_TEST_DOCKER_SOCK=%q\n' "$SOCK"
}

case ${1:-} in
start) cmd_start ;;
stop)
    shift
    cmd_stop "$@"
    ;;
env) cmd_env ;;
deps) ensure_deps ;;
*)
    echo "usage: $0 start | stop [--purge] | env | deps" >&2
    exit 2
    ;;
esac
