#!/bin/sh
# make deps: install the Debian packages the build, the tests and the
# benchmarks need, when they are missing.
set -eu
PKGS="gcc make pkg-config libc6-dev libcap-dev libseccomp-dev libcmocka-dev busybox-static file
      libarchive-dev libisal-dev libzstd-dev libjansson-dev libssl-dev libcurl4-openssl-dev
      cpio qemu-system-x86 linux-image-amd64 crun runc umoci skopeo docker-registry debootstrap
      zstd attr apache2-utils curl libyaml-dev libmnl-dev libmnl0 util-linux
      clang libclang-rt-14-dev libmicrohttpd-dev libsqlite3-dev sqlite3"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -z "$missing" ]; then
  echo "deps: all installed"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "deps: missing:$missing (run make deps as root)" >&2
  exit 1
fi
echo "deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing >/dev/null
