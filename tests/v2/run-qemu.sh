#!/bin/sh
# make test-v2: run the runtime integration tests on a real cgroup v2 host.
# This machine is hybrid, so boot Debian's kernel under qemu (software
# emulation) with an initramfs holding busybox, the built binaries, the
# shared libraries they load and the test fixtures; its init mounts only
# cgroup2 and runs the tests. TAP from the guest's console on stdout.
#   tests/v2/run-qemu.sh BUILD
set -eu
BUILD=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)
kernel=$(ls /boot/vmlinuz-* | sort -V | tail -1)
kver=${kernel#/boot/vmlinuz-}
overlay_ko=$(find "/lib/modules/$kver" -name 'overlay.ko*' | head -1)
rootfs=$("$here"/../fixtures/busybox-rootfs.sh)
out="$BUILD/v2"
rm -rf "$out"
mkdir -p "$out/initrd/bin" "$out/initrd/tests" "$out/initrd/fixture" "$out/initrd/proc" \
  "$out/initrd/sys" "$out/initrd/dev" "$out/initrd/tmp" "$out/initrd/work"
initrd="$out/initrd"

# busybox and its applets; the binaries under test with their libraries.
cp /bin/busybox "$initrd/bin/busybox"
for a in $(/bin/busybox --list); do [ -e "$initrd/bin/$a" ] || ln -s busybox "$initrd/bin/$a"; done
for bin in "$BUILD/agentd" "$BUILD/tests/test_runtime"; do
  cp "$bin" "$initrd/tests/"
  for lib in $(ldd "$bin" | awk '/=>/ { print $3 } /^\t\/lib/ { print $1 }'); do
    mkdir -p "$initrd$(dirname "$lib")"
    cp -L "$lib" "$initrd$lib"
  done
done
cp "$BUILD/tests/probe" "$initrd/tests/probe"
cp "$here/../integration/agentd_run.sh" "$here/../integration/tap.sh" "$initrd/tests/"
cp -a "$rootfs" "$initrd/fixture/rootfs"
[ -n "$overlay_ko" ] && cp "$overlay_ko" "$initrd/overlay.ko"

# pivot_root refuses the initramfs root: stage one moves everything onto a
# tmpfs and switch_roots into it.
cat > "$initrd/init" <<'INIT'
#!/bin/sh
export PATH=/bin
mkdir /newroot
mount -t tmpfs -o mode=755 tmpfs /newroot
for d in /*; do
  case "$d" in /newroot|/proc|/sys|/dev|/init) ;; *) cp -a "$d" /newroot/ ;; esac
done
mkdir -p /newroot/proc /newroot/sys /newroot/dev
exec switch_root /newroot /init2
INIT
cat > "$initrd/init2" <<'INIT'
#!/bin/sh
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t tmpfs -o mode=1777 tmpfs /tmp
mkdir -p /work && mount -t tmpfs tmpfs /work
[ -f /overlay.ko ] && insmod /overlay.ko
cp -a /fixture/rootfs /work/rootfs
echo "# guest: $(uname -r), cgroup controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
export AGENTD_TEST_ROOTFS=/work/rootfs AGENTD_TEST_PROBE=/tests/probe CMOCKA_MESSAGE_OUTPUT=TAP
start=$(cut -d' ' -f1 /proc/uptime)
/tests/test_runtime 2>&1
/tests/agentd_run.sh /tests/agentd 2>&1
echo "# guest test time: $start s boot, $(cut -d' ' -f1 /proc/uptime) s at end"
echo "V2-TESTS-DONE"
poweroff -f
INIT
chmod +x "$initrd/init" "$initrd/init2"
(cd "$initrd" && find . | cpio -o -H newc --quiet | gzip -1) > "$out/initrd.cpio.gz"

# -no-reboot with panic=-1 turns a guest panic into an exit; the timeout
# bounds a hung guest.
start=$(date +%s)
timeout 900 qemu-system-x86_64 -machine q35 -accel tcg,thread=multi -smp 2 -m 1536 \
  -kernel "$kernel" -initrd "$out/initrd.cpio.gz" \
  -append "console=ttyS0 quiet panic=-1 rdinit=/init cgroup_no_v1=all" \
  -nographic -no-reboot -serial file:"$out/console.log" -monitor none > /dev/null 2>&1 || true
end=$(date +%s)
tr -d '\r' < "$out/console.log" | grep -E '^(ok|not ok|#|1\.\.)' | grep -v '^# ---'
echo "# cgroup v2 run under qemu: $((end - start)) s wall (boot + tests)"
if ! grep -q V2-TESTS-DONE "$out/console.log"; then
  echo "not ok - cgroup v2 guest did not finish (see $out/console.log)"
  exit 1
fi
