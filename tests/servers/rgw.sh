#!/bin/bash
# Single-node Ceph RADOS Gateway (S3) for the fallbackfs tests, entirely under DIR,
# bound to 127.0.0.1 only.
#
#   rgw.sh start DIR   install Debian's ceph packages if missing, start mon + memstore OSD +
#                      radosgw, create a test user and bucket, write DIR/env
#   rgw.sh stop DIR    stop every daemon of DIR (idempotent)
#
# Tunables (environment): RGW_START_TIMEOUT (s, default 120), RGW_BUCKET (default fallbackfs-test),
# RGW_ACCESS_KEY / RGW_SECRET_KEY (fixed test keys by default).
# Nothing runs under systemd; every daemon is started here with -f under setsid, its pid in DIR/run.
set -euo pipefail

PY=/usr/bin/python3
STAGE_LOGS=""
START_TIMEOUT=${RGW_START_TIMEOUT:-120}
BUCKET=${RGW_BUCKET:-fallbackfs-test}
ACCESS_KEY=${RGW_ACCESS_KEY:-FALLBACKFSTESTKEY000}
SECRET_KEY=${RGW_SECRET_KEY:-fallbackfs-test-secret-key-0000000000000}
DAEMONS="radosgw osd mon"   # stop order

die() { echo "rgw.sh: $*" >&2; exit 1; }
log() { echo "rgw.sh: $*" >&2; }

