/* The cgroup interface of runtime/, with a v2 and a v1 backend chosen by
 * what the host mounts (DESIGN.md, "Cgroups: v2 first, v1 and hybrid too"). */
#ifndef RUNTIME_CGROUP_H
#define RUNTIME_CGROUP_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "runtime.h"

/* The v1 controllers runtime/ uses, and where each is mounted. */
enum cgroup_v1_controller
{
  CG1_MEMORY,
  CG1_PIDS,
  CG1_CPU,
  CG1_CPUACCT,
  CG1_BLKIO,
  CG1_N
};

struct cgroup_host
{
  char v2_mount[PATH_MAX];       /* "" when no cgroup2 mount */
  char v1_mount[CG1_N][PATH_MAX]; /* "" when that controller is not mounted */
};

/* Parse /proc/self/mountinfo text into the mount points of interest. */
int cgroup_host_parse (const char *mountinfo, struct cgroup_host *out,
                       struct error *err);
/* Pick the backend: v2 when the cgroup2 mount's cgroup.controllers (text
 * given) offers memory, pids and cpu; else v1 when memory and pids are
 * mounted as v1 controllers. */
int cgroup_host_select (const struct cgroup_host *host, const char *v2_controllers,
                        enum rt_cgroup_version *out, struct error *err);

struct cgroup_limits
{
  int64_t memory_max;
  int64_t cpu_millis;
  int64_t pids_max;
};

struct cgroup; /* one container's cgroup, in whichever version */

/* Prepare the hierarchy for containers under `parent` (create it, enable
 * controllers on v2). Called once per runtime. */
int cgroup_prepare (const struct cgroup_host *host, enum rt_cgroup_version v,
                    const char *parent, struct error *err);
/* Make cgroup `id` under parent (or, with exists, open the one there) and
 * set the limits (none when NULL: adoption). */
int cgroup_create (const struct cgroup_host *host, enum rt_cgroup_version v,
                   const char *parent, const char *id, bool exists,
                   const struct cgroup_limits *limits, struct cgroup **out,
                   struct error *err);
/* Spares: cgroup directories made ahead of need (mkdir is the slow part of
 * a start), then opened by cgroup_create(exists) when one starts. */
int cgroup_spare_make (const struct cgroup_host *host, enum rt_cgroup_version v,
                       const char *parent, const char *name, struct error *err);
void cgroup_spare_remove (const struct cgroup_host *host, enum rt_cgroup_version v,
                          const char *parent, const char *name);
/* The names of the cgroups under parent (in the first hierarchy), each
 * with whether any process is in it; calls fn for each. */
int cgroup_list_children (const struct cgroup_host *host, enum rt_cgroup_version v,
                          const char *parent, void (*fn) (void *ctx, const char *name, bool busy),
                          void *ctx, struct error *err);
/* v1: move one thread (tid) into the spare, in every hierarchy. */
int cgroup_spare_attach_thread (const struct cgroup_host *host, const char *parent,
                                const char *name, pid_t tid, struct error *err);
/* A directory fd for clone3's CLONE_INTO_CGROUP, or -1 (v1). */
int cgroup_clone_fd (const struct cgroup *cg);
/* Move pid in (v1: every hierarchy); pid 0 is the caller itself. */
int cgroup_attach (struct cgroup *cg, pid_t pid, struct error *err);
int cgroup_kill_all (struct cgroup *cg, struct error *err);
int cgroup_oom_kills (struct cgroup *cg, uint64_t *out, struct error *err);
int cgroup_usage (struct cgroup *cg, struct rt_usage *out, struct error *err);
/* Close and free cg, leaving the directories (and what runs there). */
void cgroup_forget (struct cgroup *cg);
/* Remove the directories (waiting for dying processes to leave); frees cg. */
int cgroup_destroy (struct cgroup *cg, struct error *err);

/* Parse helpers shared by both backends (exposed for the unit tests). */
/* Value of `key` in "key value\n" lines (cpu.stat, memory.events). */
int cgroup_parse_keyed (const char *text, const char *key, uint64_t *out);
/* A PSI file's "some ... total=N": microseconds some task stalled. */
int cgroup_parse_psi_some (const char *text, uint64_t *out);
/* Sum of rbytes=/wbytes= over the devices of a v2 io.stat. */
void cgroup_parse_io_stat_v2 (const char *text, uint64_t *rd, uint64_t *wr);
/* Sum of "MAJ:MIN Read N" / "Write N" lines of v1 blkio io_service_bytes. */
void cgroup_parse_blkio_v1 (const char *text, uint64_t *rd, uint64_t *wr);

#endif
