/* builder/registry.c: image references. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../../builder/registry.h"

static void
test_references (void **s)
{
  (void) s;
  struct registry_ref r;
  struct error err = { 0 };
  assert_int_equal (registry_ref_parse ("127.0.0.1:5000/demo/app:v1", &r, &err), 0);
  assert_string_equal (r.host, "127.0.0.1:5000");
  assert_string_equal (r.repo, "demo/app");
  assert_string_equal (r.reference, "v1");
  assert_false (r.by_digest);
  assert_int_equal (registry_ref_parse ("localhost/app", &r, &err), 0);
  assert_string_equal (r.reference, "latest");
  assert_int_equal (registry_ref_parse ("registry.example.com/a/b@sha256:"
                                        "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03", &r, &err), 0);
  assert_true (r.by_digest);
  assert_string_equal (r.repo, "a/b");
  assert_int_equal (strncmp (r.reference, "sha256:5891", 11), 0);
}

static void
test_bad_references (void **s)
{
  (void) s;
  struct registry_ref r;
  struct error err = { 0 };
  const char *bad[][2] = {
    { "app:v1", "give the registry too" },
    { "demo/app:v1", "give the registry too" },
    { "127.0.0.1:5000/App", "lowercase" },
    { "127.0.0.1:5000/app@sha256:abc", "sha256:<64 hex>" },
    { "127.0.0.1:5000/app:bad tag", "bad tag" },
    { "127.0.0.1:5000/", "empty repository" },
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    {
      err.msg[0] = '\0';
      if (registry_ref_parse (bad[i][0], &r, &err) != -1)
        fail_msg ("`%s` accepted", bad[i][0]);
      if (strstr (err.msg, bad[i][1]) == NULL)
        fail_msg ("`%s`: error `%s` lacks `%s`", bad[i][0], err.msg, bad[i][1]);
    }
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_references),
    cmocka_unit_test (test_bad_references),
  };
  return cmocka_run_group_tests_name ("registry", tests, NULL, NULL);
}
