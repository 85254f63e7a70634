#!/usr/bin/env bash
# Usage: .ci/serve-until-ready.sh PORT 'COMMAND'
# Runs COMMAND (a server start, as a user types it) in its own process group, waits for
# /ready and the printed demo token, checks the token with a GraphQL call, then stops it.
# Fails (with the server's output) when any of that does not happen within the time limit.
set -uo pipefail
port="$1"; cmd="$2"; limit="${READY_LIMIT_S:-600}"
log="$(mktemp)"
started=$(date +%s.%N)
setsid bash -c "$cmd" > "$log" 2>&1 < /dev/null &
pid=$!
stop() { kill -TERM -- "-$pid" 2>/dev/null; for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done; kill -KILL -- "-$pid" 2>/dev/null; }
fail() { echo "FAILED: $1"; echo "--- output of: $cmd"; tail -50 "$log"; stop; exit 1; }
ready=""
for _ in $(seq $((limit * 5))); do
  kill -0 "$pid" 2>/dev/null || fail "the command exited before /ready"
  if [ -z "$ready" ] && curl -fsS -o /dev/null "http://127.0.0.1:$port/ready" 2>/dev/null; then
    ready=$(date +%s.%N)
  fi
  if [ -n "$ready" ] && grep -q "demo token" "$log"; then break; fi
  sleep 0.2
done
[ -n "$ready" ] || fail "no /ready within ${limit}s"
token=$(grep -o 'sxt_[A-Za-z0-9_-]*' "$log" | head -1)
[ -n "$token" ] || fail "no demo token printed"
answer=$(curl -fsS "http://127.0.0.1:$port/graphql" -H "authorization: Bearer $token" \
  -H 'content-type: application/json' -d '{"query":"{ whoami { tenant accessLevel } }"}') || fail "GraphQL refused the demo token"
echo "$answer" | grep -q '"tenant":"demo"' || fail "whoami answered $answer"
printf '%s: /ready after %.1f s; the printed demo token works (%s)\n' "$cmd" "$(awk "BEGIN { print $ready - $started }")" "$answer"
stop
rm -f "$log"
