/* runtime/seccomp.c: the profile compiles, the disk cache round-trips and
 * a damaged cache is rebuilt, and the OCI rendering carries the same rules. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "scratch_dir.h"

#include "../../common/fsutil.h"
#include "../../runtime/runtime.h"
#include "../../runtime/seccomp_internal.h"

static int
cache_file (char *out, size_t cap)
{
  char cmd[PATH_MAX + 64];
  snprintf (cmd, sizeof cmd, "ls %s/seccomp-default-*.bpf", dir);
  FILE *p = popen (cmd, "r");
  int ok = p && fgets (out, cap, p) != NULL;
  if (p)
    pclose (p);
  if (ok)
    out[strcspn (out, "\n")] = '\0';
  return ok ? 0 : -1;
}

static void
test_compile_and_cache_round_trip (void **s)
{
  (void) s;
  struct error err = { 0 };
  struct rt_seccomp *a = NULL, *b = NULL, *mem = NULL;
  assert_int_equal (rt_seccomp_default (dir, &a, &err), 0);
  char path[PATH_MAX];
  assert_int_equal (cache_file (path, sizeof path), 0);
  assert_int_equal (rt_seccomp_default (dir, &b, &err), 0);
  assert_int_equal (rt_seccomp_default (NULL, &mem, &err), 0);
  size_t na, nb, nm;
  const void *pa = seccomp_bpf (a, &na), *pb = seccomp_bpf (b, &nb), *pm = seccomp_bpf (mem, &nm);
  assert_true (na > 100);
  assert_int_equal (na, nb);
  assert_int_equal (na, nm);
  assert_memory_equal (pa, pb, na * 8);
  assert_memory_equal (pa, pm, na * 8);
  rt_seccomp_free (a);
  rt_seccomp_free (b);
  rt_seccomp_free (mem);
}

static void
test_damaged_cache_is_rebuilt (void **s)
{
  (void) s;
  struct error err = { 0 };
  struct rt_seccomp *good = NULL, *again = NULL;
  assert_int_equal (rt_seccomp_default (dir, &good, &err), 0);
  char path[PATH_MAX];
  assert_int_equal (cache_file (path, sizeof path), 0);
  /* A truncated program (not a multiple of 8 bytes) must not be loaded. */
  assert_int_equal (truncate (path, 13), 0);
  assert_int_equal (rt_seccomp_default (dir, &again, &err), 0);
  assert_int_equal (rt_seccomp_instructions (again), rt_seccomp_instructions (good));
  struct stat st;
  assert_int_equal (stat (path, &st), 0);
  assert_int_equal ((size_t) st.st_size, rt_seccomp_instructions (good) * 8);
  rt_seccomp_free (good);
  rt_seccomp_free (again);
}

static void
test_oci_profile_matches_table (void **s)
{
  (void) s;
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream (&buf, &len);
  struct error err = { 0 };
  assert_int_equal (rt_seccomp_write_oci (f, &err), 0);
  fclose (f);
  assert_non_null (strstr (buf, "\"defaultAction\":\"SCMP_ACT_ERRNO\",\"defaultErrnoRet\":1"));
  assert_non_null (strstr (buf, "\"execve\""));
  assert_null (strstr (buf, "\"mount\""));
  assert_null (strstr (buf, "\"unshare\""));
  assert_null (strstr (buf, "\"keyctl\""));
  for (size_t i = 0; i < seccomp_n_conditional; i++)
    {
      char want[64];
      snprintf (want, sizeof want, "\"names\":[\"%s\"]", seccomp_conditional[i].name);
      if (strstr (buf, want) == NULL)
        fail_msg ("OCI profile lacks the rule for %s", seccomp_conditional[i].name);
    }
  /* Balanced braces and brackets: well-formed enough for a JSON reader. */
  int depth = 0;
  for (char *p = buf; *p; p++)
    {
      depth += (*p == '{' || *p == '[') - (*p == '}' || *p == ']');
      assert_true (depth >= 0);
    }
  assert_int_equal (depth, 0);
  free (buf);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown (test_compile_and_cache_round_trip, scratch_setup, scratch_teardown),
    cmocka_unit_test_setup_teardown (test_damaged_cache_is_rebuilt, scratch_setup, scratch_teardown),
    cmocka_unit_test (test_oci_profile_matches_table),
  };
  return cmocka_run_group_tests_name ("seccomp", tests, NULL, NULL);
}
