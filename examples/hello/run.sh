#!/bin/sh
# make demo: build examples/hello as an image (the app layer on the busybox
# base), start `agentd serve` on a temporary root, deploy the image with
# `deploy up`, fetch its page through the stable URL, show `deploy ps` and
# the workload's log, then take everything down.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
B=$repo/${BUILD:-build}
[ "$(id -u)" = 0 ] || { echo "make demo: agentd needs root (namespaces, cgroups, mounts)" >&2; exit 1; }
command -v curl >/dev/null || { echo "make demo: curl is not installed (make deps)" >&2; exit 1; }
work=$(mktemp -d /tmp/agentd-demo-XXXXXX)
sock=$work/agentd.sock
agentd_pid=""
cleanup() {
  set +e
  if [ -n "$agentd_pid" ]; then
    "$B/deploy" --socket "$sock" down --project hello --env production >/dev/null 2>&1
    kill "$agentd_pid"; wait "$agentd_pid" 2>/dev/null
  fi
  ip link del addemo0 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# The image: busybox base layer + app layer, Cmd /app/hello.sh.
base=$("$repo"/tests/fixtures/busybox-rootfs.sh)
mkdir -p "$work/app"
cp -a "$here/app" "$work/app/app"
tar -C "$base" --numeric-owner -cf "$work/base.tar" .
tar -C "$work/app" --numeric-owner --owner=0 --group=0 -cf "$work/app.tar" ./app
"$repo"/tests/fixtures/make-oci-layout.sh "$work/image" hello gzip "$work/base.tar" "$work/app.tar" -- /app/hello.sh
"$B/agentd" image import --root "$work/root" --name hello "$work/image"

"$B/agentd" serve --root "$work/root" --socket "$sock" --bridge addemo0 --subnet 10.83.0.0/16 \
  --port-base 28080 2> "$work/agentd.log" &
agentd_pid=$!
i=0
until [ -S "$sock" ] || [ $i -ge 100 ]; do sleep 0.05; i=$((i + 1)); done
D() { "$B/deploy" --socket "$sock" "$@"; }

echo "+ deploy up --image hello --project hello --env production --service web --port 8080 --memory 64M --cpus 0.5"
D up --image hello --project hello --env production --service web --port 8080 --memory 64M --cpus 0.5
url=$(D ps --json --project hello | grep -o '"url":"[^"]*"' | cut -d'"' -f4)
echo "+ curl $url/"
curl -s "$url/"
echo "+ deploy ps"
D ps
echo "+ deploy logs web --project hello --env production"
D logs --project hello --env production web
