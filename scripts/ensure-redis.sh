#!/usr/bin/env bash
# Make sure Redis answers on 127.0.0.1:6379 (the Celery broker of the scale path and its test).
set -euo pipefail
answers() { (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; }
if answers; then exit 0; fi
if ! command -v redis-server >/dev/null 2>&1; then
  if [ "$(id -u)" != "0" ]; then echo "Redis is not installed and we are not root" >&2; exit 1; fi
  echo "== installing Redis"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
fi
echo "== starting Redis"
mkdir -p /var/lib/redis /var/log/redis
redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
  --dir /var/lib/redis --logfile /var/log/redis/shequn.log
for _ in $(seq 1 30); do answers && exit 0; sleep 1; done
echo "Redis did not come up on 127.0.0.1:6379" >&2
exit 1
