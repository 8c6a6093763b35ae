#!/bin/bash
# s3rver (a small Node.js S3 emulator) for the fallbackfs tests, data under DIR, 127.0.0.1 only.
#
#   s3rver.sh start DIR   install s3rver into the npm cache if missing, start it, create the
#                         bucket, write DIR/env
#   s3rver.sh stop DIR    stop it (idempotent)
#
# The npm package goes to ${FALLBACKFS_TEST_CACHE:-/var/cache/fallbackfs-tests}/npm, never into
# the repository. Tunables: S3RVER_VERSION (default 3.7.1), S3RVER_BUCKET (default
# fallbackfs-test), S3RVER_START_TIMEOUT (s, default 30).
# s3rver has exactly one account: access key S3RVER, secret S3RVER.
set -euo pipefail

PY=/usr/bin/python3
VERSION=${S3RVER_VERSION:-3.7.1}
BUCKET=${S3RVER_BUCKET:-fallbackfs-test}
START_TIMEOUT=${S3RVER_START_TIMEOUT:-30}
CACHE=${FALLBACKFS_TEST_CACHE:-/var/cache/fallbackfs-tests}/npm
BIN=$CACHE/node_modules/s3rver/bin/s3rver.js

die() { echo "s3rver.sh: $*" >&2; exit 1; }
log() { echo "s3rver.sh: $*" >&2; }
usage() { echo "usage: $0 start|stop|status DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
CMD=$1
mkdir -p "$2"
DIR=$(cd "$2" && pwd)
PIDF=$DIR/s3rver.pid
LOGF=$DIR/s3rver.log

ensure_installed() {
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        log "installing nodejs npm"
        export DEBIAN_FRONTEND=noninteractive
        if ! timeout 600 apt-get install -y --no-install-recommends nodejs npm >"$DIR/apt.log" 2>&1; then
            timeout 300 apt-get update >>"$DIR/apt.log" 2>&1 || true
            timeout 900 apt-get install -y --no-install-recommends nodejs npm >>"$DIR/apt.log" 2>&1 \
                || { tail -n 30 "$DIR/apt.log" >&2; die "apt-get install nodejs npm failed"; }
        fi
    fi
    if [ -f "$BIN" ] && grep -q "\"version\": \"$VERSION\"" "$CACHE/node_modules/s3rver/package.json"; then
        return 0
    fi
    log "installing s3rver@$VERSION into $CACHE"
    mkdir -p "$CACHE"
    # flock: parallel test runs share the cache
    ( flock -w 300 9 || die "timed out waiting for the npm cache lock"
      [ -f "$BIN" ] && grep -q "\"version\": \"$VERSION\"" "$CACHE/node_modules/s3rver/package.json" \
          && exit 0
      timeout 300 npm install --prefix "$CACHE" --no-audit --no-fund --no-save --loglevel=error \
          "s3rver@$VERSION" >"$DIR/npm.log" 2>&1 \
          || { tail -n 30 "$DIR/npm.log" >&2; die "npm install s3rver@$VERSION failed"; }
    ) 9>"$CACHE/.lock"
    [ -f "$BIN" ] || die "s3rver not found at $BIN after npm install"
}

live_pid() {
    local pid
    [ -f "$PIDF" ] || return 1
    pid=$(cat "$PIDF" 2>/dev/null) || return 1
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    [ -r "/proc/$pid/cmdline" ] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "-d $DIR/data" || return 1
    echo "$pid"
}

stop_it() {
    local pid i
    if pid=$(live_pid); then
        kill -TERM "$pid" 2>/dev/null || true
        for i in $(seq 1 50); do
            [ -e "/proc/$pid" ] && ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$PIDF"
}

answers() { curl -s -o /dev/null -m 2 "http://127.0.0.1:$PORT/"; }

start() {
    if [ -f "$DIR/env" ] && live_pid >/dev/null; then
        PORT=$(sed -n 's|^S3_ENDPOINT=http://127.0.0.1:\([0-9]*\).*|\1|p' "$DIR/env")
        if [ -n "$PORT" ] && answers; then log "already running: $DIR/env"; return 0; fi
    fi
    stop_it
    ensure_installed
    rm -rf "$DIR/data" "$DIR/env"
    mkdir -p "$DIR/data"
    local t0=$SECONDS
    PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    # --no-vhost-buckets: path-style only, as Kong and fallbackfs use it
    # --openssl-legacy-provider: s3rver encrypts ListObjectsV2 continuation tokens with DES, which
    # OpenSSL 3 (Node >= 17) only has in its legacy provider; without it every truncated
    # ListObjectsV2 answers 500 InternalError (ERR_OSSL_EVP_UNSUPPORTED).
    local legacy=()
    if node --openssl-legacy-provider -e 0 >/dev/null 2>&1; then legacy=(--openssl-legacy-provider); fi
    setsid node "${legacy[@]}" "$BIN" -d "$DIR/data" -a 127.0.0.1 -p "$PORT" --no-vhost-buckets \
        --configure-bucket "$BUCKET" </dev/null >"$LOGF" 2>&1 &
    echo $! >"$PIDF"
    local deadline=$((SECONDS + START_TIMEOUT))
    until answers; do
        if ! live_pid >/dev/null; then
            tail -n 30 "$LOGF" >&2; rm -f "$PIDF"; die "s3rver exited during start-up"
        fi
        if [ $SECONDS -ge $deadline ]; then
            tail -n 30 "$LOGF" >&2; stop_it; die "s3rver did not answer within ${START_TIMEOUT}s"
        fi
        sleep 0.1
    done
    cat >"$DIR/env.tmp" <<EOF
S3_ENDPOINT=http://127.0.0.1:$PORT
AWS_ACCESS_KEY_ID=S3RVER
AWS_SECRET_ACCESS_KEY=S3RVER
AWS_REGION=us-east-1
AWS_DEFAULT_REGION=us-east-1
S3_BUCKET=$BUCKET
EOF
    mv "$DIR/env.tmp" "$DIR/env"
    log "up in $((SECONDS - t0))s: $DIR/env"
}

case $CMD in
    start) start ;;
    stop) stop_it; log "stopped" ;;
    status) if pid=$(live_pid); then echo "s3rver: running (pid $pid)"; else echo "s3rver: stopped"; exit 1; fi ;;
    *) usage ;;
esac
