/* runtime/ against the real kernel: workloads started from the busybox
 * fixture (plus a layer holding the static probe), asserted from inside
 * (what the workload sees) and outside (cgroups, mounts, processes). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../common/fsutil.h"
#include "../../runtime/cgroup.h"
#include "../../runtime/runtime.h"

#define CG_PARENT "agentd-test"

static struct rt_runtime *rt;
static struct rt_seccomp *seccomp;
static struct cgroup_host host;
static char work[PATH_MAX];     /* scratch dir for this run */
static char state[PATH_MAX + 16];
static char probe_layer[PATH_MAX + 16];
static const char *rootfs;
static char *env[] = { "PATH=/bin:/sbin:/usr/bin", "HOME=/root", NULL };

struct result
{
  struct rt_exit exit;
  struct rt_usage usage;
  char out[65536];
};

static int
copy_file (const char *src, const char *dst, mode_t mode)
{
  char buf[1 << 16];
  int in = open (src, O_RDONLY | O_CLOEXEC);
  int out = open (dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  ssize_t n = 0;
  while (in >= 0 && out >= 0 && (n = read (in, buf, sizeof buf)) > 0)
    if (write (out, buf, n) != n)
      n = -1;
  int ok = in >= 0 && out >= 0 && n == 0;
  if (in >= 0)
    close (in);
  if (out >= 0)
    close (out);
  return ok ? 0 : -1;
}

static int
group_setup (void **state_)
{
  (void) state_;
  rootfs = getenv ("AGENTD_TEST_ROOTFS");
  const char *probe = getenv ("AGENTD_TEST_PROBE");
  if (geteuid () != 0 || rootfs == NULL || probe == NULL)
    {
      fprintf (stderr, "test_runtime: needs root and AGENTD_TEST_ROOTFS, AGENTD_TEST_PROBE (run through make test)\n");
      return -1;
    }
  snprintf (work, sizeof work, "/tmp/agentd-it-XXXXXX");
  if (mkdtemp (work) == NULL || chmod (work, 0755) < 0)
    return -1;
  snprintf (state, sizeof state, "%s/state", work);
  snprintf (probe_layer, sizeof probe_layer, "%s/probe-layer", work);
  char dst[PATH_MAX + 32];
  snprintf (dst, sizeof dst, "%s/probe", probe_layer);
  struct error err = { 0 };
  char mountinfo[65536];
  if (mkdir (probe_layer, 0755) < 0 || copy_file (probe, dst, 0755) < 0
      || rt_runtime_new (state, CG_PARENT, &rt, &err) < 0
      || rt_seccomp_default (NULL, &seccomp, &err) < 0
      || read_file_at (AT_FDCWD, "/proc/self/mountinfo", mountinfo, sizeof mountinfo, &err) < 0
      || cgroup_host_parse (mountinfo, &host, &err) < 0)
    {
      fprintf (stderr, "test_runtime: setup: %s\n", err.msg);
      return -1;
    }
  fprintf (stderr, "# cgroup backend: v%d\n", rt_runtime_cgroup_version (rt));
  return 0;
}

static int
group_teardown (void **state_)
{
  (void) state_;
  struct error err;
  rt_seccomp_free (seccomp);
  rt_runtime_free (rt);
  remove_tree_at (AT_FDCWD, work, &err);
  return 0;
}

/* The default spec: overlay of [probe layer, busybox], ephemeral upper,
 * every isolation feature on. */
static struct rt_spec
spec_for (char **argv)
{
  static const char *lowers[2];
  lowers[0] = probe_layer;
  lowers[1] = rootfs;
  struct rt_spec s = {
    .lowers = lowers,
    .n_lowers = 2,
    .argv = argv,
    .envp = env,
    .memory_max = 256 << 20,
    .pids_max = 256,
    .stdio = { -1, -1, -1 },
    .seccomp = seccomp,
  };
  return s;
}

/* Start, collect stdout+stderr, wait, read usage, destroy. */
static int
run (const char *id, struct rt_spec *s, struct result *r, struct error *err)
{
  int p[2];
  if (pipe2 (p, O_CLOEXEC) < 0)
    return error_set (err, errno, "pipe");
  s->stdio[1] = s->stdio[2] = p[1];
  struct rt_container *c;
  int ret = rt_start (rt, id, s, &c, err);
  close (p[1]);
  if (ret < 0)
    {
      close (p[0]);
      return -1;
    }
  size_t off = 0;
  ssize_t n;
  while ((n = read (p[0], r->out + off, sizeof r->out - 1 - off)) > 0)
    off += n;
  r->out[off] = '\0';
  close (p[0]);
  if (rt_wait (c, true, &r->exit, err) < 0 || rt_usage (c, &r->usage, err) < 0)
    ret = -1;
  if (rt_destroy (c, err) < 0)
    ret = -1;
  return ret;
}

#define RUN_OK(id, spec, res)                                                 \
  do                                                                          \
    {                                                                         \
      struct error e_ = { 0 };                                                \
      if (run (id, spec, res, &e_) < 0)                                       \
        fail_msg ("%s: %s", id, e_.msg);                                      \
    }                                                                         \
  while (0)

static char *
sh (const char *script)
{
  static char *argv[4];
  argv[0] = "/bin/sh";
  argv[1] = "-c";
  argv[2] = (char *) script;
  argv[3] = NULL;
  return (char *) argv;
}

static void
test_pid1_hostname_and_no_host_files (void **s_)
{
  (void) s_;
  char marker[PATH_MAX + 16];
  snprintf (marker, sizeof marker, "%s/host-marker", work);
  close (open (marker, O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
  char script[PATH_MAX * 2];
  snprintf (script, sizeof script,
            "echo pid=$$; echo host=$(hostname); echo procs=$(ls /proc | grep -c '^[0-9]');"
            "test -e %s && echo marker-visible; test -e /etc/debian_version && echo host-etc;"
            "test -e /proc/%d && echo test-pid-visible;"
            "ip link show lo | grep -q ',UP' && echo lo-up; echo links=$(ls /sys/class/net | tr '\\n' ' ')",
            marker, (int) getpid ());
  struct rt_spec spec = spec_for ((char **) sh (script));
  spec.hostname = "box-one";
  struct result r;
  RUN_OK ("it-pid1", &spec, &r);
  assert_int_equal (r.exit.code, 0);
  assert_non_null (strstr (r.out, "pid=1\n"));
  assert_non_null (strstr (r.out, "host=box-one\n"));
  /* sh, its subshell, ls and grep at most: no host process is visible. */
  int procs = atoi (strstr (r.out, "procs=") + 6);
  assert_in_range (procs, 1, 4);
  assert_null (strstr (r.out, "marker-visible"));
  assert_null (strstr (r.out, "host-etc"));
  assert_null (strstr (r.out, "test-pid-visible"));
  /* Its own network namespace: loopback, up, and nothing else. */
  assert_non_null (strstr (r.out, "lo-up\n"));
  assert_non_null (strstr (r.out, "links=lo\n"));
}

static const char *const masked[] = {
  "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
  "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
};

static void
test_masked_and_readonly_paths (void **s_)
{
  (void) s_;
  /* Each masked path that this kernel has must read as empty inside
   * (/proc/kcore is absent on some VM kernels: then it cannot leak). */
  char script[8192];
  size_t off = 0;
  int checked = 0;
  for (size_t i = 0; i < sizeof masked / sizeof masked[0]; i++)
    {
      struct stat st;
      if (stat (masked[i], &st) < 0)
        continue;
      checked++;
      off += snprintf (script + off, sizeof script - off,
                       S_ISDIR (st.st_mode) ? "test -z \"$(ls -A %1$s)\" || echo leak:%1$s;"
                                            : "test \"$(head -c 1 %1$s | wc -c)\" = 0 || echo leak:%1$s;",
                       masked[i]);
    }
  assert_true (checked > 0);
  snprintf (script + off, sizeof script - off, "%s",
            "echo x 2>/dev/null > /proc/sys/kernel/domainname && echo procsys-writable;"
            "touch /sys/agentd-probe 2>/dev/null && echo sys-writable;"
            "grep -q ' /proc/sys ro,' /proc/self/mountinfo && echo procsys-ro;"
            "grep -q ' /sys ro,' /proc/self/mountinfo && echo sys-ro;"
            "ls /dev | tr '\\n' ' '");
  struct rt_spec spec = spec_for ((char **) sh (script));
  struct result r;
  RUN_OK ("it-masks", &spec, &r);
  assert_int_equal (r.exit.code, 0);
  if (strstr (r.out, "leak:") != NULL)
    fail_msg ("masked path readable: %s", r.out);
  assert_null (strstr (r.out, "procsys-writable"));
  assert_null (strstr (r.out, "sys-writable"));
  assert_non_null (strstr (r.out, "procsys-ro"));
  assert_non_null (strstr (r.out, "sys-ro"));
  const char *devs[] = { "null ", "zero ", "full ", "random ", "urandom ", "tty ", "ptmx ", "pts ", "shm ", "mqueue " };
  for (size_t i = 0; i < sizeof devs / sizeof devs[0]; i++)
    if (strstr (r.out, devs[i]) == NULL)
      fail_msg ("/dev lacks %s: %s", devs[i], r.out);
}

static void
test_caps_nnp_seccomp (void **s_)
{
  (void) s_;
  uint64_t mask = 0;
  for (size_t i = 0; i < rt_n_default_caps; i++)
    mask |= 1ULL << rt_default_caps[i];
  assert_int_equal (rt_n_default_caps, 14);
  assert_int_equal (mask, 0xa80425fbULL); /* Docker's default set */
  struct rt_spec spec = spec_for ((char **) sh (
      "grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status; /probe syscalls"));
  struct result r;
  RUN_OK ("it-caps", &spec, &r);
  assert_int_equal (r.exit.code, 0);
  char want[64];
  const char *sets[] = { "CapPrm", "CapEff", "CapBnd" };
  for (int i = 0; i < 3; i++)
    {
      snprintf (want, sizeof want, "%s:\t%016llx\n", sets[i], (unsigned long long) mask);
      if (strstr (r.out, want) == NULL)
        fail_msg ("want %s in %s", want, r.out);
    }
  assert_non_null (strstr (r.out, "CapInh:\t0000000000000000\n"));
  assert_non_null (strstr (r.out, "CapAmb:\t0000000000000000\n"));
  assert_non_null (strstr (r.out, "NoNewPrivs:\t1\n"));
  assert_non_null (strstr (r.out, "Seccomp:\t2\n"));
  assert_non_null (strstr (r.out, "unshare=EPERM mount=EPERM keyctl=EPERM\n"));
}

static void
test_oom_kill_reported (void **s_)
{
  (void) s_;
  char *argv[] = { "/probe", "alloc", "512", NULL };
  struct rt_spec spec = spec_for (argv);
  spec.memory_max = 32 << 20;
  struct result r;
  RUN_OK ("it-oom", &spec, &r);
  assert_int_equal (r.exit.signal, SIGKILL);
  assert_true (r.exit.oom_killed);
  assert_null (strstr (r.out, "allocated"));
  assert_true (r.usage.memory_peak >= 16 << 20);
}

static void
test_fork_bomb_stops_at_pids_limit (void **s_)
{
  (void) s_;
  char *argv[] = { "/probe", "forkbomb", NULL };
  struct rt_spec spec = spec_for (argv);
  spec.pids_max = 32;
  struct result r;
  RUN_OK ("it-forkbomb", &spec, &r);
  assert_int_equal (r.exit.code, 0);
  int forked = -1;
  char why[32] = "";
  assert_int_equal (sscanf (r.out, "forked %d then %31s", &forked, why), 2);
  assert_in_range (forked, 1, 31); /* pid 1 counts against the limit */
  assert_string_equal (why, "Resource");  /* EAGAIN: "Resource temporarily unavailable" */
  /* The host still forks. */
  pid_t p = fork ();
  if (p == 0)
    _exit (0);
  assert_true (p > 0);
  waitpid (p, NULL, 0);
}

static void
test_cpu_quota_holds (void **s_)
{
  (void) s_;
  char *argv[] = { "/probe", "spin", "1000", NULL };
  struct rt_spec spec = spec_for (argv);
  spec.cpu_millis = 250;
  struct result r;
  RUN_OK ("it-cpu", &spec, &r);
  assert_int_equal (r.exit.code, 0);
  /* A quarter of a CPU over one second: about 250 ms of CPU time. */
  fprintf (stderr, "# cpu quota 0.25 over 1 s: used %llu us\n", (unsigned long long) r.usage.cpu_usec);
  assert_in_range (r.usage.cpu_usec, 150000, 350000);
  /* Throttled three quarters of the time: on cgroup v2 the stall shows in
   * its CPU pressure (PSI), which the meter reports. */
  if (rt_runtime_cgroup_version (rt) == RT_CGROUP_V2 && access ("/proc/pressure/cpu", R_OK) == 0)
    {
      fprintf (stderr, "# cpu pressure (some) while throttled: %llu us\n",
               (unsigned long long) r.usage.psi_cpu_us);
      assert_true (r.usage.psi_cpu_us > 100000);
    }
}

static void
test_exit_codes_and_signals (void **s_)
{
  (void) s_;
  struct rt_spec spec = spec_for ((char **) sh ("exit 7"));
  struct result r;
  RUN_OK ("it-exit", &spec, &r);
  assert_int_equal (r.exit.code, 7);
  assert_int_equal (r.exit.signal, 0);

  char *segv[] = { "/probe", "segv", NULL };
  spec = spec_for (segv);
  RUN_OK ("it-segv", &spec, &r);
  assert_int_equal (r.exit.signal, SIGSEGV);
  assert_false (r.exit.oom_killed);

  /* A signal from outside, through the pidfd. */
  char *sleep_argv[] = { "sleep", "1000", NULL };
  spec = spec_for (sleep_argv);
  struct rt_container *c;
  struct error err = { 0 };
  if (rt_start (rt, "it-signal", &spec, &c, &err) < 0)
    fail_msg ("%s", err.msg);
  assert_int_equal (rt_signal (c, SIGKILL, &err), 0);
  struct rt_exit ex;
  assert_int_equal (rt_wait (c, true, &ex, &err), 0);
  assert_int_equal (ex.signal, SIGKILL);
  assert_false (ex.oom_killed);
  assert_int_equal (rt_destroy (c, &err), 0);
}

static void
test_writes_land_in_upper_only (void **s_)
{
  (void) s_;
  char upper[PATH_MAX + 16], path[PATH_MAX + 64], buf[4096], before[4096];
  snprintf (upper, sizeof upper, "%s/upper", work);
  assert_int_equal (mkdir (upper, 0755), 0);
  struct error err = { 0 };
  snprintf (path, sizeof path, "%s/etc/passwd", rootfs);
  assert_true (read_file_at (AT_FDCWD, path, before, sizeof before, &err) > 0);

  struct rt_spec spec = spec_for ((char **) sh ("echo data > /newfile && echo extra >> /etc/passwd && rm /bin/true"));
  spec.upper = upper;
  struct result r;
  RUN_OK ("it-upper", &spec, &r);
  assert_int_equal (r.exit.code, 0);

  snprintf (path, sizeof path, "%s/newfile", upper);
  assert_true (read_file_at (AT_FDCWD, path, buf, sizeof buf, &err) > 0);
  assert_string_equal (buf, "data\n");
  snprintf (path, sizeof path, "%s/etc/passwd", upper);
  assert_true (read_file_at (AT_FDCWD, path, buf, sizeof buf, &err) > 0);
  assert_non_null (strstr (buf, "extra\n"));
  /* The deletion is a whiteout in the upper dir. */
  struct stat st;
  snprintf (path, sizeof path, "%s/bin/true", upper);
  assert_int_equal (lstat (path, &st), 0);
  assert_true (S_ISCHR (st.st_mode) && st.st_rdev == 0);
  /* The lower layers are untouched. */
  snprintf (path, sizeof path, "%s/newfile", rootfs);
  assert_int_equal (access (path, F_OK), -1);
  snprintf (path, sizeof path, "%s/etc/passwd", rootfs);
  assert_true (read_file_at (AT_FDCWD, path, buf, sizeof buf, &err) > 0);
  assert_string_equal (buf, before);
  snprintf (path, sizeof path, "%s/bin/true", rootfs);
  assert_int_equal (lstat (path, &st), 0);
  /* The overlay workdir beside the upper dir is gone again. */
  snprintf (path, sizeof path, "%s", work);
  char cmd[PATH_MAX + 64];
  snprintf (cmd, sizeof cmd, "ls -A %s | grep -q agentd-work", work);
  assert_int_not_equal (system (cmd), 0);
}

/* Every cgroup directory the runtime could have made for id. */
static int
count_cgroup_dirs (const char *id)
{
  int n = 0;
  char path[PATH_MAX * 2];
  if (host.v2_mount[0])
    {
      snprintf (path, sizeof path, "%s/%s/%s", host.v2_mount, CG_PARENT, id);
      n += access (path, F_OK) == 0;
    }
  for (int c = 0; c < CG1_N; c++)
    if (host.v1_mount[c][0])
      {
        snprintf (path, sizeof path, "%s/%s/%s", host.v1_mount[c], CG_PARENT, id);
        n += access (path, F_OK) == 0;
      }
  return n;
}

static bool
host_mountinfo_mentions (const char *s)
{
  char buf[65536];
  struct error err;
  return read_file_at (AT_FDCWD, "/proc/self/mountinfo", buf, sizeof buf, &err) > 0
         && strstr (buf, s) != NULL;
}

static void
test_teardown_leaves_nothing (void **s_)
{
  (void) s_;
  char *argv[] = { "sh", "-c", "sleep 1000 & echo ready; sleep 1000", NULL };
  struct rt_spec spec = spec_for (argv);
  struct rt_container *c;
  struct error err = { 0 };
  int p[2];
  assert_int_equal (pipe2 (p, O_CLOEXEC), 0);
  spec.stdio[1] = p[1];
  if (rt_start (rt, "it-teardown", &spec, &c, &err) < 0)
    fail_msg ("%s", err.msg);
  close (p[1]);
  char line[16] = "";
  assert_true (read (p[0], line, sizeof line - 1) > 0); /* the background sleep exists */
  close (p[0]);
  assert_string_equal (line, "ready\n");
  pid_t pid = rt_pid (c);
  char proc[64], sdir[PATH_MAX * 2];
  snprintf (proc, sizeof proc, "/proc/%d", (int) pid);
  snprintf (sdir, sizeof sdir, "%s/it-teardown", state);
  assert_int_equal (access (proc, F_OK), 0);
  assert_true (count_cgroup_dirs ("it-teardown") > 0);
  assert_int_equal (access (sdir, F_OK), 0);
  /* The container's mounts live in its own namespace only. */
  assert_false (host_mountinfo_mentions (sdir));
  struct rt_usage u;
  assert_int_equal (rt_usage (c, &u, &err), 0);
  assert_true (u.pids_current >= 2);
  assert_true (u.memory_current > 0);

  /* kill-all reaches every process of the cgroup, init included. */
  assert_int_equal (rt_kill_all (c, &err), 0);
  struct rt_exit ex;
  assert_int_equal (rt_wait (c, true, &ex, &err), 0);
  assert_int_equal (ex.signal, SIGKILL);
  assert_false (ex.oom_killed);
  assert_int_equal (rt_destroy (c, &err), 0);
  assert_int_equal (access (proc, F_OK), -1);
  assert_int_equal (count_cgroup_dirs ("it-teardown"), 0);
  assert_int_equal (access (sdir, F_OK), -1);
  assert_false (host_mountinfo_mentions (sdir));
}

static int
state_entries (void)
{
  char cmd[PATH_MAX + 64];
  snprintf (cmd, sizeof cmd, "test -z \"$(ls -A %s)\"", state);
  return system (cmd) == 0 ? 0 : 1;
}

static void
expect_start_error (const char *id, struct rt_spec *spec, const char *want)
{
  struct rt_container *c = NULL;
  struct error err = { 0 };
  assert_int_equal (rt_start (rt, id, spec, &c, &err), -1);
  if (strstr (err.msg, want) == NULL)
    fail_msg ("error `%s` does not mention `%s`", err.msg, want);
  assert_int_equal (count_cgroup_dirs (id), 0);
  assert_int_equal (state_entries (), 0);
}

static void
test_bad_input_errors_and_leaves_nothing (void **s_)
{
  (void) s_;
  char *argv[] = { "true", NULL };
  struct rt_spec spec = spec_for (argv);
  spec.n_lowers = 0;
  spec.rootfs = "/nonexistent/rootfs";
  expect_start_error ("it-bad-rootfs", &spec, "rootfs `/nonexistent/rootfs`: No such file or directory");

  char file[PATH_MAX + 16];
  snprintf (file, sizeof file, "%s/not-a-dir", work);
  close (open (file, O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
  const char *lowers[] = { file, rootfs };
  spec = spec_for (argv);
  spec.lowers = lowers;
  expect_start_error ("it-bad-layer", &spec, "not a directory");

  char *missing[] = { "no-such-command", NULL };
  spec = spec_for (missing);
  expect_start_error ("it-bad-cmd", &spec, "command `no-such-command` not found");

  char *cwd_argv[] = { "true", NULL };
  spec = spec_for (cwd_argv);
  spec.cwd = "/does/not/exist";
  expect_start_error ("it-bad-cwd", &spec, "working directory `/does/not/exist`");

  spec = spec_for (argv);
  expect_start_error ("../escape", &spec, "container id");
}

static void
test_user_env_cwd_rlimits_and_rootfs_dir (void **s_)
{
  (void) s_;
  struct rt_spec spec = spec_for ((char **) sh ("echo uid=$(id -u) gid=$(id -g) cwd=$(pwd) v=$GREETING;"
                                                "echo nofile=$(ulimit -n):$(ulimit -Hn);"
                                                "grep CapEff /proc/self/status"));
  spec.n_lowers = 0;
  spec.rootfs = rootfs; /* one directory instead of an overlay */
  spec.uid = 1000;
  spec.gid = 1001;
  spec.cwd = "/tmp";
  struct rt_rlimit limits[] = { { RLIMIT_NOFILE, 64, 128 } };
  spec.rlimits = limits;
  spec.n_rlimits = 1;
  char *e[] = { "PATH=/bin", "GREETING=hello", NULL };
  spec.envp = e;
  struct result r;
  RUN_OK ("it-user", &spec, &r);
  assert_int_equal (r.exit.code, 0);
  assert_non_null (strstr (r.out, "uid=1000 gid=1001 cwd=/tmp v=hello\n"));
  assert_non_null (strstr (r.out, "nofile=64:128\n"));
  assert_non_null (strstr (r.out, "CapEff:\t0000000000000000\n"));
}

static void
test_user_namespace (void **s_)
{
  (void) s_;
  struct rt_spec spec = spec_for ((char **) sh ("cat /proc/self/uid_map; id -u; echo > /w && echo upper-writable"));
  spec.userns = true;
  spec.userns_host_id = 200000;
  spec.userns_size = 65536;
  struct result r;
  RUN_OK ("it-userns", &spec, &r);
  assert_int_equal (r.exit.code, 0);
  int inside, outside, size;
  assert_int_equal (sscanf (r.out, " %d %d %d", &inside, &outside, &size), 3);
  assert_int_equal (inside, 0);
  assert_int_equal (outside, 200000);
  assert_int_equal (size, 65536);
  assert_non_null (strstr (r.out, "\n0\nupper-writable\n"));
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_pid1_hostname_and_no_host_files),
    cmocka_unit_test (test_masked_and_readonly_paths),
    cmocka_unit_test (test_caps_nnp_seccomp),
    cmocka_unit_test (test_oom_kill_reported),
    cmocka_unit_test (test_fork_bomb_stops_at_pids_limit),
    cmocka_unit_test (test_cpu_quota_holds),
    cmocka_unit_test (test_exit_codes_and_signals),
    cmocka_unit_test (test_writes_land_in_upper_only),
    cmocka_unit_test (test_teardown_leaves_nothing),
    cmocka_unit_test (test_bad_input_errors_and_leaves_nothing),
    cmocka_unit_test (test_user_env_cwd_rlimits_and_rootfs_dir),
    cmocka_unit_test (test_user_namespace),
  };
  return cmocka_run_group_tests_name ("runtime", tests, group_setup, group_teardown);
}
