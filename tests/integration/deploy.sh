#!/bin/bash
# agentd serve and the deploy CLI end to end, with a real agentd on a temp
# root, its own bridge and subnet: deploy and fetch a page, zero-downtime
# redeploy, a crashing version, restart policies, logs, environments side by
# side, TTL expiry, kill -9 of agentd and adoption, hostile frames, socket
# policy, deploy.yaml errors, /metrics. TAP on stdout.
#   deploy.sh AGENTD DEPLOY FRAME_SEND
set -u
AGENTD=$(realpath "$1") DEPLOY=$(realpath "$2") FRAME_SEND=$(realpath "$3")
here=$(cd "$(dirname "$0")" && pwd)
. "$here/tap.sh"
image=$("$here"/../fixtures/busybox-image.sh)
work=$(mktemp -d /tmp/agentd-deploy-XXXXXX)
chmod 755 "$work" # the socket-policy check connects as nobody
root="$work/root" sock="$work/agentd.sock"
BRIDGE=adtest0 SUBNET=10.87.0.0/16 PORTS=23000 METRICS=127.0.0.1:23999
pid=""
start_agentd() {
  rm -f "$sock" # a crash leaves it behind
  "$AGENTD" serve --root "$root" --socket "$sock" --bridge $BRIDGE --subnet $SUBNET \
    --port-base $PORTS --metrics $METRICS >> "$work/agentd.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do [ -S "$sock" ] && return 0; sleep 0.05; done
  return 1
}
stop_agentd() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; pid=""; }
cleanup() {
  [ -d "$work/registry" ] && stop_registry "$work/registry"
  stop_agentd
  [ "$failed" = 0 ] || tail -40 "$work/agentd.log" | sed 's/^/# agentd: /' 
  # Workloads outlive agentd by design: remove them through a fresh one.
  if start_agentd; then
    for e in $(D env ls --json 2>/dev/null | grep -o '"project":"[^"]*","env":"[^"]*"' \
               | sed 's/"project":"\([^"]*\)","env":"\([^"]*\)"/\1:\2/'); do
      D down --project "${e%%:*}" --env "${e#*:}" >/dev/null 2>&1
    done
    stop_agentd
  fi
  ip link del $BRIDGE 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
D() { "$DEPLOY" --socket "$sock" "$@"; }
get() { curl -sf -m 3 "$1" 2>/dev/null; }
# wait_for SECONDS COMMAND...: poll until the command succeeds.
wait_for() {
  t=$1; shift
  i=0
  while [ $i -lt $((t * 20)) ]; do "$@" >/dev/null 2>&1 && return 0; sleep 0.05; i=$((i + 1)); done
  return 1
}
state_of() { D ps --project "$1" --env "$2" --json | grep -o "\"service\":\"$3\"[^}]*" | grep -o '"state":"[^"]*"' | cut -d'"' -f4; }
pid_of() { D ps --project "$1" --env "$2" --json | grep -o "\"service\":\"$3\"[^}]*" | grep -o '"pid":[0-9]*' | cut -d: -f2; }
field() { grep -o "\"$1\":\"[^\"]*\"" | head -1 | cut -d'"' -f4; }

"$AGENTD" image import --root "$root" --name busybox "$image" >/dev/null 2>&1 || { not_ok "import the busybox image"; tap_end; }
start_agentd || { not_ok "agentd serve starts" "$(cat "$work/agentd.log")"; tap_end; }
ok "agentd serve starts and listens on its socket"

# --help everywhere, and one-line reasons.
for c in up ps logs down status "env ls"; do
  # shellcheck disable=SC2086
  if D $c --help | grep -q "Usage: deploy"; then ok "deploy $c --help"; else not_ok "deploy $c --help"; fi
done
out=$("$DEPLOY" --socket "$work/nope.sock" ps 2>&1)
if [ $? -ne 0 ] && echo "$out" | grep -q "cannot reach agentd at"; then ok "no agentd: one-line reason, non-zero"; else not_ok "no agentd" "$out"; fi

# Deploy the busybox httpd and fetch its page, through the stable host port
# and at the workload's own address.
res=$(D up --json --image busybox --project shop --env production --service web --port 8080)
url=$(echo "$res" | field url) addr=$(echo "$res" | field address)
if [ "$(get "$url/")" = "<h1>hello from agentd</h1>" ] && [ "$(get "http://$addr/")" = "<h1>hello from agentd</h1>" ]; then
  ok "deploy up: the page is served at $url and $addr"
else
  not_ok "deploy up serves the page" "result: $res" "$(tail -5 "$work/agentd.log")"
fi

# Zero-downtime redeploy: a client loop through the stable port meets no failure.
( i=0; while [ $i -lt 400 ] && [ ! -e "$work/stop" ]; do
    if get "$url/" | grep -q hello; then echo ok; else echo FAIL; fi; i=$((i + 1)); done > "$work/loop.txt" ) &
loop=$!
sleep 0.3
for v in 2 3 4; do
  D up --image busybox --project shop --env production --service web --port 8080 -- \
    sh -c "sleep 0.2; exec httpd -f -p 8080 -h /www" > /dev/null || not_ok "redeploy $v"
  sleep 0.2
done
touch "$work/stop"; wait $loop
fails=$(grep -c FAIL "$work/loop.txt") total=$(wc -l < "$work/loop.txt")
if [ "$fails" -eq 0 ] && [ "$total" -gt 10 ]; then ok "3 redeploys under a client loop: $total requests, none failed"
else not_ok "zero-downtime redeploy" "$fails of $total requests failed"; fi
ver=$(D ps --json --project shop | grep -o '"version":[0-9]*' | cut -d: -f2)
[ "$ver" = 4 ] && ok "the current version is 4" || not_ok "current version" "got $ver"

# A version that crashes on start: the deploy fails, the old one keeps serving.
out=$(D up --image busybox --project shop --env production --service web --port 8080 -- sh -c 'echo boom >&2; exit 3' 2>&1)
rc=$?
if [ $rc -ne 0 ] && echo "$out" | grep -q "exited with status 3" && [ "$(get "$url/")" = "<h1>hello from agentd</h1>" ]; then
  ok "a crashing version fails the deploy and the old version keeps serving"
else
  not_ok "crashing version" "rc=$rc out=$out"
fi
out=$(D up --image busybox --project shop --env production --service web --port 8080 --health-timeout 2s -- sh -c 'exec sleep 100' 2>&1)
rc=$?
[ $rc -ne 0 ] && [ "$(get "$url/")" = "<h1>hello from agentd</h1>" ] && ok "a version that never listens does not replace the old (health check)" \
  || not_ok "never-listening version" "rc=$rc $out"
out=$(D up --image nosuch --project shop --env production --service web 2>&1)
[ $? -ne 0 ] && echo "$out" | grep -q "not in the store" && ok "unknown image: one-line error" || not_ok "unknown image" "$out"

# An image not in the store is pulled from the registry first, in a worker
# thread, while agentd keeps serving.
if command -v docker-registry >/dev/null && command -v skopeo >/dev/null; then
  . "$here/../fixtures/registry.sh"
  if rport=$(start_registry "$work/registry") \
     && skopeo copy -q --dest-tls-verify=false "oci:$image:busybox" "docker://127.0.0.1:$rport/demo/busybox:v1" >/dev/null; then
    out=$(D up --json --image "127.0.0.1:$rport/demo/busybox:v1" --project pulled --env production --service web --port 8080 2>&1)
    purl=$(echo "$out" | field url)
    pull_ms=$(echo "$out" | grep -o '"pull_ms":[0-9.]*' | cut -d: -f2)
    if [ "$(get "$purl/")" = "<h1>hello from agentd</h1>" ] && [ "${pull_ms%.*}" -gt 0 ]; then
      ok "deploy up of a registry image: pulled (${pull_ms} ms), started, served"
    else
      not_ok "deploy up pulls" "$out"
    fi
    out=$(D up --image "127.0.0.1:$rport/demo/nosuch:v1" --project pulled --env production --service web2 2>&1)
    [ $? -ne 0 ] && echo "$out" | grep -q "pull 127.0.0.1:$rport/demo/nosuch:v1" && ! D ps --project pulled | grep -q web2 \
      && ok "a failed pull: one-line error, no deployment left" || not_ok "failed pull" "$out"
  else
    not_ok "local registry for the pull test"
  fi
else
  echo "ok - deploy from a registry # SKIP docker-registry or skopeo is not installed (make deps)"
fi

# Restart policies.
D up --image busybox --project jobs --env production --service always --restart always -- sh -c 'echo run; sleep 0.2; exit 0' >/dev/null
D up --image busybox --project jobs --env production --service onfail --restart on-failure -- sh -c 'echo run; sleep 0.2; exit 2' >/dev/null
D up --image busybox --project jobs --env production --service done --restart on-failure -- sh -c 'echo finished; exit 0' >/dev/null
D up --image busybox --project jobs --env production --service never --restart never -- sh -c 'echo once; exit 5' >/dev/null
sleep 2
restarts() { D ps --project jobs --json | grep -o "\"service\":\"$1\"[^}]*" | grep -o '"restarts":[0-9]*' | cut -d: -f2; }
[ "$(restarts always)" -ge 2 ] && ok "restart always: restarted $(restarts always) times after clean exits" || not_ok "restart always" "$(restarts always)"
[ "$(restarts onfail)" -ge 2 ] && ok "restart on-failure: restarted after failures" || not_ok "restart on-failure" "$(restarts onfail)"
[ "$(restarts done)" -eq 0 ] && [ "$(state_of jobs production done)" = exited ] && ok "on-failure: a clean exit is not restarted" \
  || not_ok "on-failure clean exit" "restarts $(restarts done) state $(state_of jobs production done)"
[ "$(restarts never)" -eq 0 ] && D ps --project jobs --json | grep -q 'exited with status 5' && ok "restart never: exit status 5 recorded, not restarted" \
  || not_ok "restart never"

# Logs: while running, after a stop, and followed.
D up --image busybox --project logs --env production --service talk -- sh -c 'i=0; while true; do echo "line $i"; echo "err $i" >&2; i=$((i+1)); sleep 0.1; done' >/dev/null
sleep 0.5
out=$(D logs --project logs --env production talk)
echo "$out" | grep -q "^line 0$" && echo "$out" | grep -q "^err 0$" && ok "logs while running: stdout and stderr" || not_ok "logs while running" "$out"
cnt=$(D logs --project logs --env production -n 3 talk | wc -l)
[ "$cnt" -eq 3 ] && ok "logs -n 3 gives 3 lines" || not_ok "logs -n" "$cnt lines"
"$DEPLOY" --socket "$sock" logs -f --project logs --env production talk > "$work/follow.txt" &
fpid=$!
sleep 0.6; kill $fpid 2>/dev/null; wait $fpid 2>/dev/null
last=$(D logs --project logs --env production -n 1 talk)
[ "$(grep -c '^line' "$work/follow.txt")" -ge 5 ] && ok "logs -f streams new lines" || not_ok "logs -f" "$(cat "$work/follow.txt")"
out=$(D logs --project jobs --env production never)
echo "$out" | grep -q "^once$" && echo "$out" | grep -q "exited with status 5" && ok "logs after the workload stopped" || not_ok "logs after stop" "$out"
D logs -t --project jobs --env production never | grep -q '^20[0-9-]*T[0-9:.]*Z ' && ok "logs -t stamps lines" || not_ok "logs -t"

# Two branches of one service run side by side; removing one leaves the other.
mkdir -p "$work/app" && cd "$work/app" && git init -q -b feature-a . && cd - >/dev/null
(cd "$work/app" && D up --image busybox --project app --service web --port 8080 -- sh -c 'echo A > /www/index.html; exec httpd -f -p 8080 -h /www') > "$work/a.json" 2>&1
(cd "$work/app" && git checkout -q -b feature-b && D up --json --image busybox --project app --service web --port 8080 -- sh -c 'echo B > /www/index.html; exec httpd -f -p 8080 -h /www') > "$work/b.json"
urla=$(D ps --json --project app --env feature-a | field url) urlb=$(field url < "$work/b.json")
if [ "$(get "$urla/")" = A ] && [ "$(get "$urlb/")" = B ] && [ "$urla" != "$urlb" ]; then ok "branches feature-a and feature-b run side by side"; else not_ok "two branches" "$urla $urlb $(cat "$work/a.json")"; fi
D env ls | grep -q "feature-a" && D env ls | grep -q "feature-b" && ok "deploy env ls lists both" || not_ok "env ls"
D down --project app --env feature-a >/dev/null
if ! D env ls | grep -q "feature-a" && [ "$(get "$urlb/")" = B ] && ! get "$urla/" >/dev/null; then ok "down --env feature-a removes it and leaves feature-b serving"
else not_ok "down --env" "$(D env ls)"; fi

# TTL expiry tears a preview environment down.
D up --image busybox --project app --env pr-7 --service web --ttl 2s -- sleep 1000 >/dev/null
D env ls | grep -q "pr-7.*in [0-9]" && ok "a preview environment shows its expiry" || not_ok "ttl shown" "$(D env ls)"
if wait_for 6 sh -c "! \"$DEPLOY\" --socket \"$sock\" env ls | grep -q pr-7"; then ok "TTL expiry removed pr-7 and its services"; else not_ok "ttl expiry" "$(D env ls)"; fi

# kill -9 agentd while workloads run; a new agentd adopts them: same pids, logs intact.
before_web=$(pid_of shop production web) before_talk=$(pid_of logs production talk)
kill -9 "$pid"; wait "$pid" 2>/dev/null; pid=""
sleep 0.5 # the workload keeps writing while agentd is away
kill -0 "$before_web" 2>/dev/null && kill -0 "$before_talk" 2>/dev/null && ok "workloads survive kill -9 of agentd" || not_ok "workloads survive"
start_agentd || not_ok "agentd restarts"
after_web=$(pid_of shop production web) after_talk=$(pid_of logs production talk)
[ "$before_web" = "$after_web" ] && [ "$before_talk" = "$after_talk" ] && [ "$(state_of shop production web)" = running ] \
  && ok "adopted after restart: same pids ($after_web, $after_talk)" || not_ok "adoption" "$before_web/$after_web $before_talk/$after_talk"
[ "$(get "$url/")" = "<h1>hello from agentd</h1>" ] && ok "the stable endpoint serves again after the restart" \
  || not_ok "endpoint after restart" "$(D ps)" "$(ss -tanp | grep 2300)" "$(ls -l /proc/$pid/fd)"
sleep 0.3
seq_ok=$(D logs --project logs --env production talk | grep '^line' | awk '{ if ($2 != NR - 1) bad = 1 } END { print bad ? "gap" : NR }')
[ "$seq_ok" != gap ] && [ "$seq_ok" -gt 5 ] && ok "logs intact across the restart: $seq_ok lines, no gap" || not_ok "logs across restart" "$seq_ok"
D down --project logs --env production talk >/dev/null
# (After kill -9 its parent is no longer agentd: a zombie awaits init.)
alive() { ps -o stat= -p "$1" 2>/dev/null | grep -qv Z; }
! alive "$before_talk" && ok "down stops an adopted workload" || not_ok "down adopted" "$(ps -o pid,stat,cmd -p "$before_talk")"

# Hostile frames: an error reply each, and the daemon keeps serving.
out=$("$FRAME_SEND" "$sock" 41440101000000000000000100000000 2>&1)
echo "$out" | grep -q "code=2 msg=unknown request type 0x01" && ok "an ERROR frame as a request: unknown type" || not_ok "reply-type request" "$out"
out=$("$FRAME_SEND" "$sock" 414401770000000000000002000000020801 2>&1)
echo "$out" | grep -q "type=0x01.*id=2 code=2" && ok "unknown message type 0x77: error reply" || not_ok "unknown type" "$out"
out=$("$FRAME_SEND" "$sock" 41440110000000000000000300000003 0a0561 2>&1)
echo "$out" | grep -q "id=3 code=1 msg=.*overrun" && ok "malformed DEPLOY payload: error names the problem" || not_ok "malformed payload" "$out"
out=$("$FRAME_SEND" "$sock" 41440160000000000000000400200000 zeros:65536 2>&1)
rc=$?
echo "$out" | grep -q "code=7 msg=frame: payload of 2097152 bytes exceeds" && [ $rc -eq 0 ] && ok "oversized frame: error reply, connection closed" || not_ok "oversized" "rc=$rc $out"
out=$("$FRAME_SEND" "$sock" 474554202f20485454502f312e300d0a0d0a 2>&1)
echo "$out" | grep -q "bad magic" && ok "HTTP on the socket: bad magic" || not_ok "bad magic" "$out"
out=$("$FRAME_SEND" "$sock" 4144016000000000000000050000000041440160000000000000000600000000 2>&1)
[ "$(echo "$out" | grep -c 'type=0x61')" -eq 2 ] && ok "two requests in one write: two replies" || not_ok "pipelined" "$out"
D status | grep -q "deployments:" && ok "agentd still serves after hostile frames" || not_ok "serving after hostile frames"

# Socket policy: mode 0660; with the mode opened up, SO_PEERCRED still refuses non-root.
[ "$(stat -c %a "$sock")" = 660 ] && ok "the socket is mode 0660" || not_ok "socket mode" "$(stat -c %a "$sock")"
chmod 666 "$sock"
out=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$DEPLOY" --socket "$sock" status 2>&1)
[ $? -ne 0 ] && echo "$out" | grep -q "uid 65534 may not use agentd" && ok "a non-root peer is refused (SO_PEERCRED)" || not_ok "non-root refused" "$out"
chmod 660 "$sock"

# deploy.yaml: read when present; bad types, unknown keys, nesting, aliases refused with line and column.
mkdir -p "$work/y" && cd "$work/y"
printf 'project: yml\nservice: api\nimage: busybox\nport: 8080\nenv:\n  GREETING: hi\ncommand: ["sh", "-c", "echo $GREETING; exec httpd -f -p 8080 -h /www"]\n' > deploy.yaml
out=$(D up --json --env production)
[ "$(echo "$out" | field id)" = yml.production.api ] && D logs --project yml --env production api | grep -q '^hi$' && ok "deploy.yaml supplies project, service, image, port, env and command" \
  || not_ok "deploy.yaml" "$out"
yaml_bad() {
  printf '%b' "$2" > deploy.yaml
  out=$(D up 2>&1)
  if [ $? -ne 0 ] && echo "$out" | grep -q "deploy.yaml: line $3 column [0-9]*: .*$4"; then ok "deploy.yaml: $1"; else not_ok "deploy.yaml: $1" "$out"; fi
}
yaml_bad "bad type" 'image: busybox\nport: eighty\n' 2 "port"
yaml_bad "unknown key" 'image: busybox\nreplicas: 3\n' 2 "unknown key .replicas."
yaml_bad "deep nesting" 'image: busybox\nenv:\n  A:\n    B:\n      C: 1\n' 4 "nested too deeply"
yaml_bad "alias bomb" 'image: busybox\ncommand: &a ["x","x","x"]\nenv: *a\n' 2 "anchors are not allowed"
yaml_bad "not a mapping" '- a\n- b\n' 1 "expected a mapping"
cd - >/dev/null

# Metering: each second every running workload's counters go into the
# journal; `agentd usage` adds them up. A busy loop at 0.5 CPU bills about
# half a CPU-second a second; an idle one nearly nothing.
D up --image busybox --project meter --env production --service busy --cpus 0.5 -- sh -c 'while :; do :; done' >/dev/null
D up --image busybox --project meter --env production --service idle -- sleep 1000 >/dev/null
sleep 4.5
u=$("$AGENTD" usage --root "$root" --json)
busy=$(echo "$u" | grep -o '"deployment":"meter.production.busy","seconds":[0-9]*,"cpu_seconds":[0-9.]*')
secs=$(echo "$busy" | grep -o '"seconds":[0-9]*' | cut -d: -f2) cpu=$(echo "$busy" | grep -o '"cpu_seconds":[0-9.]*' | cut -d: -f2)
idle=$(echo "$u" | grep -o '"deployment":"meter.production.idle","seconds":[0-9]*,"cpu_seconds":[0-9.]*' | grep -o '"cpu_seconds":[0-9.]*' | cut -d: -f2)
if awk -v c="$cpu" -v s="$secs" -v i="$idle" 'BEGIN { exit !(s >= 3 && c >= 0.4 * (s - 1) && c <= 0.6 * (s + 1) && i < 0.05) }'; then
  ok "agentd usage: busy loop at 0.5 CPU billed $cpu CPU-s over $secs s; idle $idle"
else
  not_ok "agentd usage" "$u"
fi
du=$(D usage --json --project meter busy)
echo "$du" | grep -q '"deployment":"meter.production.busy"' && ! echo "$du" | grep -q idle && echo "$du" | grep -q '"cost_usd":' \
  && ok "deploy usage: agentd answers from its journal, filtered and priced" || not_ok "deploy usage" "$du"
D down --project meter --env production >/dev/null

# /metrics for people.
out=$(get "http://$METRICS/metrics")
echo "$out" | grep -q 'agentd_workload_up{project="shop",env="production",service="web"} 1' && echo "$out" | grep -q agentd_workload_memory_bytes \
  && ok "GET /metrics: per-workload state and usage" || not_ok "metrics" "$out"

# Removing a service stops it, closes its endpoint and frees its network.
addr=$(D ps --json --project shop | field address)
D down --project shop --env production web >/dev/null
veth="ad$(echo "$addr" | awk -F. '{ printf "%02x%02x%02x%02x", $1, $2, $3, $4 }')"
if ! get "$url/" >/dev/null && ! ip link show "$veth" >/dev/null 2>&1; then ok "down web: endpoint closed, veth $veth gone"
else not_ok "down web" "$(ip -br link | grep ad)"; fi
tap_end
