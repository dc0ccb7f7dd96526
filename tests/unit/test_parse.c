/* agentd/parse.c: command-line values. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../../common/parse.h"

static void
test_sizes (void **s)
{
  (void) s;
  struct error err = { 0 };
  int64_t v;
  assert_int_equal (parse_size ("256M", &v, &err), 0);
  assert_int_equal (v, 256LL << 20);
  assert_int_equal (parse_size ("1g", &v, &err), 0);
  assert_int_equal (v, 1LL << 30);
  assert_int_equal (parse_size ("512KiB", &v, &err), 0);
  assert_int_equal (v, 512LL << 10);
  assert_int_equal (parse_size ("4096", &v, &err), 0);
  assert_int_equal (v, 4096);
  const char *bad[] = { "", "M", "-1M", "12X", "1.5G", "0", "99999999999999999999", "16777216T", "1MB2" };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    {
      err.msg[0] = '\0';
      if (parse_size (bad[i], &v, &err) != -1)
        fail_msg ("`%s` accepted", bad[i]);
      assert_non_null (strstr (err.msg, "size `"));
    }
}

static void
test_cpus (void **s)
{
  (void) s;
  struct error err = { 0 };
  int64_t v;
  assert_int_equal (parse_cpus ("0.5", &v, &err), 0);
  assert_int_equal (v, 500);
  assert_int_equal (parse_cpus ("2", &v, &err), 0);
  assert_int_equal (v, 2000);
  assert_int_equal (parse_cpus ("1.125", &v, &err), 0);
  assert_int_equal (v, 1125);
  const char *bad[] = { "", ".5", "0", "0.001", "1.2345", "abc", "1.", "-1", "5000" };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    if (parse_cpus (bad[i], &v, &err) != -1)
      fail_msg ("`%s` accepted", bad[i]);
}

static void
test_counts_and_users (void **s)
{
  (void) s;
  struct error err = { 0 };
  int64_t v;
  assert_int_equal (parse_count ("128", 1000, &v, &err), 0);
  assert_int_equal (v, 128);
  assert_int_equal (parse_count ("0", 1000, &v, &err), -1);
  assert_int_equal (parse_count ("1001", 1000, &v, &err), -1);
  assert_int_equal (parse_count ("12a", 1000, &v, &err), -1);
  uid_t u;
  gid_t g;
  assert_int_equal (parse_user ("1000", &u, &g, &err), 0);
  assert_int_equal (u, 1000);
  assert_int_equal (g, 1000);
  assert_int_equal (parse_user ("1000:50", &u, &g, &err), 0);
  assert_int_equal (g, 50);
  assert_int_equal (parse_user ("nobody", &u, &g, &err), -1);
  assert_non_null (strstr (err.msg, "numeric"));
  assert_int_equal (parse_user ("1:", &u, &g, &err), -1);
  assert_int_equal (parse_user ("4294967295", &u, &g, &err), -1);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_sizes),
    cmocka_unit_test (test_cpus),
    cmocka_unit_test (test_counts_and_users),
  };
  return cmocka_run_group_tests_name ("parse", tests, NULL, NULL);
}
