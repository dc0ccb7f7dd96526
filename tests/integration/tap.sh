# Sourced by the shell test suites: TAP lines and the exit status.
# POSIX sh, so that it also runs under busybox in the cgroup v2 VM.
n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
# not_ok NAME [DETAIL...]: each detail goes on a "#" line under it.
not_ok() { n=$((n + 1)); failed=1; echo "not ok $n - $1"; shift; for l in "$@"; do echo "#   $l"; done; }
tap_end() { echo "1..$n"; exit $failed; }
