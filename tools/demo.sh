#!/usr/bin/env bash
# demo.sh - the quick start: install build dependencies, build, mount a local
# file:// store, write and read a sample Kong config through the mount, show
# `ls -l`, and unmount. Run as root on Debian 12 from the repository.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/deps.sh build
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null

demo=$(mktemp -d /tmp/fallbackfs-demo.XXXXXX)
mkdir -p "$demo/store" "$demo/mnt"
trap 'fusermount3 -u "$demo/mnt" 2>/dev/null; rm -rf "$demo"' EXIT

./build/fallbackfs "file://$demo/store" "$demo/mnt" -o cache_dir="$demo/cache"
echo "mounted file://$demo/store on $demo/mnt"

mkdir -p "$demo/mnt/3.6.0.0/election"
cat >"$demo/mnt/3.6.0.0/config.json" <<'JSON'
{
  "_format_version": "3.0",
  "_transform": false,
  "services": [
    { "name": "example", "url": "http://example.internal:8080",
      "routes": [ { "name": "example-route", "paths": ["/example"] } ] }
  ]
}
JSON
touch "$demo/mnt/3.6.0.0/election/$(date +%s).000-$(cat /proc/sys/kernel/random/uuid)"

echo "--- ls -l the mount"
ls -l "$demo/mnt/3.6.0.0" "$demo/mnt/3.6.0.0/election"
echo "--- cat config.json (what declarative_config would read)"
cat "$demo/mnt/3.6.0.0/config.json"
echo "--- the same object in the store directory"
cmp "$demo/mnt/3.6.0.0/config.json" "$demo/store/3.6.0.0/config.json" && echo "identical"
fusermount3 -u "$demo/mnt"
echo "unmounted; demo done"
