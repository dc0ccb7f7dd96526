/* cgroup v1 backend: one directory per controller hierarchy (controllers
 * mounted together share it). Used on v1 and hybrid hosts. */
#include "cgroup_backend.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/fsutil.h"

int
cgroup_v1_prepare (const struct cgroup_host *host, const char *parent, struct error *err)
{
  for (int c = 0; c < CG1_N; c++)
    {
      if (host->v1_mount[c][0] == '\0')
        continue;
      char path[PATH_MAX];
      if (snprintf (path, sizeof path, "%s/%s", host->v1_mount[c], parent) >= (int) sizeof path)
        return error_setx (err, ENAMETOOLONG, "cgroup parent `%s` is too long", parent);
      if (mkdir_p (path, 0755, err) < 0)
        return error_prefix (err, "cgroup v1 parent");
    }
  return 0;
}

int
cgroup_v1_create (struct cgroup *cg, const struct cgroup_host *host, const char *parent,
                  const char *id, bool exists, const struct cgroup_limits *limits,
                  struct error *err)
{
  for (int c = 0; c < CG1_N; c++)
    {
      if (host->v1_mount[c][0] == '\0')
        continue;
      if (snprintf (cg->path[c], PATH_MAX, "%s/%s/%s", host->v1_mount[c], parent, id)
          >= PATH_MAX)
        return error_setx (err, ENAMETOOLONG, "cgroup path for `%s` is too long", id);
      for (int o = 0; o < c; o++)
        if (cg->same_as[o] == o && strcmp (cg->path[o], cg->path[c]) == 0)
          cg->same_as[c] = o;
      if (cg->same_as[c] < 0)
        {
          if (!exists && mkdir (cg->path[c], 0755) < 0)
            {
              int e = errno;
              cg->path[c][0] = '\0';
              return error_set (err, e, "create cgroup `%s/%s/%s`", host->v1_mount[c],
                                parent, id);
            }
          cg->same_as[c] = c;
        }
      cg->dirfd[c] = open (cg->path[c], O_PATH | O_DIRECTORY | O_CLOEXEC);
      if (cg->dirfd[c] < 0)
        return error_set (err, errno, "open cgroup `%s`", cg->path[c]);
    }
  if (limits == NULL)
    return 0;

  int mem = cg->dirfd[CG1_MEMORY], pids = cg->dirfd[CG1_PIDS];
  if (limits->memory_max > 0)
    {
      if (cgroup_write_int (mem, cg->path[CG1_MEMORY], "memory.limit_in_bytes",
                            limits->memory_max, err) < 0)
        return -1;
      /* Memory+swap at the same value: the limit means what it says. Absent
       * when swap accounting is off, which has the same effect. */
      if (cgroup_write_int (mem, cg->path[CG1_MEMORY], "memory.memsw.limit_in_bytes",
                            limits->memory_max, err) < 0 && err->code != ENOENT)
        return -1;
    }
  if (limits->pids_max > 0
      && cgroup_write_int (pids, cg->path[CG1_PIDS], "pids.max", limits->pids_max, err) < 0)
    return -1;
  if (limits->cpu_millis > 0)
    {
      if (cg->dirfd[CG1_CPU] < 0)
        return error_setx (err, ENOTSUP, "CPU quota needs the v1 cpu controller, which is not mounted");
      if (cgroup_write_int (cg->dirfd[CG1_CPU], cg->path[CG1_CPU], "cpu.cfs_period_us", 100000, err) < 0
          || cgroup_write_int (cg->dirfd[CG1_CPU], cg->path[CG1_CPU], "cpu.cfs_quota_us",
                               limits->cpu_millis * 100, err) < 0)
        return -1;
    }
  return 0;
}

int
cgroup_v1_attach (struct cgroup *cg, pid_t pid, struct error *err)
{
  for (int c = 0; c < CG1_N; c++)
    if (cg->dirfd[c] >= 0 && cg->same_as[c] == c
        && cgroup_write_int (cg->dirfd[c], cg->path[c], "cgroup.procs", pid, err) < 0)
      return -1;
  return 0;
}

int
cgroup_v1_kill_all (struct cgroup *cg, struct error *err)
{
  return cgroup_kill_procs (cg->dirfd[CG1_PIDS], cg->path[CG1_PIDS], err);
}

int
cgroup_v1_oom_kills (struct cgroup *cg, uint64_t *out, struct error *err)
{
  char buf[512];
  if (read_file_at (cg->dirfd[CG1_MEMORY], "memory.oom_control", buf, sizeof buf, err) < 0)
    return error_prefix (err, "cgroup `%s`", cg->path[CG1_MEMORY]);
  *out = 0;
  cgroup_parse_keyed (buf, "oom_kill", out);
  return 0;
}

static uint64_t
read_u64 (struct cgroup *cg, enum cgroup_stat_file which, int c, const char *name)
{
  char buf[64];
  if (cg->dirfd[c] < 0 || cgroup_stat_read (cg, which, cg->dirfd[c], name, buf, sizeof buf) < 0)
    return 0;
  return strtoull (buf, NULL, 10);
}

int
cgroup_v1_usage (struct cgroup *cg, struct rt_usage *out, struct error *err)
{
  (void) err;
  out->cpu_usec = read_u64 (cg, CGS_CPU, CG1_CPUACCT, "cpuacct.usage") / 1000;
  out->memory_current = read_u64 (cg, CGS_MEM_CURRENT, CG1_MEMORY, "memory.usage_in_bytes");
  out->memory_peak = read_u64 (cg, CGS_MEM_PEAK, CG1_MEMORY, "memory.max_usage_in_bytes");
  out->pids_current = read_u64 (cg, CGS_PIDS, CG1_PIDS, "pids.current");
  char buf[8192];
  if (cg->dirfd[CG1_BLKIO] >= 0
      && cgroup_stat_read (cg, CGS_IO, cg->dirfd[CG1_BLKIO], "blkio.throttle.io_service_bytes",
                           buf, sizeof buf) == 0)
    cgroup_parse_blkio_v1 (buf, &out->io_read_bytes, &out->io_write_bytes);
  return 0;
}