usage() { echo "usage: $0 start|stop|status DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
CMD=$1
mkdir -p "$2"
DIR=$(cd "$2" && pwd)
CONF=$DIR/ceph.conf
RUN=$DIR/run
LOGD=$DIR/log

ensure_packages() {
    local missing=()
    for b in ceph-mon:ceph-mon ceph-osd:ceph-osd radosgw:radosgw radosgw-admin:radosgw \
             ceph:ceph-common monmaptool:ceph-common; do
        command -v "${b%%:*}" >/dev/null 2>&1 || missing+=("${b##*:}")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing ceph-mon ceph-osd radosgw ceph-common"
    export DEBIAN_FRONTEND=noninteractive
    # An install from a stale or missing package list fails: update first if needed.
    if ! timeout 600 apt-get install -y --no-install-recommends \
            ceph-mon ceph-osd radosgw ceph-common >"$LOGD/apt.log" 2>&1; then
        timeout 300 apt-get update >>"$LOGD/apt.log" 2>&1 || true
        timeout 900 apt-get install -y --no-install-recommends \
            ceph-mon ceph-osd radosgw ceph-common >>"$LOGD/apt.log" 2>&1 \
            || { tail -n 30 "$LOGD/apt.log" >&2; die "apt-get install failed"; }
    fi
}

free_port() {
    "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# pid of daemon $1 if it is alive and really ours (its command line names our ceph.conf)
live_pid() {
    local f=$RUN/$1.pid pid
    [ -f "$f" ] || return 1
    pid=$(cat "$f" 2>/dev/null) || return 1
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    [ -r "/proc/$pid/cmdline" ] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$CONF" || return 1
    echo "$pid"
}

stop_all() {
    # SIGKILL at once: the data is thrown away anyway, and on SIGTERM the memstore OSD would
    # first dump its whole store to disk (and the daemons take ~6 s to shut down cleanly).
    local name pid pids=() p i
    for name in $DAEMONS; do
        if pid=$(live_pid "$name"); then pids+=("$pid"); fi
    done
    # Also anything else started with our ceph.conf (e.g. a radosgw-admin stuck on a dead mon).
    if [ -f "$CONF" ]; then
        for p in /proc/[0-9]*; do
            pid=${p#/proc/}
            [ "$pid" = $$ ] && continue
            if tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -qF -- "-c $CONF"; then
                pids+=("$pid")
            fi
        done
    fi
    for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    for i in $(seq 1 100); do   # up to 10 s for the kernel to reap them
        local alive=0
        for pid in "${pids[@]}"; do
            [ -e "/proc/$pid" ] && ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null && alive=1
        done
        [ $alive -eq 0 ] && break
        sleep 0.1
    done
    rm -f "$RUN"/*.pid
}

# start daemon NAME with command ARGS... in its own session, all fds to files, pid file in RUN
spawn() {
    local name=$1; shift
    setsid "$@" </dev/null >"$LOGD/$name.out" 2>&1 &
    echo $! >"$RUN/$name.pid"
    disown $!
}

# fail MESSAGE: show the logs of the current stage ($STAGE_LOGS), stop everything, exit 1
fail() {
    local f
    for f in $STAGE_LOGS; do
        [ -s "$LOGD/$f" ] || continue
        echo "---- tail of $LOGD/$f ----" >&2
        tail -n 20 "$LOGD/$f" >&2
    done
    echo "----" >&2
    log "start FAILED: $1 (all logs in $LOGD)"
    stop_all
    exit 1
}

# wait_for SECONDS DESCRIPTION COMMAND...: poll COMMAND every 0.2 s, checking that the daemons live
wait_for() {
    local secs=$1 what=$2; shift 2
    local deadline=$((SECONDS + secs)) name
    while ! "$@" >/dev/null 2>&1; do
        for name in $STARTED; do
            live_pid "$name" >/dev/null || fail "$name died while waiting for $what"
        done
        [ $SECONDS -lt $deadline ] || fail "timed out after ${secs}s waiting for $what"
        sleep 0.2
    done
}

ceph_cli() { timeout 20 ceph -c "$CONF" --connect-timeout 10 "$@"; }

osd_up() { ceph_cli osd dump 2>/dev/null | grep -q '^osd\.0 up'; }
rgw_answers() { curl -s -o /dev/null -m 2 "http://127.0.0.1:$RGW_PORT/"; }

write_conf() {
    cat >"$CONF" <<EOF
# generated by tests/servers/rgw.sh
[global]
fsid = $FSID
mon host = [v2:127.0.0.1:$MON_PORT]
mon initial members = a
public addr = 127.0.0.1
cluster addr = 127.0.0.1
public network = 127.0.0.1/32
ms bind ipv4 = true
ms bind ipv6 = false
ms bind msgr1 = false
ms bind msgr2 = true
auth cluster required = none
auth service required = none
auth client required = none
auth supported = none
ms mon client mode = crc
ms mon cluster mode = crc
ms mon service mode = crc
ms client mode = crc
ms cluster mode = crc
ms service mode = crc
run dir = $RUN
admin socket = $RUN/\$name.asok
log file = $LOGD/\$name.log
log to stderr = false
err to stderr = true
mon cluster log file = $LOGD/cluster.log
keyring = /dev/null
crash dir = $DIR/crash
exporter sock dir = $RUN
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon max pg per osd = 1000
debug ms = 0
debug mon = 0
debug osd = 0
debug rgw = 1

[mon]
mon data = $DIR/mon/\$cluster-\$id
mon data avail crit = 0
mon data avail warn = 0
mon rocksdb options = write_buffer_size=8388608,compression=kNoCompression
rocksdb cache size = 16777216

[osd]
osd data = $DIR/osd/\$cluster-\$id
osd objectstore = memstore
memstore device bytes = 2147483648
osd memory target = 939524096
osd op num shards = 1
osd op num threads per shard = 2
osd max object name len = 460
osd max object namespace len = 64
osd heartbeat grace = 60
osd crush update on start = true

[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT tcp_nodelay=1
rgw data = $DIR/rgw
rgw thread pool size = 32
rgw dynamic resharding = false
rgw enable usage log = false
rgw init timeout = 120
rgw gc processor period = 60
EOF
}

status() {
    local name ok=0
    for name in $DAEMONS; do
        if pid=$(live_pid "$name"); then echo "$name: running (pid $pid)"; else echo "$name: stopped"; ok=1; fi
    done
    return $ok
}

start() {
    mkdir -p "$LOGD"
    # Already fully up from an earlier start: nothing to do.
    if [ -f "$DIR/env" ] && status >/dev/null 2>&1; then
        RGW_PORT=$(sed -n 's|^S3_ENDPOINT=http://127.0.0.1:\([0-9]*\).*|\1|p' "$DIR/env")
        if [ -n "$RGW_PORT" ] && rgw_answers; then
            log "already running: $DIR/env"; return 0
        fi
    fi
    stop_all
    ensure_packages
    rm -rf "$DIR/mon" "$DIR/osd" "$DIR/rgw" "$DIR/crash" "$RUN" "$LOGD" "$DIR/env" "$DIR/monmap"
    mkdir -p "$DIR/mon/ceph-a" "$DIR/osd/ceph-0" "$DIR/rgw" "$DIR/crash" "$RUN" "$LOGD"
    export CEPH_CONF=$CONF
    local t0=$SECONDS
    FSID=$(cat /proc/sys/kernel/random/uuid)
    MON_PORT=$(free_port)
    RGW_PORT=$(free_port)
    while [ "$RGW_PORT" = "$MON_PORT" ]; do RGW_PORT=$(free_port); done
    write_conf
    STARTED=""
    STAGE_LOGS="monmaptool.out mon-mkfs.out mon.out mon.a.log"

    # monitor
    monmaptool --create --fsid "$FSID" --addv a "[v2:127.0.0.1:$MON_PORT]" "$DIR/monmap" \
        >"$LOGD/monmaptool.out" 2>&1 || fail "monmaptool failed"
    timeout 60 ceph-mon -c "$CONF" -i a --mkfs --monmap "$DIR/monmap" \
        >"$LOGD/mon-mkfs.out" 2>&1 || fail "ceph-mon --mkfs failed"
    spawn mon ceph-mon -f -c "$CONF" -i a
    STARTED="mon"
    wait_for 60 "the monitor" ceph_cli mon stat
    log "monitor up on 127.0.0.1:$MON_PORT after $((SECONDS - t0))s"

    # OSD (memstore: data lives in the OSD's memory)
    local osd_uuid osd_id
    STAGE_LOGS="ceph-cli.out osd-mkfs.out osd.out osd.0.log"
    osd_uuid=$(cat /proc/sys/kernel/random/uuid)
    osd_id=$(ceph_cli osd new "$osd_uuid" 2>>"$LOGD/ceph-cli.out") || fail "ceph osd new failed"
    [ "$osd_id" = 0 ] || fail "unexpected osd id '$osd_id'"
    timeout 60 ceph-osd -c "$CONF" -i 0 --mkfs --osd-uuid "$osd_uuid" \
        >"$LOGD/osd-mkfs.out" 2>&1 || fail "ceph-osd --mkfs failed"
    spawn osd ceph-osd -f -c "$CONF" -i 0
    STARTED="mon osd"
    wait_for 60 "the OSD to be up" osd_up
    log "memstore OSD up after $((SECONDS - t0))s"

    # radosgw (it creates its own pools on first start)
    STAGE_LOGS="radosgw.out client.rgw.a.log"
    spawn radosgw radosgw -f -c "$CONF" -n client.rgw.a
    STARTED="mon osd radosgw"
    wait_for "$START_TIMEOUT" "radosgw on 127.0.0.1:$RGW_PORT" rgw_answers
    log "radosgw answering on 127.0.0.1:$RGW_PORT after $((SECONDS - t0))s"

    STAGE_LOGS="user-create.out"
    timeout 60 radosgw-admin -c "$CONF" user create --uid=fallbackfs-test \
        --display-name="fallbackfs test" --access-key="$ACCESS_KEY" --secret="$SECRET_KEY" \
        >"$LOGD/user-create.out" 2>&1 || fail "radosgw-admin user create failed"

    local code
    code=$(curl -s -o "$LOGD/create-bucket.out" -w '%{http_code}' -m 30 -X PUT \
        --user "$ACCESS_KEY:$SECRET_KEY" --aws-sigv4 "aws:amz:us-east-1:s3" \
        -H "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" \
        "http://127.0.0.1:$RGW_PORT/$BUCKET") || code=000
    STAGE_LOGS="create-bucket.out client.rgw.a.log"
    [ "$code" = 200 ] || fail "creating bucket $BUCKET failed (HTTP $code)"

    cat >"$DIR/env.tmp" <<EOF
S3_ENDPOINT=http://127.0.0.1:$RGW_PORT
AWS_ACCESS_KEY_ID=$ACCESS_KEY
AWS_SECRET_ACCESS_KEY=$SECRET_KEY
AWS_REGION=us-east-1
AWS_DEFAULT_REGION=us-east-1
S3_BUCKET=$BUCKET
EOF
    mv "$DIR/env.tmp" "$DIR/env"
    log "up in $((SECONDS - t0))s: $DIR/env"
}

case $CMD in
    start) start ;;
    stop) stop_all; log "stopped" ;;
    status) status ;;
    *) usage ;;
esac
