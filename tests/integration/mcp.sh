#!/bin/bash
# `deploy mcp` on stdio: the official MCP TypeScript SDK as the client
# (tests/mcp/stdio.mjs), then hostile input written straight to the server,
# which must answer each with the JSON-RPC error the spec prescribes and keep
# serving. A real agentd on a temp root. TAP on stdout.
#   mcp.sh AGENTD DEPLOY
set -u
AGENTD=$(realpath "$1") DEPLOY=$(realpath "$2")
here=$(cd "$(dirname "$0")" && pwd)
. "$here/tap.sh"
work=$(mktemp -d /tmp/agentd-mcp-XXXXXX)
sock=$work/agentd.sock
pid=""
cleanup() {
  [ -n "$pid" ] && { "$DEPLOY" --socket "$sock" down --project mcp --env production >/dev/null 2>&1; kill "$pid"; wait "$pid" 2>/dev/null; }
  ip link del admcp0 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# The SDK, pinned by tests/mcp/package-lock.json.
if [ ! -d "$here/../mcp/node_modules/@modelcontextprotocol/sdk" ]; then
  (cd "$here/../mcp" && npm ci --no-audit --no-fund >"$work/npm.log" 2>&1) \
    || { not_ok "npm ci of the MCP SDK" "$(tail -5 "$work/npm.log")"; tap_end; }
fi
"$AGENTD" image import --root "$work/root" --name busybox "$("$here"/../fixtures/busybox-image.sh)" >/dev/null 2>&1
"$AGENTD" serve --root "$work/root" --socket "$sock" --bridge admcp0 --subnet 10.80.0.0/16 \
  --port-base 27000 2> "$work/agentd.log" &
pid=$!
for _ in $(seq 1 100); do [ -S "$sock" ] && break; sleep 0.05; done

# The SDK's checks, renumbered into this file's TAP.
out=$(cd "$here/../mcp" && DEPLOY="$DEPLOY" AGENTD_SOCKET="$sock" timeout 120 node stdio.mjs 2>&1)
rc=$?
while IFS= read -r line; do
  case "$line" in
    "ok "*) ok "sdk: ${line#ok * - }" ;;
    "not ok "*) not_ok "sdk: ${line#not ok * - }" ;;
    "#"*) echo "$line" ;;
  esac
done <<< "$out"
[ $rc -eq 0 ] || not_ok "the SDK client ran to its end" "rc=$rc" "$(echo "$out" | tail -5)"

# Hostile input, one message a line, answered in order; the last line
# proves the server still serves.
init='{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-03-26","capabilities":{},"clientInfo":{"name":"sh","version":"1"}}}'
big=$(head -c 5000000 /dev/zero | tr '\0' 'a')
replies=$( {
  echo '{"jsonrpc":"2.0","id":0,"method":"tools/list"}'
  echo "$init"
  echo '{"jsonrpc":"2.0","method":"notifications/initialized"}'
  echo '{"jsonrpc":"2.0","id":2,"method":"tools/list",'
  echo '[{"jsonrpc":"2.0","id":3,"method":"ping"}]'
  echo '{"jsonrpc":"2.0","id":4,"method":"resources/list"}'
  echo '{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"nope"}}'
  echo '{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"get_status","arguments":{"project":1,"environment":"e","service":"s"}}}'
  echo '{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"list_deployments","arguments":{"colour":"red"}}}'
  echo "{\"jsonrpc\":\"2.0\",\"id\":8,\"method\":\"ping\",\"params\":{\"x\":\"$big\"}}"
  echo '{"id":9,"method":"ping"}'
  echo '{"jsonrpc":"2.0","id":10,"method":"ping"}'
} | timeout 20 "$DEPLOY" --socket "$sock" mcp 2>/dev/null)
reply() { echo "$replies" | grep -F "$1"; }
expect() { # NAME PATTERN
  if echo "$replies" | grep -q -- "$2"; then ok "$1"; else not_ok "$1" "$(echo "$replies" | cut -c1-300)"; fi
}
expect "a request before initialize: error" '"id":0,"error":{"code":-32600,"message":"not initialized'
expect "initialize: 2025-03-26 is answered with 2025-03-26" '"id":1,"result":{"protocolVersion":"2025-03-26"'
expect "malformed JSON: -32700 with a null id" '"id":null,"error":{"code":-32700'
expect "a batch: -32600" '"error":{"code":-32600,"message":"batches are not supported'
expect "unknown method: -32601" '"id":4,"error":{"code":-32601'
expect "unknown tool: -32602" '"id":5,"error":{"code":-32602,"message":"unknown tool'
expect "wrong argument type: -32602" '"id":6,"error":{"code":-32602,"message":"argument `project` must be of type string'
expect "unknown argument: -32602" '"id":7,"error":{"code":-32602,"message":"unknown argument `colour`'
expect "a 5 MB message: refused" '"error":{"code":-32600,"message":"message larger than'
expect "no jsonrpc member: -32600" '"id":9,"error":{"code":-32600'
expect "still serving after all that" '"id":10,"result":{}'
n_lines=$(echo "$replies" | grep -c .)
[ "$n_lines" -eq 11 ] && ok "one reply per request, none to notifications" || not_ok "reply count" "$n_lines"
# stdout carries protocol messages only.
echo "$replies" | grep -qv '^{"jsonrpc":"2.0"' && not_ok "stdout holds only JSON-RPC messages" || ok "stdout holds only JSON-RPC messages"

# mcp install prints a client configuration that runs this binary.
"$DEPLOY" --socket "$sock" mcp install --client claude | grep -q "\"command\": \"$DEPLOY\"" && ok "mcp install --client claude" || not_ok "mcp install"
"$DEPLOY" mcp install --client goose | grep -q "type: stdio" && ok "mcp install --client goose" || not_ok "mcp install goose"
tap_end
