/* builder/manifest.c: index, manifest and config documents. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../../builder/manifest.h"

#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"

static int
parse_manifest (const char *json, struct manifest *m, struct error *err)
{
  return manifest_parse (json, strlen (json), "manifest m", m, err);
}

static void
test_oci_and_docker_manifests (void **s)
{
  (void) s;
  struct manifest m;
  struct error err = { 0 };
  const char *oci = "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
                    "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"" D1 "\",\"size\":10},"
                    "\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+zstd\",\"digest\":\"" D2 "\",\"size\":5}]}";
  assert_int_equal (parse_manifest (oci, &m, &err), 0);
  assert_int_equal (m.n_layers, 1);
  assert_int_equal (m.layers[0].size, 5);
  assert_string_equal (m.config.digest.hex, D1 + 7);
  manifest_clear (&m);
  const char *docker = "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\","
                       "\"config\":{\"mediaType\":\"application/vnd.docker.container.image.v1+json\",\"digest\":\"" D1 "\",\"size\":10},"
                       "\"layers\":[{\"mediaType\":\"application/vnd.docker.image.rootfs.diff.tar.gzip\",\"digest\":\"" D2 "\",\"size\":5}]}";
  assert_int_equal (parse_manifest (docker, &m, &err), 0);
  manifest_clear (&m);
  enum doc_kind k;
  assert_int_equal (doc_kind (docker, strlen (docker), "m", &k, NULL, &err), 0);
  assert_int_equal (k, DOC_MANIFEST);
}

static void
test_bad_manifests (void **s)
{
  (void) s;
  struct manifest m;
  struct error err = { 0 };
  assert_int_equal (parse_manifest ("{not json", &m, &err), -1);
  assert_non_null (strstr (err.msg, "manifest m: not valid JSON (line 1"));
  assert_int_equal (parse_manifest ("[1,2]", &m, &err), -1);
  assert_non_null (strstr (err.msg, "not a JSON object"));
  const char *unknown = "{\"schemaVersion\":2,"
                        "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"" D1 "\",\"size\":10},"
                        "\"layers\":[{\"mediaType\":\"application/x-evil\",\"digest\":\"" D2 "\",\"size\":5}]}";
  assert_int_equal (parse_manifest (unknown, &m, &err), -1);
  assert_non_null (strstr (err.msg, "layer 0 has unknown media type `application/x-evil`"));
  const char *bad_digest = "{\"schemaVersion\":2,"
                           "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"sha256:ABC\",\"size\":10},"
                           "\"layers\":[]}";
  assert_int_equal (parse_manifest (bad_digest, &m, &err), -1);
  assert_non_null (strstr (err.msg, "64 lowercase hex"));
  const char *neg = "{\"schemaVersion\":2,"
                    "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"" D1 "\",\"size\":-1},"
                    "\"layers\":[]}";
  assert_int_equal (parse_manifest (neg, &m, &err), -1);
  enum doc_kind k;
  const char *odd = "{\"mediaType\":\"application/vnd.example+json\"}";
  assert_int_equal (doc_kind (odd, strlen (odd), "m", &k, NULL, &err), -1);
  assert_non_null (strstr (err.msg, "unknown manifest media type"));
}

static void
test_index_platform (void **s)
{
  (void) s;
  struct descriptor d;
  struct error err = { 0 };
  const char *idx = "{\"schemaVersion\":2,\"manifests\":["
                    "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" D1 "\",\"size\":1,"
                    "\"platform\":{\"os\":\"linux\",\"architecture\":\"arm64\"}},"
                    "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" D2 "\",\"size\":2,"
                    "\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}}]}";
  assert_int_equal (index_pick_platform (idx, strlen (idx), "i", "linux", "amd64", &d, &err), 0);
  assert_string_equal (d.digest.hex, D2 + 7);
  assert_int_equal (index_pick_platform (idx, strlen (idx), "i", "linux", "s390x", &d, &err), -1);
  assert_non_null (strstr (err.msg, "no manifest for linux/s390x"));
}

static void
test_config (void **s)
{
  (void) s;
  struct image_config c;
  struct error err = { 0 };
  const char *cfg = "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Env\":[\"PATH=/bin\",\"A=1\"],"
                    "\"Entrypoint\":[\"/init\"],\"Cmd\":[\"serve\",\"--port\",\"80\"],\"WorkingDir\":\"/app\",\"User\":\"app\"},"
                    "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"" D1 "\",\"" D2 "\"]}}";
  assert_int_equal (config_parse (cfg, strlen (cfg), "c", &c, &err), 0);
  assert_int_equal (c.n_diff_ids, 2);
  assert_string_equal (c.env[1], "A=1");
  assert_null (c.env[2]);
  assert_string_equal (c.entrypoint[0], "/init");
  assert_string_equal (c.cmd[2], "80");
  assert_string_equal (c.workdir, "/app");
  assert_string_equal (c.user, "app");
  config_clear (&c);
  const char *nodiff = "{\"config\":{}}";
  assert_int_equal (config_parse (nodiff, strlen (nodiff), "c", &c, &err), -1);
  assert_non_null (strstr (err.msg, "no rootfs.diff_ids"));
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_oci_and_docker_manifests),
    cmocka_unit_test (test_bad_manifests),
    cmocka_unit_test (test_index_platform),
    cmocka_unit_test (test_config),
  };
  return cmocka_run_group_tests_name ("manifest", tests, NULL, NULL);
}
