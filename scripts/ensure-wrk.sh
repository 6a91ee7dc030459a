#!/usr/bin/env bash
# The HTTP benchmark's load comes from wrk (Debian's package); install it when missing.
set -euo pipefail
if command -v wrk >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "wrk is missing and cannot be installed here (need root + apt-get); bench/flash_sale_http.py will be skipped" >&2
  exit 0
fi
echo "== installing wrk (HTTP benchmark load)"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
