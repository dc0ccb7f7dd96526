/* cgroup v2 backend: one directory in the unified hierarchy; the child is
 * cloned straight into it (CLONE_INTO_CGROUP). */
#include "cgroup_backend.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/fsutil.h"

static const char *const wanted[] = { "+memory", "+pids", "+cpu", "+io" };

/* Enable the controllers in subtree_control of every level from the root to
 * `parent`, so the containers below it get them. "io" may be missing. */
int
cgroup_v2_prepare (const struct cgroup_host *host, const char *parent, struct error *err)
{
  char path[PATH_MAX];
  if (snprintf (path, sizeof path, "%s/%s", host->v2_mount, parent) >= (int) sizeof path)
    return error_setx (err, ENAMETOOLONG, "cgroup parent `%s` is too long", parent);
  if (mkdir_p (path, 0755, err) < 0)
    return error_prefix (err, "cgroup v2 parent");
  size_t root_len = strlen (host->v2_mount);
  for (char *p = path + root_len;; p = strchr (p + 1, '/'))
    {
      char saved = p ? *p : '\0';
      if (p)
        *p = '\0';
      int dirfd = open (path, O_PATH | O_DIRECTORY | O_CLOEXEC);
      if (dirfd < 0)
        return error_set (err, errno, "open cgroup `%s`", path);
      for (size_t i = 0; i < sizeof wanted / sizeof wanted[0]; i++)
        if (write_file_at (dirfd, "cgroup.subtree_control", wanted[i], strlen (wanted[i]), err) < 0
            && strcmp (wanted[i], "+io") != 0)
          {
            close (dirfd);
            return error_prefix (err, "cgroup `%s`: enable %s", path, wanted[i] + 1);
          }
      close (dirfd);
      if (!p)
        break;
      *p = saved;
    }
  return 0;
}

int
cgroup_v2_create (struct cgroup *cg, const struct cgroup_host *host, const char *parent,
                  const char *id, bool exists, const struct cgroup_limits *limits,
                  struct error *err)
{
  if (snprintf (cg->path[0], PATH_MAX, "%s/%s/%s", host->v2_mount, parent, id) >= PATH_MAX)
    return error_setx (err, ENAMETOOLONG, "cgroup path for `%s` is too long", id);
  if (!exists && mkdir (cg->path[0], 0755) < 0)
    {
      int e = errno;
      cg->path[0][0] = '\0';
      return error_set (err, e, "create cgroup `%s/%s/%s`", host->v2_mount, parent, id);
    }
  cg->same_as[0] = 0;
  cg->dirfd[0] = open (cg->path[0], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (cg->dirfd[0] < 0)
    return error_set (err, errno, "open cgroup `%s`", cg->path[0]);
  if (limits == NULL)
    return 0;
  int fd = cg->dirfd[0];
  const char *path = cg->path[0];
  if (limits->memory_max > 0)
    {
      if (cgroup_write_int (fd, path, "memory.max", limits->memory_max, err) < 0)
        return -1;
      if (cgroup_write_int (fd, path, "memory.swap.max", 0, err) < 0 && err->code != ENOENT)
        return -1;
    }
  if (limits->pids_max > 0 && cgroup_write_int (fd, path, "pids.max", limits->pids_max, err) < 0)
    return -1;
  if (limits->cpu_millis > 0)
    {
      char buf[64];
      int n = snprintf (buf, sizeof buf, "%" PRId64 " 100000", limits->cpu_millis * 100);
      if (write_file_at (fd, "cpu.max", buf, n, err) < 0)
        return error_prefix (err, "cgroup `%s`", path);
    }
  return 0;
}

int
cgroup_v2_kill_all (struct cgroup *cg, struct error *err)
{
  if (write_file_at (cg->dirfd[0], "cgroup.kill", "1", 1, err) == 0)
    return 0;
  if (err->code != ENOENT) /* cgroup.kill is new in 5.14 */
    return error_prefix (err, "cgroup `%s`", cg->path[0]);
  return cgroup_kill_procs (cg->dirfd[0], cg->path[0], err);
}

int
cgroup_v2_oom_kills (struct cgroup *cg, uint64_t *out, struct error *err)
{
  char buf[512];
  if (read_file_at (cg->dirfd[0], "memory.events", buf, sizeof buf, err) < 0)
    return error_prefix (err, "cgroup `%s`", cg->path[0]);
  *out = 0;
  cgroup_parse_keyed (buf, "oom_kill", out);
  return 0;
}

static uint64_t
read_u64 (struct cgroup *cg, enum cgroup_stat_file which, const char *name)
{
  char buf[64];
  if (cgroup_stat_read (cg, which, cg->dirfd[0], name, buf, sizeof buf) < 0)
    return 0;
  return strtoull (buf, NULL, 10);
}

int
cgroup_v2_usage (struct cgroup *cg, struct rt_usage *out, struct error *err)
{
  (void) err;
  char buf[8192];
  if (cgroup_stat_read (cg, CGS_CPU, cg->dirfd[0], "cpu.stat", buf, sizeof buf) == 0)
    cgroup_parse_keyed (buf, "usage_usec", &out->cpu_usec);
  out->memory_current = read_u64 (cg, CGS_MEM_CURRENT, "memory.current");
  out->memory_peak = read_u64 (cg, CGS_MEM_PEAK, "memory.peak"); /* 5.19+ */
  out->pids_current = read_u64 (cg, CGS_PIDS, "pids.current");
  if (cgroup_stat_read (cg, CGS_IO, cg->dirfd[0], "io.stat", buf, sizeof buf) == 0)
    cgroup_parse_io_stat_v2 (buf, &out->io_read_bytes, &out->io_write_bytes);
  /* Pressure stall information (absent when the kernel runs with psi=0). */
  const struct
  {
    enum cgroup_stat_file which;
    const char *name;
    uint64_t *out;
  } psi[] = { { CGS_PSI_CPU, "cpu.pressure", &out->psi_cpu_us },
              { CGS_PSI_MEM, "memory.pressure", &out->psi_memory_us },
              { CGS_PSI_IO, "io.pressure", &out->psi_io_us } };
  for (size_t i = 0; i < sizeof psi / sizeof psi[0]; i++)
    if (cgroup_stat_read (cg, psi[i].which, cg->dirfd[0], psi[i].name, buf, sizeof buf) == 0)
      cgroup_parse_psi_some (buf, psi[i].out);
  return 0;
}
