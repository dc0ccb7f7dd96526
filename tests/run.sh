#!/bin/sh
# Runs the test programs, reads their TAP output and prints one summary
# line last: "N passed, N failed, N skipped". Exits non-zero on a failure.
#   tests/run.sh [unit|integration|v2|all]
set -u
BUILD=${BUILD:-build}
what=${1:-all}
here=$(cd "$(dirname "$0")" && pwd)
results=$(mktemp)
trap 'rm -f "$results"' EXIT

# Feed TAP on stdin; echo it, and tally ok / not ok / skip into $results.
tally() {
  name=$1
  while IFS= read -r line; do
    line=$(printf '%s' "$line" | tr -d '\r')
    printf '%s\n' "$line"
    case "$line" in
      *"ok"*"# SKIP"*|*"ok"*"# skip"*) echo "skip" >> "$results" ;;
      "not ok"*) echo "fail $name: $line" >> "$results" ;;
      "ok"*) echo "pass" >> "$results" ;;
    esac
  done
}

# Run one TAP-speaking program; a crash with no "not ok" still counts.
run_tap() {
  name=$1; shift
  echo "# --- $name"
  before=$(grep -c '^fail' "$results")
  out=$(mktemp)
  "$@" > "$out" 2>&1
  rc=$?
  tally "$name" < "$out"
  rm -f "$out"
  after=$(grep -c '^fail' "$results")
  if [ "$rc" -ne 0 ] && [ "$after" -eq "$before" ]; then
    echo "not ok - $name exited with status $rc"
    echo "fail $name: exit $rc" >> "$results"
  fi
}

skip() {
  echo "ok - $1 # SKIP $2"
  echo "skip" >> "$results"
}

export CMOCKA_MESSAGE_OUTPUT=TAP

if [ "$what" = unit ] || [ "$what" = all ]; then
  for t in "$here"/unit/test_*.c; do
    n=$(basename "$t" .c)
    run_tap "unit/$n" "$BUILD/tests/$n"
  done
fi

if [ "$what" = unit ] || [ "$what" = all ]; then
  if command -v clang >/dev/null; then
    # The protocol decoder under libFuzzer for a bounded time (make fuzz for longer).
    fuzz_tap() {
      if make -s fuzz FUZZ_SECONDS=20 BUILD="$BUILD" > "$BUILD/fuzz.log" 2>&1; then
        echo "ok - proto decoder fuzzed 20 s: $(grep -o 'Done [0-9]* runs' "$BUILD/fuzz.log")"
      else
        echo "not ok - proto decoder fuzzing found a failure"; tail -30 "$BUILD/fuzz.log" | sed 's/^/#   /'
      fi
    }
    run_tap fuzz/proto fuzz_tap
  else
    skip fuzz/proto "clang (with libFuzzer) is not installed (make deps)"
  fi
fi

if [ "$what" = integration ] || [ "$what" = all ]; then
  if [ "$(id -u)" != 0 ]; then
    skip integration "needs root (namespaces, cgroups, mounts)"
  elif ! rootfs=$("$here"/fixtures/busybox-rootfs.sh); then
    skip integration "busybox-static is not installed (make deps)"
  else
    export AGENTD_TEST_ROOTFS="$rootfs" AGENTD_TEST_PROBE="$BUILD/tests/probe"
    for t in "$here"/integration/test_*.c; do
      n=$(basename "$t" .c)
      run_tap "integration/$n" "$BUILD/tests/$n"
    done
    run_tap integration/agentd_run "$here"/integration/agentd_run.sh "$BUILD/agentd"
    run_tap integration/agentd_run-asan "$here"/integration/agentd_run.sh "$BUILD/agentd-san"
    run_tap integration/deploy "$here"/integration/deploy.sh "$BUILD/agentd" "$BUILD/deploy" "$BUILD/tests/frame_send"
    run_tap integration/deploy-asan "$here"/integration/deploy.sh "$BUILD/agentd-san" "$BUILD/deploy" "$BUILD/tests/frame_send"
    run_tap integration/control "$here"/integration/control.sh "$BUILD/agentd" "$BUILD/deploy" "$BUILD/controld" "$BUILD/tests/frame_send" "$BUILD/tests/probe"
    run_tap integration/control-asan "$here"/integration/control.sh "$BUILD/agentd-san" "$BUILD/deploy" "$BUILD/controld-san" "$BUILD/tests/frame_send" "$BUILD/tests/probe"
    if command -v node >/dev/null && command -v npm >/dev/null; then
      run_tap integration/mcp "$here"/integration/mcp.sh "$BUILD/agentd" "$BUILD/deploy"
      run_tap integration/mcp-asan "$here"/integration/mcp.sh "$BUILD/agentd" "$BUILD/deploy-san"
    else
      skip integration/mcp "node and npm are not installed (the MCP SDK client needs them)"
    fi
    if command -v umoci >/dev/null && command -v getfattr >/dev/null; then
      run_tap integration/image_umoci "$here"/integration/image_umoci.sh "$BUILD/agentd"
      run_tap integration/image_umoci-asan "$here"/integration/image_umoci.sh "$BUILD/agentd-san"
    else
      skip integration/image_umoci "umoci or getfattr (attr) is not installed (make deps)"
    fi
    if command -v docker-registry >/dev/null && command -v skopeo >/dev/null && command -v htpasswd >/dev/null \
       && command -v umoci >/dev/null; then
      run_tap integration/registry_pull "$here"/integration/registry_pull.sh "$BUILD/agentd" "$BUILD/tests/fake_http"
      run_tap integration/registry_pull-asan "$here"/integration/registry_pull.sh "$BUILD/agentd-san" "$BUILD/tests/fake_http"
    else
      skip integration/registry_pull "docker-registry, skopeo, umoci or htpasswd is not installed (make deps)"
    fi
  fi
fi

if [ "$what" = v2 ] || [ "$what" = all ]; then
  if [ "$(id -u)" != 0 ]; then
    skip cgroup-v2 "needs root"
  elif ! command -v qemu-system-x86_64 >/dev/null || ! ls /boot/vmlinuz-* >/dev/null 2>&1; then
    skip cgroup-v2 "qemu-system-x86 or linux-image-amd64 is not installed (make deps)"
  else
    run_tap cgroup-v2 "$here"/v2/run-qemu.sh "$BUILD"
  fi
fi

pass=$(grep -c '^pass' "$results")
fail=$(grep -c '^fail' "$results")
skipped=$(grep -c '^skip' "$results")
if [ "$fail" -gt 0 ]; then
  echo "# failures:"
  grep '^fail' "$results" | sed 's/^fail /#   /'
fi
echo "$pass passed, $fail failed, $skipped skipped"
[ "$fail" -eq 0 ]
