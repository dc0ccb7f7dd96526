#!/bin/bash
# agentd's layer cache against umoci, the reference unpacker: build a
# multi-layer image with umoci (deletions, an opaque directory, hard links,
# xattrs, setuid, a symlink, a setgid directory), import it with agentd, mount the overlay of
# the cached layers and compare it file by file (type, mode, owner, size,
# link count, symlink target, content, user xattrs) with `umoci unpack`.
# Then: the image CLI (images, run --image, rm, gc), oci-archive import, and
# nothing half-written when a layer is bad. TAP on stdout.
#   image_umoci.sh AGENTD     (AGENTD_TEST_ROOTFS set)
set -u
AGENTD=$1
BASE=$AGENTD_TEST_ROOTFS
work=$(mktemp -d /tmp/agentd-img-XXXXXX)
chmod 755 "$work"
cleanup() { umount "$work/merged" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
. "$(dirname "$0")/tap.sh"
check() { local name=$1; shift; if out=$("$@" 2>&1); then ok "$name"; else not_ok "$name" "$out"; fi; }

L="$work/layout"
root="$work/root"
umoci init --layout "$L" >/dev/null
umoci new --image "$L:app" >/dev/null
umoci insert --image "$L:app" "$BASE" / >/dev/null

# Layer 2: changes made in an unpacked bundle, turned into a layer by umoci.
umoci unpack --image "$L:app" "$work/bundle" >/dev/null
r="$work/bundle/rootfs"
rm -f "$r/bin/vi" "$r/etc/group"                       # whiteouts
mkdir -p "$r/srv/data" && echo one > "$r/srv/data/a"   # new files
echo payload > "$r/srv/file" && ln "$r/srv/file" "$r/srv/file.link"   # a hard link
setfattr -n user.note -v hello "$r/srv/file"
cp "$r/bin/busybox" "$r/srv/suid" && chmod 4755 "$r/srv/suid" && chown 1000:1000 "$r/srv/suid"
ln -s ../srv/file "$r/usr/file-link"
# A setgid directory of another group: what is made in it inherits that
# group (and a directory the bit) unless the layer says otherwise.
mkdir "$r/srv/shared" && chown 0:50 "$r/srv/shared" && chmod 2775 "$r/srv/shared"
echo x > "$r/srv/shared/f" && chown 0:0 "$r/srv/shared/f"
mkdir "$r/srv/shared/sub" && chown 0:0 "$r/srv/shared/sub" && chmod 00755 "$r/srv/shared/sub"
ln -s f "$r/srv/shared/link" && chown -h 0:0 "$r/srv/shared/link"
echo y > "$r/srv/shared/g"
umoci repack --image "$L:app" "$work/bundle" >/dev/null

# Layer 3, by hand: an opaque srv/data and a whiteout of a whole directory.
mkdir -p "$work/l3/srv/data" "$work/l3/usr"
touch "$work/l3/srv/data/.wh..wh..opq" "$work/l3/usr/.wh.sbin"
echo two > "$work/l3/srv/data/b"
tar -C "$work/l3" --numeric-owner --owner=0 --group=0 -cf "$work/l3.tar" srv usr
umoci raw add-layer --image "$L:app" "$work/l3.tar" >/dev/null
umoci config --image "$L:app" --config.env GREETING=hi --config.cmd sh --config.cmd -c \
  --config.cmd 'echo $GREETING from $(hostname)' >/dev/null

rm -rf "$work/bundle"
umoci unpack --image "$L:app" "$work/umoci" >/dev/null
check "agentd image import of a 3-layer umoci image" "$AGENTD" image import --root "$root" "$L"

# The overlay of agentd's cached layers, top first, as runtime/ mounts it.
mkdir -p "$work/merged"
diff_ids=$(for b in "$root"/blobs/sha256/*; do grep -o '"diff_ids":\[[^]]*\]' "$b" 2>/dev/null; done | head -1 |
           grep -o 'sha256:[0-9a-f]*' | sed 's/sha256://')
lower=""
for d in $diff_ids; do lower="$root/layers/$d${lower:+:$lower}"; done
mount -t overlay overlay -o "ro,lowerdir=$lower" "$work/merged"

# One line per path: type mode owner links target, size and content hash,
# user xattrs. (A merged overlay directory reports one link: not compared.)
describe() {
  (cd "$1" && find . -mindepth 1 -printf '%p %y %m %U:%G %n %l ' -exec sh -c '
      for f; do
        if [ -f "$f" ] && [ ! -L "$f" ]; then printf "%s %s " "$(stat -c %s "$f")" "$(sha256sum < "$f" | cut -c1-16)"; fi
        getfattr -h --absolute-names -d -m "^user\." "$f" 2>/dev/null | grep -v "^#" | tr "\n" " "
        echo
      done' sh {} \; | awk '$2 == "d" { $5 = "-" } { print }' | sort)
}
describe "$work/umoci/rootfs" > "$work/umoci.txt"
describe "$work/merged" > "$work/agentd.txt"
if diff "$work/umoci.txt" "$work/agentd.txt" > "$work/diff.txt"; then
  ok "overlay of agentd's layers matches umoci unpack file by file ($(wc -l < "$work/umoci.txt") paths)"
else
  not_ok "overlay of agentd's layers matches umoci unpack" "$(head -20 "$work/diff.txt")"
fi
for p in bin/vi etc/group srv/data/a usr/sbin; do
  [ -e "$work/merged/$p" ] && not_ok "deleted path $p is gone" || ok "deleted path $p is gone"
done
[ "$(cat "$work/merged/srv/data/b")" = two ] && ok "opaque directory holds only its new content" || not_ok "opaque directory"
umount "$work/merged"

out=$("$AGENTD" images --root "$root")
echo "$out" | grep -q "^app " && ok "agentd images lists the tag" || not_ok "agentd images lists the tag" "$out"
out=$("$AGENTD" run --root "$root" --image app --hostname box 2>&1)
[ "$out" = "hi from box" ] && ok "run --image uses the image's Env and Cmd" || not_ok "run --image uses Env and Cmd" "$out"
out=$("$AGENTD" run --root "$root" --image app -- sh -c 'cat /srv/file; ls /srv/data' 2>&1)
[ "$out" = "$(printf 'payload\nb')" ] && ok "run --image with a command sees the merged layers" || not_ok "run --image sees the merged layers" "$out"

# The image's User, by name, from its own /etc/passwd; WorkingDir too.
cp -a "$L" "$work/userlayout"
umoci config --image "$work/userlayout:app" --tag user --config.user nobody --config.workingdir /srv >/dev/null
umoci rm --image "$work/userlayout:app" >/dev/null
"$AGENTD" image import --root "$root" --name app:user "$work/userlayout" >/dev/null 2>&1
out=$("$AGENTD" run --root "$root" --image app:user -- sh -c 'echo $(id -u):$(id -g) $(pwd)' 2>&1)
[ "$out" = "65534:65534 /srv" ] && ok "run --image takes User by name and WorkingDir from the image" \
  || not_ok "run --image takes User by name and WorkingDir" "$out"
out=$("$AGENTD" run --root "$root" --image app:user --user 0 --cwd / -- sh -c 'echo $(id -u) $(pwd)' 2>&1)
[ "$out" = "0 /" ] && ok "--user and --cwd override the image's" || not_ok "--user and --cwd override the image's" "$out"
"$AGENTD" image rm --root "$root" app:user

# Importing again unpacks nothing; a second tag shares every layer.
out=$("$AGENTD" image import --root "$root" --name app:again "$L" 2>&1)
echo "$out" | grep -q "3 layers, 0 unpacked" && ok "cached layers are not unpacked again" || not_ok "cached layers are not unpacked again" "$out"

# oci-archive: the same image as one tar.
tar -C "$L" -cf "$work/app.tar" .
out=$("$AGENTD" image import --root "$work/root2" --name archived "$work/app.tar" 2>&1)
if [ $? -eq 0 ] && "$AGENTD" run --root "$work/root2" --image archived -- true; then
  ok "oci-archive import runs"
else
  not_ok "oci-archive import runs" "$out"
fi

# rm + gc: layers go only when no tag uses them.
"$AGENTD" image rm --root "$root" app
out=$("$AGENTD" image gc --root "$root")
if echo "$out" | grep -q " and 0 layers$" && "$AGENTD" run --root "$root" --image app:again -- true; then
  ok "gc keeps what app:again still uses"
else
  not_ok "gc keeps shared layers" "$out"
fi
"$AGENTD" image rm --root "$root" app:again
out=$("$AGENTD" image gc --root "$root")
left=$(ls -A "$root/layers" "$root/blobs/sha256" | grep -v ':$' | grep -c .)
echo "$out" | grep -q "and 3 layers" && [ "$left" -eq 0 ] && ok "gc removes unused blobs and layers" || not_ok "gc removes unused blobs and layers" "$out" "left: $left"
out=$("$AGENTD" image rm --root "$root" nosuch 2>&1)
[ $? -ne 0 ] && echo "$out" | grep -q "image \`nosuch\` is not in the store" && ok "rm of an unknown image: clear error" || not_ok "rm unknown image" "$out"

# A layer whose blob was tampered with: a clear error and nothing half-written.
cp -a "$L" "$work/bad"
blob=$(ls -S "$work/bad/blobs/sha256" | head -1)
printf 'X' | dd of="$work/bad/blobs/sha256/$blob" bs=1 seek=100 conv=notrunc 2>/dev/null
out=$("$AGENTD" image import --root "$work/root3" "$work/bad" 2>&1)
if [ $? -ne 0 ] && echo "$out" | grep -q "blob sha256:$blob: digest mismatch" && [ -z "$(ls -A "$work/root3/layers")" ] \
   && [ "$(ls -A "$work/root3/blobs/sha256" | grep -c tmp)" -eq 0 ]; then
  ok "tampered blob: clear error, nothing half-written"
else
  not_ok "tampered blob: clear error, nothing half-written" "$out" "$(ls -A "$work/root3/layers" "$work/root3/blobs/sha256")"
fi
out=$("$AGENTD" image import --root "$work/root3" /nonexistent 2>&1)
[ $? -ne 0 ] && echo "$out" | grep -q "/nonexistent" && ok "missing import path: clear error" || not_ok "missing import path" "$out"
tap_end
