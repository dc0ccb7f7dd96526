#!/bin/sh
# `agentd run` as a user runs it: exit statuses, one-line errors, --help,
# limits and layers, and nothing left behind. TAP on stdout. POSIX sh, so
# it also runs under busybox in the cgroup v2 VM.
#   agentd_run.sh AGENTD   (AGENTD_TEST_ROOTFS and AGENTD_TEST_PROBE set)
set -u
AGENTD=$1
ROOTFS=$AGENTD_TEST_ROOTFS
work=$(mktemp -d /tmp/agentd-run-XXXXXX)
chmod 755 "$work"
mkdir "$work/probe-layer" "$work/upper"
cp "$AGENTD_TEST_PROBE" "$work/probe-layer/probe"
root="$work/root"
trap 'rm -rf "$work"' EXIT

. "$(dirname "$0")/tap.sh"
# check NAME WANT_STATUS GREP_PATTERN -- agentd run args...
check() {
  name=$1 want=$2 pattern=$3
  shift 4
  out=$("$AGENTD" run --root "$root" "$@" 2>&1)
  got=$?
  if [ "$got" -eq "$want" ] && printf '%s\n' "$out" | grep -q -- "$pattern"; then
    ok "$name"
  else
    not_ok "$name" "status $got (want $want)" "output: $out"
  fi
}

check "--help prints usage" 0 "Usage: agentd run" -- --help
check "exit status is propagated" 7 "" -- --rootfs "$ROOTFS" -- sh -c 'exit 7'
check "stdout reaches the caller" 0 "^hello$" -- --rootfs "$ROOTFS" -- echo hello
check "killing signal gives 128+N" 139 "" -- --layer "$work/probe-layer" --layer "$ROOTFS" -- /probe segv
check "OOM kill gives 137 and says so" 137 "OOM killer" -- --memory 32M --layer "$work/probe-layer" --layer "$ROOTFS" -- /probe alloc 512
check "missing rootfs: one-line error" 125 "^agentd run: rootfs \`/nonexistent\`: No such file or directory$" -- --rootfs /nonexistent -- true
check "unknown command: one-line error" 125 "^agentd run: command \`nosuch\` not found in the root filesystem" -- --rootfs "$ROOTFS" -- nosuch
check "bad --memory: one-line error" 125 "^agentd run: --memory: size \`12X\`: unknown unit" -- --rootfs "$ROOTFS" --memory 12X -- true
check "bad --cpus: one-line error" 125 "^agentd run: --cpus: cpus \`lots\`" -- --rootfs "$ROOTFS" --cpus lots -- true
check "layer that is a file: one-line error" 125 "not a directory" -- --layer "$work/probe-layer/probe" -- true
check "no command: usage error" 125 "no command given" -- --rootfs "$ROOTFS"
check "--env --hostname --user --cwd apply" 0 "^u=1000 g=1000 h=web-1 d=/tmp v=1$" -- \
  --rootfs "$ROOTFS" --env V=1 --hostname web-1 --user 1000 --cwd /tmp -- \
  sh -c 'echo u=$(id -u) g=$(id -g) h=$(hostname) d=$(pwd) v=$V'
# Limits, read from the host's side while the workload runs: it says
# "ready" on one fifo and waits for a line on another.
mkfifo "$work/in" "$work/out"
"$AGENTD" run --root "$root" --name lim-test --rootfs "$ROOTFS" --memory 48M --pids 17 --cpus 0.5 -- \
  sh -c 'echo ready; read x' < "$work/in" > "$work/out" 2>&1 &
exec 8> "$work/in"
read -r ready < "$work/out"
pids=$(cat /sys/fs/cgroup/agentd/lim-test/pids.max /sys/fs/cgroup/pids/agentd/lim-test/pids.max 2>/dev/null)
mem=$(cat /sys/fs/cgroup/agentd/lim-test/memory.max /sys/fs/cgroup/memory/agentd/lim-test/memory.limit_in_bytes 2>/dev/null)
cpu=$(cat /sys/fs/cgroup/agentd/lim-test/cpu.max /sys/fs/cgroup/cpu/agentd/lim-test/cpu.cfs_quota_us 2>/dev/null)
echo done >&8
exec 8>&-
wait $!
if [ "$ready" = ready ] && [ "$pids" = 17 ] && [ "$mem" = 50331648 ] && { [ "$cpu" = "50000 100000" ] || [ "$cpu" = 50000 ]; }; then
  ok "--memory --pids --cpus land in the cgroup"
else
  not_ok "--memory --pids --cpus land in the cgroup" "ready=$ready pids=$pids mem=$mem cpu=$cpu"
fi
check "--layer with --upper: writes land in the upper dir" 0 "" -- \
  --layer "$work/probe-layer" --layer "$ROOTFS" --upper "$work/upper" -- sh -c 'echo x > /written'
if [ -f "$work/upper/written" ] && [ ! -e "$ROOTFS/written" ] && [ ! -e "$work/probe-layer/written" ]; then
  ok "upper dir holds the write, the layers do not"
else
  not_ok "upper dir holds the write, the layers do not" "$(ls -la "$work/upper")"
fi

# Nothing of any run above is left: no state dir, cgroup or mount.
left=$(ls -A "$root/run" 2>/dev/null)
cg=$(ls -d /sys/fs/cgroup/agentd/run-* /sys/fs/cgroup/*/agentd/run-* 2>/dev/null)
mnt=$(grep -c "$root" /proc/self/mountinfo)
if [ -z "$left" ] && [ -z "$cg" ] && [ "$mnt" -eq 0 ]; then
  ok "no state dir, cgroup or mount is left behind"
else
  not_ok "no state dir, cgroup or mount is left behind" "state: $left" "cgroups: $cg" "mounts: $mnt"
fi
tap_end
