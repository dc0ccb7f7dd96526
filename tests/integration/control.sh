#!/bin/bash
# Metering end to end with real processes: controld in a network namespace
# this test owns, agentd nodes streaming their usage journals to it. A
# busy loop's CPU, a 100 MiB workload's memory, a stopped service billing
# nothing; kill -9 of controld and of agentd, a 30 s cut of the link, a
# corrupt journal tail: afterwards the ledger holds exactly what the
# journal sampled, no second missing or twice. A wrong token, hostile
# frames, two nodes at once, credits running out. TAP on stdout.
#   control.sh AGENTD DEPLOY CONTROLD FRAME_SEND PROBE
set -u
AGENTD=$(realpath "$1") DEPLOY=$(realpath "$2") CONTROLD=$(realpath "$3")
FRAME_SEND=$(realpath "$4") PROBE=$(realpath "$5")
here=$(cd "$(dirname "$0")" && pwd)
. "$here/tap.sh"
work=$(mktemp -d /tmp/agentd-control-XXXXXX)
NS=adctl$$ HOSTIF=adcv0 NSIF=adcv1 CTL=10.251.0.2:27070
db="$work/ledger.sqlite"
cpid="" pids=""

cleanup() {
  for s in "$work"/a*.sock; do
    [ -S "$s" ] || continue
    for e in $("$DEPLOY" --socket "$s" env ls --json 2>/dev/null | grep -o '"project":"[^"]*","env":"[^"]*"' \
               | sed 's/"project":"\([^"]*\)","env":"\([^"]*\)"/\1:\2/'); do
      "$DEPLOY" --socket "$s" down --project "${e%%:*}" --env "${e#*:}" >/dev/null 2>&1
    done
  done
  for p in $pids $cpid; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  [ "$failed" = 0 ] || for l in "$work"/*.log; do tail -15 "$l" | sed "s|^|# $(basename "$l"): |"; done
  ip netns del $NS 2>/dev/null
  ip link del $HOSTIF 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
wait_for() {
  t=$1; shift
  i=0
  while [ $i -lt $((t * 10)) ]; do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; i=$((i + 1)); done
  return 1
}
q() { sqlite3 -cmd ".timeout 5000" "$db" "$1"; }

# The control plane's own network namespace, reached over a veth pair:
# cutting the link is taking the host end down.
ip netns add $NS && ip link add $HOSTIF type veth peer name $NSIF && ip link set $NSIF netns $NS \
  && ip addr add 10.251.0.1/30 dev $HOSTIF && ip link set $HOSTIF up \
  && ip -n $NS addr add 10.251.0.2/30 dev $NSIF && ip -n $NS link set $NSIF up && ip -n $NS link set lo up \
  || { not_ok "set up the control plane's network namespace"; tap_end; }
head -c 20 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$work/token"
echo "not-the-right-token-at-all" > "$work/wrong"

start_controld() {
  ip netns exec $NS "$CONTROLD" --listen $CTL --db "$db" --token-file "$work/token" >> "$work/controld.log" 2>&1 &
  cpid=$!
  wait_for 5 grep -q "listening on" "$work/controld.log"
}
# start_agentd N [ARGS...]: node nN on its own root and socket.
start_agentd() {
  k=$1; shift
  rm -f "$work/a$k.sock"
  "$AGENTD" serve --root "$work/root$k" --socket "$work/a$k.sock" --no-network --node-id "n$k" \
    --control $CTL --metrics 127.0.0.1:2718$k "$@" >> "$work/agentd$k.log" 2>&1 &
  eval "apid$k=$!"
  pids="$pids $!"
  wait_for 5 test -S "$work/a$k.sock"
}
D() { k=$1; shift; "$DEPLOY" --socket "$work/a$k.sock" "$@"; }
metric() { curl -sf "http://127.0.0.1:2718$1/metrics" | awk -v m="$2" '$1 == m { print $2 }'; }
# The control plane holds every record node N's journal has.
caught_up() { [ "$(metric "$1" agentd_uplink_acked_seq)" = "$(metric "$1" agentd_journal_records)" ]; }

# An image with the probe beside busybox (spin, hold).
rootfs=$("$here"/../fixtures/busybox-rootfs.sh)
mkdir -p "$work/probe-layer" && cp "$PROBE" "$work/probe-layer/probe"
tar -C "$rootfs" --numeric-owner -cf "$work/base.tar" . && tar -C "$work/probe-layer" -cf "$work/probe.tar" probe \
  && "$here"/../fixtures/make-oci-layout.sh "$work/image" probe gzip "$work/base.tar" "$work/probe.tar" -- sleep 1000 \
  && for k in 1 2 3; do "$AGENTD" image import --root "$work/root$k" --name probe "$work/image" >/dev/null 2>&1; done \
  || { not_ok "build the probe image"; tap_end; }

start_controld || { not_ok "controld starts" "$(cat "$work/controld.log")"; tap_end; }
ok "controld listens in its own network namespace, with a token"
start_agentd 1 --token-file "$work/token" || { not_ok "agentd n1 starts"; tap_end; }
if wait_for 10 grep -q "uplink: connected" "$work/agentd1.log"; then ok "agentd n1 connects its uplink"; else not_ok "uplink connects" "$(cat "$work/agentd1.log")"; fi

# The workloads: a 10 s busy loop, a 100 MiB resident process, a service
# that stops after 2 s.
t0=$(date +%s)
D 1 up --image probe --project meter --env main --service spin --restart never -- /probe spin 10000 >/dev/null \
  && D 1 up --image probe --project meter --env main --service mem --restart never -- /probe hold 100 >/dev/null \
  && D 1 up --image probe --project meter --env main --service brief --restart never -- sleep 2 >/dev/null \
  || { not_ok "deploy the workloads"; tap_end; }
ok "deployed a busy loop, a 100 MiB holder and a 2 s sleeper"

# kill -9 controld mid-stream, back 3 s later.
sleep 4
kill -9 "$cpid"; wait "$cpid" 2>/dev/null
sleep 3
start_controld || not_ok "controld restarts"
reconnected() { grep "uplink: connected" "$work/agentd1.log" | tail -1 | grep -q "holds records up to [1-9]"; }
if wait_for 15 reconnected; then
  ok "after kill -9 of controld, agentd reconnects and resumes from the ledger's ack"
else
  not_ok "agentd reconnects after controld's kill -9" "$(grep uplink "$work/agentd1.log" | tail -3)"
fi

# The busy loop ends by itself; its own CPU time is in its log.
wait_for 20 sh -c "'$DEPLOY' --socket '$work/a1.sock' logs --project meter --env main spin | grep -q cpu_us="
own_cpu=$(D 1 logs --project meter --env main spin | grep -o 'cpu_us=[0-9]*' | cut -d= -f2)

# Cut the link for 30 s: agentd goes on sampling, then catches up.
before=$(q "SELECT count(*) FROM records WHERE node='n1'")
ip link set $HOSTIF down
sleep 30
during=$(q "SELECT count(*) FROM records WHERE node='n1'")
ip link set $HOSTIF up
sleep 1
# kill -9 agentd mid-stream: it restarts, adopts the holder, streams on.
kill -9 "$apid1"; wait "$apid1" 2>/dev/null
sleep 1
start_agentd 1 --token-file "$work/token" || not_ok "agentd n1 restarts"
# A corrupt journal tail: stop agentd, append garbage, start again.
sleep 2
kill "$apid1"; wait "$apid1" 2>/dev/null
seg=$(ls "$work/root1/journal"/seg-*.log | tail -1)
printf '\x30\x00\x00\x00\xde\xad\xbe\xefgarbage' >> "$seg"
start_agentd 1 --token-file "$work/token" || not_ok "agentd n1 starts after the corruption"
if grep -q "cut a torn or corrupt tail" "$work/agentd1.log"; then ok "a corrupt journal tail is cut and reported"; else not_ok "corrupt tail reported" "$(tail -5 "$work/agentd1.log")"; fi
if [ "$during" -le $((before + 2)) ]; then ok "while the link is cut nothing reaches the ledger ($before -> $during records)"; else not_ok "the cut held" "$before -> $during"; fi
wait_for 15 caught_up 1
mem_rows=$(D 1 usage --json --project meter --env main mem)
if echo "$mem_rows" | grep -q '"deployment":"meter.main.mem"'; then ok "deploy usage answers from the control plane's ledger"; else not_ok "deploy usage through agentd" "$mem_rows"; fi

# Stop everything of n1: no more records; then the ledger must equal the journal.
D 1 down --project meter --env main >/dev/null
wait_for 15 caught_up 1 || not_ok "the uplink catches up" "acked $(metric 1 agentd_uplink_acked_seq) of $(metric 1 agentd_journal_records)"
t1=$(date +%s)
journal=$("$AGENTD" usage --root "$work/root1" --json)
jval() { echo "$journal" | grep -o "{[^}]*\"deployment\":\"$1\"[^}]*}" | grep -o "\"$2\":[0-9.e+-]*" | cut -d: -f2; }
read -r nrec minseq maxseq <<< "$(q "SELECT count(*), min(seq), max(seq) FROM records WHERE node='n1'" | tr '|' ' ')"
jmax=$(q "SELECT acked_seq FROM nodes WHERE node='n1'")
if [ "$nrec" -gt 20 ] && [ "$minseq" = 1 ] && [ "$maxseq" = "$nrec" ] && [ "$jmax" = "$maxseq" ]; then
  ok "the ledger holds records 1..$maxseq of n1, none missing, none twice"
else
  not_ok "contiguous records" "count=$nrec min=$minseq max=$maxseq acked=$jmax"
fi
all_equal=1
for svc in spin mem brief; do
  lsamples=$(q "SELECT count(*) FROM usage WHERE node='n1' AND service='$svc'")
  lcpu=$(q "SELECT sum(cpu_us) FROM usage WHERE node='n1' AND service='$svc'")
  jsamples=$(jval "meter.main.$svc" seconds)
  jcpu=$(jval "meter.main.$svc" cpu_seconds)
  if [ "$lsamples" != "$jsamples" ] || ! awk -v a="$lcpu" -v b="$jcpu" 'BEGIN { d = a / 1e6 - b; exit !(d < 0.002 && d > -0.002) }'; then
    all_equal=0
    not_ok "ledger = journal for $svc" "ledger: $lsamples samples, $lcpu us; journal: $jsamples samples, $jcpu s" \
      "ledger rows (seq ts_ms version ms cpu_us): $(q "SELECT seq, ts_ms, version, ms, cpu_us FROM usage WHERE node='n1' AND service='$svc' ORDER BY seq" | tr '\n' ' ')"
  fi
done
[ $all_equal = 1 ] && ok "after both kills, the cut and the cut tail, the ledger equals the journal sample for sample"

# The busy loop: billed CPU within 5% of what the kernel told it.
lcpu=$(q "SELECT sum(cpu_us) FROM usage WHERE service='spin'")
if [ -n "$own_cpu" ] && awk -v a="$lcpu" -v b="$own_cpu" 'BEGIN { exit !(a >= b * 0.95 && a <= b * 1.05) }'; then
  ok "the busy loop's billed CPU ($lcpu us) is within 5% of its own count ($own_cpu us)"
else
  not_ok "busy loop CPU" "billed $lcpu us, own $own_cpu us"
fi
# The holder: about 0.1 GB for each second it ran.
read -r msec mbs <<< "$(q "SELECT sum(ms) / 1000.0, sum(mem_byte_s) FROM usage WHERE service='mem'" | tr '|' ' ')"
if awk -v s="$msec" -v b="$mbs" 'BEGIN { g = b / 1e9 / s; exit !(s > 20 && g > 0.100 && g < 0.125) }'; then
  ok "the 100 MiB workload bills $(awk -v s="$msec" -v b="$mbs" 'BEGIN { printf "%.4f", b / 1e9 / s }') GB per second over ${msec} s"
else
  not_ok "memory GB-seconds" "seconds=$msec byte_s=$mbs"
fi
# The sleeper stopped after 2 s: it bills a couple of seconds and nothing after.
bsec=$(q "SELECT sum(ms) / 1000.0 FROM usage WHERE service='brief'")
blast=$(q "SELECT max(ts_ms) / 1000 FROM usage WHERE service='brief'")
if awk -v s="$bsec" 'BEGIN { exit !(s >= 1.5 && s <= 4) }' && [ $((blast - t0)) -le 6 ]; then
  ok "a service that stopped after 2 s billed ${bsec} s, nothing since"
else
  not_ok "stopped service" "seconds=$bsec last=$((blast - t0)) s after start (test ran $((t1 - t0)) s)"
fi

# A node with the wrong token is refused, and says why.
start_agentd 3 --token-file "$work/wrong" || not_ok "agentd n3 starts"
if wait_for 10 grep -q "wrong token" "$work/agentd3.log" && grep -q "node n3 refused: wrong token" "$work/controld.log" \
   && [ "$(q "SELECT count(*) FROM nodes WHERE node='n3'")" = 0 ]; then
  ok "a node with a wrong token is refused (both sides say so)"
else
  not_ok "wrong token refused" "$(tail -3 "$work/agentd3.log")"
fi

# Two nodes at once, their records apart.
start_agentd 2 --token-file "$work/token" || not_ok "agentd n2 starts"
D 2 up --image probe --project other --env main --service idle -- sleep 1000 >/dev/null
D 1 up --image probe --project meter --env main --service idle -- sleep 1000 >/dev/null
if wait_for 15 sh -c "[ \$(sqlite3 -cmd '.timeout 5000' '$db' \"SELECT count(*) FROM records WHERE node='n2'\") -ge 3 ]"; then
  ok "a second node streams to the same controld"
else
  not_ok "n2 streams" "$(tail -3 "$work/agentd2.log")"
fi
if [ "$(q "SELECT count(DISTINCT node) FROM usage WHERE project='other'")" = 1 ] \
   && [ "$(q "SELECT node FROM usage WHERE project='other' LIMIT 1")" = n2 ]; then
  ok "each node's usage stays its own"
else
  not_ok "nodes apart" "$(q "SELECT node, project, count(*) FROM usage GROUP BY node, project")"
fi

# A node whose journal is lost (a reinstall) starts again at record 1: the
# ledger moves its ack back instead of taking the new records for replays.
kill "$apid2"; wait "$apid2" 2>/dev/null
rm -rf "$work/root2/journal"
before=$(q "SELECT count(*) FROM usage WHERE node='n2'")
start_agentd 2 --token-file "$work/token" || not_ok "agentd n2 restarts"
if wait_for 15 sh -c "[ \$(sqlite3 -cmd '.timeout 5000' '$db' \"SELECT count(*) FROM usage WHERE node='n2'\") -gt $((before + 2)) ]" \
   && "$CONTROLD" events --db "$db" | grep -q "reset.*n2.*starts again at record 1"; then
  ok "a node whose journal was lost is billed again from record 1 (the ledger says so)"
else
  not_ok "journal reset" "$("$CONTROLD" events --db "$db" | tail -2)"
fi

# Hostile frames: each gets an error; controld keeps serving the nodes.
hex() { printf %s "$1" | od -An -tx1 | tr -d ' \n'; }
len() { printf '%08x' "$1"; }
tok=$(cat "$work/token")
hello="0a02$(hex x1)1a$(printf %02x ${#tok})$(hex "$tok")2001"
hello_frame="414401800000000000000001$(len $((${#hello} / 2)))$hello"
FS() { ip netns exec $NS "$FRAME_SEND" "tcp:10.251.0.2:27070" "$@" 2>&1; }
chk2() {
  name=$1 want=$2 pat=$3; shift 3
  out=$(FS "$@"); rc=$?
  if [ $rc = "$want" ] && echo "$out" | grep -q "$pat"; then ok "$name"; else not_ok "$name" "rc=$rc $out"; fi
}
chk2 "bad magic: an error, then the connection closes" 0 "type=0x01.*code=1" 58580180000000000000000100000000
chk2 "an oversized frame: TOO_LARGE, then closed" 0 "code=7" 414401820000000000000001 7fffffff
chk2 "a batch before HELLO: denied" 0 "code=6.*HELLO" 41440182000000000000000100000000
chk2 "a malformed batch after HELLO: MALFORMED, the connection stays" 3 "code=1" "$hello_frame" 4144018200000000000000020000000304ff01
chk2 "an unknown message type: UNKNOWN_TYPE, the connection stays" 3 "code=2" "$hello_frame" 41440177000000000000000200000000
c1=$(q "SELECT count(*) FROM records")
if wait_for 10 sh -c "[ \$(sqlite3 -cmd '.timeout 5000' '$db' 'SELECT count(*) FROM records') -gt $c1 ]" && kill -0 "$cpid"; then ok "controld keeps serving the nodes after hostile frames"; else not_ok "controld still serves"; fi

# Credits: project other gets a sliver; at zero its workloads stop, and nothing else.
"$CONTROLD" credits add other 0.000000001 --db "$db" 2>/dev/null
if wait_for 15 sh -c "! '$DEPLOY' --socket '$work/a2.sock' ps --project other --json | grep -q idle"; then
  ok "credits at zero stop the project's workloads"
else
  not_ok "credits stop" "$(tail -3 "$work/agentd2.log")"
fi
if D 1 ps --json | grep -q '"service":"idle"' && grep -q "stopped 1 deployment" "$work/agentd2.log" \
   && "$CONTROLD" events --db "$db" | grep -q "stopped.*other.*n2.*other.main.idle"; then
  ok "... and nothing else; agentd reported what it stopped, the ledger recorded it"
else
  not_ok "only that project" "$("$CONTROLD" events --db "$db" | tail -3)"
fi
if "$CONTROLD" events --db "$db" | grep -q "alert.*other.*100%"; then ok "the credit alerts are recorded"; else not_ok "alerts"; fi
out=$(D 2 up --image probe --project other --env main --service again -- sleep 1000 2>&1)
if [ $? -ne 0 ] && echo "$out" | grep -q "out of credits.*controld credits add other"; then
  ok "a deploy of a project out of credits is refused, saying what to do"
else
  not_ok "deploy refused when out of credits" "$out"
fi
"$CONTROLD" credits add other 1 --db "$db" 2>/dev/null
if wait_for 10 grep -q "project other has credits again" "$work/agentd2.log" \
   && D 2 up --image probe --project other --env main --service again -- sleep 1000 >/dev/null 2>&1; then
  ok "credits added: the node takes the project's deploys again"
else
  not_ok "resume after credits" "$(tail -3 "$work/agentd2.log")" "$("$CONTROLD" events --db "$db" 2>&1 | tail -4)" "$("$CONTROLD" credits --db "$db" 2>&1)"
fi
out=$("$CONTROLD" usage --db "$db" --project meter --by minute)
if echo "$out" | grep -q "meter.*spin" && echo "$out" | grep -q '^total \$'; then ok "controld usage --by minute prints the bill"; else not_ok "controld usage" "$out"; fi
# A clean stop, and nothing a sanitizer build would report (leaks at exit).
kill "$cpid"; wait "$cpid"; rc=$?; cpid=""
if [ $rc = 0 ] && ! grep -q "Sanitizer" "$work"/*.log; then ok "controld stops cleanly on SIGTERM; no sanitizer reports"; else not_ok "clean stop" "rc=$rc" "$(grep -h -A5 Sanitizer "$work"/*.log | head -20)"; fi
tap_end
