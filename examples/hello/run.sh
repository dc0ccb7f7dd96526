#!/bin/sh
# make demo: start examples/hello with `agentd run`, as an overlay of the
# app layer (examples/hello/app, mounted at /app) on a busybox base layer.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
AGENTD=${AGENTD:-$repo/build/agentd}
[ "$(id -u)" = 0 ] || { echo "make demo: agentd needs root (namespaces, cgroups, mounts)" >&2; exit 1; }
base=$("$repo"/tests/fixtures/busybox-rootfs.sh)
layer=$(mktemp -d /tmp/agentd-hello-XXXXXX)
trap 'rm -rf "$layer"' EXIT
chmod 755 "$layer"
cp -a "$here/app" "$layer/app"
echo "+ agentd run --layer $layer --layer $base --memory 64M --cpus 0.5 --pids 32 --hostname hello -- /app/hello.sh"
start=$(date +%s%N)
"$AGENTD" run --layer "$layer" --layer "$base" --memory 64M --cpus 0.5 --pids 32 \
  --hostname hello -- /app/hello.sh
end=$(date +%s%N)
echo "agentd run: started, ran and tore down the container in $(( (end - start) / 1000000 )) ms"
