#!/usr/bin/env bash
# deps.sh - install what fallbackfs needs on Debian 12 (as root): `build`
# for building and the demo, `test` for the whole test suite. Installs only
# what is missing, so a second run costs nothing.
set -euo pipefail

build_pkgs=(build-essential meson ninja-build pkg-config fuse3 libfuse3-dev
	libcurl4-openssl-dev libssl-dev libcjson-dev libexpat1-dev libinih-dev)
test_pkgs=(python3-pytest python3-pytest-timeout python3-botocore awscli s3cmd rclone attr curl
	util-linux nodejs npm)

want=("${build_pkgs[@]}")
[ "${1:-build}" = test ] && want+=("${test_pkgs[@]}")

missing=()
for p in "${want[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# node and npm may come from outside Debian's packages on some images
if [ "${1:-build}" = test ] && command -v node >/dev/null && command -v npm >/dev/null; then
	missing=("${missing[@]/nodejs}")
	missing=("${missing[@]/npm}")
fi
read -r -a missing <<<"${missing[*]}"
if [ "${#missing[@]}" -gt 0 ]; then
	echo "deps: installing ${missing[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
[ -e /dev/fuse ] || { echo "deps: /dev/fuse is missing: FUSE cannot work here" >&2; exit 1; }
