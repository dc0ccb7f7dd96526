/* Private to runtime/cgroup*.c: the object both backends share. */
#ifndef RUNTIME_CGROUP_BACKEND_H
#define RUNTIME_CGROUP_BACKEND_H

#include "cgroup.h"

/* Files read on every usage sample, opened on first use and kept open. */
enum cgroup_stat_file
{
  CGS_CPU,
  CGS_MEM_CURRENT,
  CGS_MEM_PEAK,
  CGS_PIDS,
  CGS_IO,
  CGS_PSI_CPU, /* v2: cpu.pressure, memory.pressure, io.pressure */
  CGS_PSI_MEM,
  CGS_PSI_IO,
  CGS_N
};

struct cgroup
{
  enum rt_cgroup_version version;
  /* v2: dir[0] only. v1: one per controller; controllers mounted together
   * share a directory (same_as[i] is the first index with that path). */
  int dirfd[CG1_N];
  char path[CG1_N][PATH_MAX];
  int same_as[CG1_N];
  int stat_fd[CGS_N];
};

int cgroup_v1_prepare (const struct cgroup_host *host, const char *parent,
                       struct error *err);
int cgroup_v1_create (struct cgroup *cg, const struct cgroup_host *host,
                      const char *parent, const char *id, bool exists,
                      const struct cgroup_limits *limits, struct error *err);
int cgroup_v1_attach (struct cgroup *cg, pid_t pid, struct error *err);
int cgroup_v1_kill_all (struct cgroup *cg, struct error *err);
int cgroup_v1_oom_kills (struct cgroup *cg, uint64_t *out, struct error *err);
int cgroup_v1_usage (struct cgroup *cg, struct rt_usage *out, struct error *err);

int cgroup_v2_prepare (const struct cgroup_host *host, const char *parent,
                       struct error *err);
int cgroup_v2_create (struct cgroup *cg, const struct cgroup_host *host,
                      const char *parent, const char *id, bool exists,
                      const struct cgroup_limits *limits, struct error *err);
int cgroup_v2_kill_all (struct cgroup *cg, struct error *err);
int cgroup_v2_oom_kills (struct cgroup *cg, uint64_t *out, struct error *err);
int cgroup_v2_usage (struct cgroup *cg, struct rt_usage *out, struct error *err);

/* Shared by both backends. */
int cgroup_kill_procs (int dirfd, const char *path, struct error *err);
int cgroup_stat_read (struct cgroup *cg, enum cgroup_stat_file which, int dirfd,
                      const char *name, char *buf, size_t cap);
int cgroup_write_int (int dirfd, const char *path, const char *file, int64_t v,
                      struct error *err);

#endif
