#!/usr/bin/env bash
# The whole suite on SQLite, then on PostgreSQL when DATABASE_URL is set or a server answers on
# 127.0.0.1:5432. SHEQUN_REQUIRE_POSTGRES=1 (CI) turns a missing PostgreSQL into a failure.
set -uo pipefail  # pipefail: pytest's exit code survives the tee
cd "$(dirname "$0")/.."
BIN=.venv/bin
PYTEST_ARGS=(${PYTEST_ARGS:--q})
pg_url="${DATABASE_URL:-}"
status=0

log=$(mktemp)
trap 'rm -f "$log"' EXIT
count() { grep -Eo "[0-9]+ ($1)" "$log" | awk '{s+=$1} END {print s+0}'; }

echo "== leg 1/2: SQLite"
if env -u DATABASE_URL "$BIN/pytest" "${PYTEST_ARGS[@]}" "$@" | tee -a "$log"; then sqlite="passed"; else sqlite="FAILED"; status=1; fi

if [ -z "$pg_url" ] && (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; then
  pg_url="postgresql://postgres@127.0.0.1:5432/shequn"
fi
if [ -n "$pg_url" ]; then
  echo "== leg 2/2: PostgreSQL ($(echo "$pg_url" | sed -E 's#//[^@/]*@#//***@#'))"
  if DATABASE_URL="$pg_url" "$BIN/pytest" "${PYTEST_ARGS[@]}" "$@" | tee -a "$log"; then postgres="passed"; else postgres="FAILED"; status=1; fi
elif [ "${SHEQUN_REQUIRE_POSTGRES:-0}" = "1" ]; then
  postgres="MISSING (required)"; status=1
else
  postgres="skipped (no DATABASE_URL and nothing answers on 127.0.0.1:5432)"
fi
echo "== test legs: SQLite ${sqlite}; PostgreSQL ${postgres}"
echo "$(count passed) passed, $(count 'failed|errors?') failed"
exit $status
