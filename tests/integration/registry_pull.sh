#!/bin/bash
# agentd pull against the real CNCF distribution registry (docker-registry)
# on 127.0.0.1, images pushed with skopeo: by tag and by digest, cached
# layers not fetched again, the same layers as a local import, basic auth
# (htpasswd), and failures: 404, 500, a hanging server, a truncated blob,
# with nothing half-written. TAP on stdout.
#   registry_pull.sh AGENTD FAKE_HTTP   (AGENTD_TEST_ROOTFS set)
set -u
AGENTD=$1
FAKE=$2
BASE=$AGENTD_TEST_ROOTFS
work=$(mktemp -d /tmp/agentd-pull-XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  stop_registry "$work/plain"; stop_registry "$work/auth"; stop_registry "$work/token"
  rm -rf "$work"
}
trap cleanup EXIT
. "$(dirname "$0")/tap.sh"
expect_fail() { # NAME PATTERN -- command...
  local name=$1 pattern=$2; shift 3
  local out; out=$("$@" 2>&1)
  if [ $? -ne 0 ] && grep -q -- "$pattern" <<< "$out"; then ok "$name"; else not_ok "$name" "$out"; fi
}
. "$(dirname "$0")/../fixtures/registry.sh"

# A two-layer image: busybox, then a small app layer.
L="$work/layout"
umoci init --layout "$L" >/dev/null
umoci new --image "$L:app" >/dev/null
umoci insert --image "$L:app" "$BASE" / >/dev/null
mkdir -p "$work/app/srv" && echo "pulled" > "$work/app/srv/hello"
umoci insert --image "$L:app" "$work/app/srv" /srv >/dev/null
umoci config --image "$L:app" --config.cmd cat --config.cmd /srv/hello >/dev/null

port=$(start_registry "$work/plain") || { echo "1..0 # SKIP docker-registry did not start"; exit 0; }
R="127.0.0.1:$port/demo/app"
skopeo copy -q --dest-tls-verify=false "oci:$L:app" "docker://$R:v1" >/dev/null

root="$work/root"
out=$("$AGENTD" pull --root "$root" "$R:v1" 2>&1)
grep -q "2 layers, 2 downloaded and unpacked" <<< "$out" && ok "pull by tag downloads and unpacks both layers" || not_ok "pull by tag" "$out"
out=$("$AGENTD" run --root "$root" --image "$R:v1" 2>&1)
[ "$out" = pulled ] && ok "run --image of the pulled image" || not_ok "run --image of the pulled image" "$out"
out=$("$AGENTD" pull --root "$root" "$R:v1" 2>&1)
grep -q "2 layers, 0 downloaded" <<< "$out" && ok "cached layers are not downloaded again" || not_ok "cached layers not downloaded again" "$out"

# The same layers, byte for byte, as a local import of the layout.
"$AGENTD" image import --root "$work/imported" "$L" >/dev/null 2>&1
if [ "$(ls "$root/layers")" = "$(ls "$work/imported/layers")" ] \
   && diff -r --no-dereference "$root/layers" "$work/imported/layers" >/dev/null; then
  ok "pulled layers equal the imported ones"
else
  not_ok "pulled layers equal the imported ones" "$(ls "$root/layers" "$work/imported/layers")"
fi

digest=$(skopeo inspect --tls-verify=false --format '{{.Digest}}' "docker://$R:v1")
out=$("$AGENTD" pull --root "$work/bydigest" "$R@$digest" 2>&1) && \
  "$AGENTD" run --root "$work/bydigest" --image "$R@$digest" > /dev/null 2>&1 && ok "pull by digest" || not_ok "pull by digest" "$out"
