/* runtime/: start, supervise, measure and tear down one isolated process
 * tree. No daemon, no images, no global state, no signal handlers: every
 * call takes the objects it works on, and errors come back in `struct error`.
 *
 *   rt_runtime_new  once per process: picks the cgroup backend (v2, or v1 on
 *                   v1 and hybrid hosts) and the state directory
 *   rt_seccomp_*    the default seccomp filter, compiled once (cached on disk)
 *   rt_start        one clone3 into new namespaces; returns once the workload
 *                   has exec'd, or with the child's own error
 *   rt_wait/...     supervise through the pidfd; read usage; kill; destroy
 */
#ifndef RUNTIME_H
#define RUNTIME_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "../common/error.h"

enum rt_cgroup_version
{
  RT_CGROUP_V1 = 1, /* v1 controllers (also on hybrid hosts) */
  RT_CGROUP_V2 = 2,
};

struct rt_runtime;
struct rt_container;
struct rt_seccomp;

struct rt_rlimit
{
  int resource; /* RLIMIT_* */
  rlim_t soft;
  rlim_t hard;
};

struct rt_spec
{
  /* Root filesystem: either one directory (rootfs), or an overlay of
   * n_lowers read-only directories (lowers[0] is the top) and a writable
   * upper directory; with upper == NULL the upper is ephemeral. */
  const char *rootfs;
  const char *const *lowers;
  size_t n_lowers;
  const char *upper;

  char *const *argv; /* argv[0] without '/' is looked up in envp's PATH */
  char *const *envp;
  const char *cwd;      /* NULL: "/" */
  const char *hostname; /* NULL: the container id */
  uid_t uid;
  gid_t gid;

  int64_t memory_max; /* bytes; 0: no limit */
  int64_t cpu_millis; /* 1000 = one CPU; 0: no quota */
  int64_t pids_max;   /* 0: no limit */
  const struct rt_rlimit *rlimits;
  size_t n_rlimits;

  int stdio[3]; /* fds the workload gets as 0, 1, 2 */

  /* Optional user namespace: container ids 0..userns_size-1 map to host ids
   * starting at userns_host_id. */
  bool userns;
  uint32_t userns_host_id;
  uint32_t userns_size;

  const struct rt_seccomp *seccomp; /* NULL: no filter */

  /* A network namespace to join (an fd above 2, prepared by the caller with
   * its interfaces), or 0 for a new one with loopback only. Not with userns. */
  int netns_fd;
};

struct rt_exit
{
  int code;        /* exit status when signal == 0 */
  int signal;      /* killing signal, or 0 */
  bool oom_killed; /* the memory limit's OOM killer sent that signal */
  bool unknown;    /* adopted workload: it ended, but its status went to init */
};

struct rt_usage
{
  uint64_t cpu_usec;       /* cumulative CPU time */
  uint64_t memory_current; /* bytes */
  uint64_t memory_peak;    /* bytes, high-water mark */
  uint64_t pids_current;
  uint64_t io_read_bytes;
  uint64_t io_write_bytes;
  /* cgroup v2: cumulative µs some task waited for CPU, memory, I/O (PSI);
   * 0 on v1. */
  uint64_t psi_cpu_us, psi_memory_us, psi_io_us;
};

/* state_dir holds per-container directories (mount points, ephemeral upper
 * dirs); cgroup_parent is the cgroup (relative to each hierarchy's root)
 * under which containers are created, e.g. "agentd". */
int rt_runtime_new (const char *state_dir, const char *cgroup_parent,
                    struct rt_runtime **out, struct error *err);
/* Make up to n spares ahead of need (cgroups and state dirs, at most 16,
 * on v1 with a thread parked in the cgroups), so that rt_start creates
 * nothing: call it off the hot path.
 * The one call that may run in another thread than the rest. */
int rt_prepare (struct rt_runtime *rt, int n, struct error *err);
/* Removes the spares too. */
void rt_runtime_free (struct rt_runtime *rt);
enum rt_cgroup_version rt_runtime_cgroup_version (const struct rt_runtime *rt);

/* The default allow-list filter (modelled on Docker's, default action EPERM).
 * Compiled once; cache_dir (may be NULL) keeps the BPF across processes. */
int rt_seccomp_default (const char *cache_dir, struct rt_seccomp **out,
                        struct error *err);
void rt_seccomp_free (struct rt_seccomp *sc);
size_t rt_seccomp_instructions (const struct rt_seccomp *sc);
/* The same profile as OCI runtime-spec JSON (linux.seccomp), for peers. */
int rt_seccomp_write_oci (FILE *out, struct error *err);

/* The 14 capabilities every workload gets (Docker's default set). */
extern const int rt_default_caps[];
extern const size_t rt_n_default_caps;

/* id names the container's cgroup and state directory: [A-Za-z0-9_.-], at
 * most 64 characters, unique among running containers. */
int rt_start (struct rt_runtime *rt, const char *id, const struct rt_spec *spec,
              struct rt_container **out, struct error *err);

/* Take over a workload a previous process started (after an agentd
 * restart): pid must still be the same process, which start_time (from
 * rt_start_time) proves; its cgroup and state dir are found by name (see
 * rt_name). Such a workload is not our child: rt_wait reports its end with
 * exit.unknown. */
int rt_adopt (struct rt_runtime *rt, const char *id, const char *name, pid_t pid,
              uint64_t start_time, struct rt_container **out, struct error *err);
/* After a crash: cgroups under the runtime's parent that keep() does not
 * claim (by rt_name) and that hold no process are removed with their state
 * dirs (spares and ended workloads a crash left); those that still hold
 * processes are left alone and listed. */
#define RT_RECONCILE_MAX 16
struct rt_reconcile_stats
{
  size_t removed;
  char busy[RT_RECONCILE_MAX][65];
  size_t n_busy;
};
int rt_reconcile (struct rt_runtime *rt, bool (*keep) (void *ctx, const char *name), void *ctx,
                  struct rt_reconcile_stats *stats, struct error *err);
/* The kernel's start time of a process (clock ticks since boot). */
int rt_start_time (pid_t pid, uint64_t *out, struct error *err);

const char *rt_id (const struct rt_container *c);
/* The name of its cgroup and state dir: its id, or that of the spare it
 * started from (keep it to adopt the workload later). */
const char *rt_name (const struct rt_container *c);
pid_t rt_pid (const struct rt_container *c);
/* Readable (epoll) when the workload has exited. */
int rt_pidfd (const struct rt_container *c);

/* Reap the workload. With block == false returns 1 while it still runs. */
int rt_wait (struct rt_container *c, bool block, struct rt_exit *out,
             struct error *err);
int rt_signal (struct rt_container *c, int sig, struct error *err);
/* SIGKILL every process in the container's cgroup. */
int rt_kill_all (struct rt_container *c, struct error *err);
int rt_usage (struct rt_container *c, struct rt_usage *out, struct error *err);
/* Bytes on disk of an ephemeral writable layer (its upper dir;
 * 0 with a caller's upper): a directory walk, so call it seldom. */
uint64_t rt_writable_bytes (struct rt_container *c);
/* Let go of the handle only: the workload keeps running (a daemon that
 * stops, to adopt it again later). */
void rt_forget (struct rt_container *c);
/* Kill what is left, reap, remove the cgroup and state directory; frees c
 * even when it reports an error. */
int rt_destroy (struct rt_container *c, struct error *err);

#endif
