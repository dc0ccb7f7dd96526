/* runtime/cgroup.c: host detection and the stat-file parsers. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../../runtime/cgroup.h"

static const char hybrid[] =
    "22 1 0:21 / / rw,relatime - ext4 /dev/vda rw\n"
    "30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
    "32 30 0:29 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n"
    "34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "37 30 0:34 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio\n"
    "38 30 0:35 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
    "39 30 0:36 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n"
    "40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";

static const char combined_v1[] =
    "31 30 0:28 / /sys/fs/cgroup/cpu,cpuacct rw shared:5 - cgroup cgroup rw,cpu,cpuacct\n"
    "34 30 0:31 / /sys/fs/cgroup/memory rw shared:6 master:1 - cgroup cgroup rw,memory\n"
    "38 30 0:35 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n";

static const char pure_v2[] =
    "25 22 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n";

static void
test_hybrid_host_selects_v1 (void **s)
{
  (void) s;
  struct cgroup_host h;
  struct error err = { 0 };
  assert_int_equal (cgroup_host_parse (hybrid, &h, &err), 0);
  assert_string_equal (h.v2_mount, "/sys/fs/cgroup/unified");
  assert_string_equal (h.v1_mount[CG1_MEMORY], "/sys/fs/cgroup/memory");
  assert_string_equal (h.v1_mount[CG1_CPUACCT], "/sys/fs/cgroup/cpuacct");
  assert_string_equal (h.v1_mount[CG1_PIDS], "/sys/fs/cgroup/pids");
  enum rt_cgroup_version v = 0;
  /* The unified mount of a hybrid host offers no usable controller. */
  assert_int_equal (cgroup_host_select (&h, "hugetlb\n", &v, &err), 0);
  assert_int_equal (v, RT_CGROUP_V1);
}

static void
test_combined_controllers_and_optional_fields (void **s)
{
  (void) s;
  struct cgroup_host h;
  struct error err = { 0 };
  assert_int_equal (cgroup_host_parse (combined_v1, &h, &err), 0);
  assert_string_equal (h.v1_mount[CG1_CPU], "/sys/fs/cgroup/cpu,cpuacct");
  assert_string_equal (h.v1_mount[CG1_CPUACCT], "/sys/fs/cgroup/cpu,cpuacct");
  assert_string_equal (h.v1_mount[CG1_MEMORY], "/sys/fs/cgroup/memory");
  assert_string_equal (h.v1_mount[CG1_BLKIO], "");
  assert_string_equal (h.v2_mount, "");
}

static void
test_pure_v2_selects_v2 (void **s)
{
  (void) s;
  struct cgroup_host h;
  struct error err = { 0 };
  assert_int_equal (cgroup_host_parse (pure_v2, &h, &err), 0);
  assert_string_equal (h.v2_mount, "/sys/fs/cgroup");
  enum rt_cgroup_version v = 0;
  assert_int_equal (cgroup_host_select (&h, "cpuset cpu io memory hugetlb pids rdma misc\n", &v, &err), 0);
  assert_int_equal (v, RT_CGROUP_V2);
}

static void
test_no_usable_hierarchy_is_an_error (void **s)
{
  (void) s;
  struct cgroup_host h;
  struct error err = { 0 };
  assert_int_equal (cgroup_host_parse (pure_v2, &h, &err), 0);
  enum rt_cgroup_version v = 0;
  assert_int_equal (cgroup_host_select (&h, "cpu io\n", &v, &err), -1);
  assert_non_null (strstr (err.msg, "no usable cgroup hierarchy"));
  /* Garbage lines are skipped, not misread. */
  assert_int_equal (cgroup_host_parse ("garbage\n\n1 2 3\n", &h, &err), 0);
  assert_int_equal (cgroup_host_select (&h, NULL, &v, &err), -1);
}

static void
test_stat_parsers (void **s)
{
  (void) s;
  uint64_t v = 0;
  assert_int_equal (cgroup_parse_keyed ("usage_usec 1234\nuser_usec 1000\n", "usage_usec", &v), 0);
  assert_int_equal (v, 1234);
  assert_int_equal (cgroup_parse_keyed ("oom 3\noom_kill 2\n", "oom_kill", &v), 0);
  assert_int_equal (v, 2);
  assert_int_equal (cgroup_parse_keyed ("oom 3\n", "oom_kill", &v), -1);
  uint64_t rd, wr;
  cgroup_parse_io_stat_v2 ("8:0 rbytes=100 wbytes=20 rios=1 wios=1 dbytes=0\n"
                           "8:16 rbytes=5 wbytes=7 rios=1 wios=1\n", &rd, &wr);
  assert_int_equal (rd, 105);
  assert_int_equal (wr, 27);
  cgroup_parse_blkio_v1 ("8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 1\n8:0 Total 12288\n"
                         "8:16 Read 1\nTotal 12289\n", &rd, &wr);
  assert_int_equal (rd, 4097);
  assert_int_equal (wr, 8192);
  assert_int_equal (cgroup_parse_psi_some ("some avg10=0.00 avg60=1.50 avg300=0.00 total=98765\n"
                                           "full avg10=0.00 avg60=0.00 avg300=0.00 total=5\n", &v), 0);
  assert_int_equal (v, 98765);
  assert_int_equal (cgroup_parse_psi_some ("full avg10=0.00 total=5\n", &v), -1);
  assert_int_equal (cgroup_parse_psi_some ("some avg10=0.00\nfull total=5\n", &v), -1);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_hybrid_host_selects_v1),
    cmocka_unit_test (test_combined_controllers_and_optional_fields),
    cmocka_unit_test (test_pure_v2_selects_v2),
    cmocka_unit_test (test_no_usable_hierarchy_is_an_error),
    cmocka_unit_test (test_stat_parsers),
  };
  return cmocka_run_group_tests_name ("cgroup", tests, NULL, NULL);
}