# Docker schema 2 (what most registries serve) as well as OCI.
skopeo copy -q --dest-tls-verify=false --format v2s2 "oci:$L:app" "docker://$R:docker" >/dev/null
mt=$(curl -s -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' "http://127.0.0.1:$port/v2/demo/app/manifests/docker" -o /dev/null -w '%{content_type}' 2>/dev/null)
out=$("$AGENTD" pull --root "$work/docker" "$R:docker" 2>&1) && out=$("$AGENTD" run --root "$work/docker" --image "$R:docker" 2>&1)
[ "$out" = pulled ] && ok "pull of a Docker schema 2 image ($mt)" || not_ok "pull of a Docker schema 2 image" "$out"
expect_fail "missing tag: clear error" "manifest v9 of demo/app not found (HTTP 404)" -- "$AGENTD" pull --root "$root" "$R:v9"
expect_fail "reference without a registry host: clear error" "give the registry too" -- "$AGENTD" pull --root "$root" demo/app:v1

# Basic auth through the registry's htpasswd.
htpasswd -Bbc "$work/htpasswd" agent s3cret >/dev/null 2>&1
aport=$(start_registry "$work/auth" "$work/htpasswd")
A="127.0.0.1:$aport/demo/app"
skopeo copy -q --dest-tls-verify=false --dest-creds agent:s3cret "oci:$L:app" "docker://$A:v1" >/dev/null
expect_fail "auth registry without credentials: clear error" "wants a username and password" -- \
  "$AGENTD" pull --root "$work/auth" "$A:v1"
echo wrong > "$work/badpw"
expect_fail "auth registry with a wrong password: clear error" "refused the username and password" -- \
  "$AGENTD" pull --root "$work/auth" --username agent --password-file "$work/badpw" "$A:v1"
echo s3cret > "$work/pw"
out=$("$AGENTD" pull --root "$work/auth" --username agent --password-file "$work/pw" "$A:v1" 2>&1)
[ $? -eq 0 ] && ok "auth registry with the right password" || not_ok "auth registry with the right password" "$out"

# Bearer tokens: the registry's token auth, with a token server that hands
# out a JWT signed by a key whose certificate the registry trusts.
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/key.pem" -out "$work/cert.pem" -days 1 \
  -subj /CN=agentd-test-token 2>/dev/null
b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
now=$(date +%s)
jwt_h=$(printf '{"typ":"JWT","alg":"RS256","x5c":["%s"]}' "$(openssl x509 -in "$work/cert.pem" -outform DER | base64 -w0)" | b64url)
jwt_c=$(printf '{"iss":"agentd-issuer","sub":"agent","aud":"agentd-service","exp":%d,"nbf":%d,"iat":%d,"jti":"t1","access":[{"type":"repository","name":"demo/app","actions":["pull","push"]}]}' \
        $((now + 3600)) $((now - 60)) "$now" | b64url)
jwt_s=$(printf '%s.%s' "$jwt_h" "$jwt_c" | openssl dgst -sha256 -sign "$work/key.pem" | b64url)
printf '{"token":"%s.%s.%s"}' "$jwt_h" "$jwt_c" "$jwt_s" > "$work/token.json"
"$FAKE" "$work/ptoken" file "$work/token.json" & pids+=($!)
for _ in $(seq 50); do [ -s "$work/ptoken" ] && break; sleep 0.1; done
tport=$(start_registry "$work/token" "" "token:
    realm: http://127.0.0.1:$(cat "$work/ptoken")/token
    service: agentd-service
    issuer: agentd-issuer
    rootcertbundle: $work/cert.pem")
T="127.0.0.1:$tport/demo/app"
skopeo copy -q --dest-tls-verify=false "oci:$L:app" "docker://$T:v1" >/dev/null
www=$(curl -si "http://127.0.0.1:$tport/v2/" | grep -i '^www-authenticate' | tr -d '\r')
out=$("$AGENTD" pull --root "$work/bearer" "$T:v1" 2>&1) && out=$("$AGENTD" run --root "$work/bearer" --image "$T:v1" 2>&1)
[ "$out" = pulled ] && ok "Bearer token challenge answered (${www#*: })" || not_ok "Bearer token challenge" "$out"

# A server that answers 500, and one that never answers.
"$FAKE" "$work/p500" 500 & pids+=($!)
"$FAKE" "$work/phang" hang & pids+=($!)
for _ in $(seq 50); do [ -s "$work/p500" ] && [ -s "$work/phang" ] && break; sleep 0.1; done
expect_fail "registry answering 500: error after retries" "answered HTTP 500" -- \
  "$AGENTD" pull --root "$work/f500" "127.0.0.1:$(cat "$work/p500")/demo/app:v1"
expect_fail "registry that hangs: timeout" "Timeout\|too slow" -- \
  "$AGENTD" pull --root "$work/fhang" --timeout 2 "127.0.0.1:$(cat "$work/phang")/demo/app:v1"

# A server that hangs up halfway through each blob: the pull resumes with
# Range and ends with the same layers.
"$FAKE" "$work/pflaky" layout "$L" 2> "$work/flaky.log" & pids+=($!)
for _ in $(seq 50); do [ -s "$work/pflaky" ] && break; sleep 0.1; done
out=$("$AGENTD" pull --root "$work/resumed" "127.0.0.1:$(cat "$work/pflaky")/demo/app:v1" 2>&1)
if [ $? -eq 0 ] && grep -q "range" "$work/flaky.log" && diff -r --no-dereference "$work/resumed/layers" "$work/imported/layers" >/dev/null; then
  ok "a download cut off halfway resumes with Range ($(grep -c range "$work/flaky.log") resumed)"
else
  not_ok "a download cut off halfway resumes with Range" "$out" "$(cat "$work/flaky.log")"
fi

# A redirect to another host must not carry our credentials there.
"$FAKE" "$work/plog" log "$work/other-host.log" & pids+=($!)
for _ in $(seq 50); do [ -s "$work/plog" ] && break; sleep 0.1; done
"$FAKE" "$work/predir" redirect "http://localhost:$(cat "$work/plog")/elsewhere" & pids+=($!)
for _ in $(seq 50); do [ -s "$work/predir" ] && break; sleep 0.1; done
out=$("$AGENTD" pull --root "$work/redir" --username agent --password-file "$work/pw" \
      "127.0.0.1:$(cat "$work/predir")/demo/app:v1" 2>&1)
if grep -q "GET /elsewhere" "$work/other-host.log" 2>/dev/null && ! grep -qi "^authorization" "$work/other-host.log"; then
  ok "credentials are not sent to the host a redirect points at"
else
  not_ok "credentials are not sent to the host a redirect points at" "$out" "$(cat "$work/other-host.log" 2>/dev/null)"
fi

# A truncated layer blob in the registry's storage.
big=$(find "$work/plain/data" -path '*/blobs/sha256/*/data' -size +100k | head -1)
truncate -s 5000 "$big"
expect_fail "truncated blob: clear error naming it" "blob sha256:$(basename "$(dirname "$big")")" -- \
  "$AGENTD" pull --root "$work/trunc" --timeout 5 "$R:v1"
half=$(ls -A "$work/trunc/layers" "$work/trunc/blobs/sha256" 2>/dev/null | grep -c -e '^\.tmp' -e '^\.import')
layers=$(ls "$work/trunc/layers" | grep -c .)
[ "$half" -eq 0 ] && [ "$layers" -le 1 ] && ok "failed pulls leave nothing half-written" || not_ok "failed pulls leave nothing half-written" "$(ls -A "$work/trunc/layers")"
tap_end
