/* Start one workload: one clone3 into new namespaces, set-up in the child,
 * exec. The child reports its own failure over a close-on-exec pipe, so the
 * parent learns "exec'd" (EOF) or the exact error. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../common/cleanup.h"
#include "../common/fsutil.h"
#include "cgroup.h"
#include "child.h"
#include "seccomp_internal.h"
#include "spawner.h"

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

#define MAX_SPARES 16

struct rt_runtime
{
  char state_dir[PATH_MAX];
  char cgroup_parent[PATH_MAX];
  struct cgroup_host host;
  enum rt_cgroup_version version;
  /* Spares (rt_prepare): a cgroup and a state dir with rootfs/, upper/ and
   * work/ made ahead, renamed to a container's id when it starts. */
  struct
  {
    char name[48];
    struct spawner *spawner; /* v1: a thread parked in its cgroups */
  } spares[MAX_SPARES];
  int n_spares;
  unsigned spare_seq;
  pthread_mutex_t spares_lock; /* rt_prepare may run in another thread */
};

struct rt_container
{
  char id[65];
  char name[65]; /* its cgroup's and state dir's name: the id, or a spare's */
  pid_t pid;
  int pidfd;
  bool reaped;
  bool adopted; /* not our child: no waitid */
  struct rt_exit exit;
  struct cgroup *cgroup;
  char state_path[PATH_MAX];   /* <state_dir>/<id> */
  char work_path[PATH_MAX];    /* overlay workdir beside a caller's upper, or "" */
};

int
rt_runtime_new (const char *state_dir, const char *cgroup_parent, struct rt_runtime **out,
                struct error *err)
{
  cleanup_free struct rt_runtime *rt = calloc (1, sizeof *rt);
  if (rt == NULL)
    return error_set (err, ENOMEM, "allocate runtime");
  pthread_mutex_init (&rt->spares_lock, NULL);
  if (snprintf (rt->state_dir, sizeof rt->state_dir, "%s", state_dir) >= PATH_MAX
      || snprintf (rt->cgroup_parent, sizeof rt->cgroup_parent, "%s", cgroup_parent) >= PATH_MAX)
    return error_setx (err, ENAMETOOLONG, "runtime: state dir or cgroup parent too long");
  /* 0711: a user namespace's root must traverse to its mount point. */
  if (mkdir_p (state_dir, 0711, err) < 0)
    return error_prefix (err, "runtime state dir");
  if (chmod (state_dir, 0711) < 0)
    return error_set (err, errno, "runtime state dir `%s`", state_dir);

  char mountinfo[65536];
  if (read_file_at (AT_FDCWD, "/proc/self/mountinfo", mountinfo, sizeof mountinfo, err) < 0
      || cgroup_host_parse (mountinfo, &rt->host, err) < 0)
    return -1;
  char controllers[512] = "";
  if (rt->host.v2_mount[0])
    {
      char path[PATH_MAX + 32];
      snprintf (path, sizeof path, "%s/cgroup.controllers", rt->host.v2_mount);
      struct error ignored;
      read_file_at (AT_FDCWD, path, controllers, sizeof controllers, &ignored);
    }
  if (cgroup_host_select (&rt->host, controllers, &rt->version, err) < 0
      || cgroup_prepare (&rt->host, rt->version, cgroup_parent, err) < 0)
    return -1;
  *out = steal_pointer (&rt);
  return 0;
}

static void
spare_remove (struct rt_runtime *rt, const char *name, struct spawner *sp)
{
  spawner_free (sp); /* out of the cgroup before it is removed */
  struct error ignored;
  char path[PATH_MAX + 64];
  snprintf (path, sizeof path, "%s/%s", rt->state_dir, name);
  remove_tree_at (AT_FDCWD, path, &ignored);
  cgroup_spare_remove (&rt->host, rt->version, rt->cgroup_parent, name);
}

static int
spares_count (struct rt_runtime *rt)
{
  pthread_mutex_lock (&rt->spares_lock);
  int n = rt->n_spares;
  pthread_mutex_unlock (&rt->spares_lock);
  return n;
}

int
rt_prepare (struct rt_runtime *rt, int n, struct error *err)
{
  if (n > MAX_SPARES)
    n = MAX_SPARES;
  while (spares_count (rt) < n)
    {
      char name[48];
      pthread_mutex_lock (&rt->spares_lock);
      unsigned nonce = 0;
      if (getrandom (&nonce, sizeof nonce, 0) < 0)
        nonce = (unsigned) getpid () << 16;
      snprintf (name, sizeof name, "slot-%08x-%u", nonce, rt->spare_seq++);
      pthread_mutex_unlock (&rt->spares_lock);
      char path[PATH_MAX + 64];
      int len = snprintf (path, sizeof path, "%s/%s", rt->state_dir, name);
      if (mkdir (path, 0711) < 0)
        return error_set (err, errno, "create spare state dir `%s`", path);
      const char *sub[] = { "rootfs", "upper", "work" };
      for (int i = 0; i < 3; i++)
        {
          snprintf (path + len, sizeof path - (size_t) len, "/%s", sub[i]);
          if (mkdir (path, i == 2 ? 0700 : 0755) < 0)
            {
              int e = errno;
              spare_remove (rt, name, NULL);
              return error_set (err, e, "create `%s`", path);
            }
        }
      if (cgroup_spare_make (&rt->host, rt->version, rt->cgroup_parent, name, err) < 0)
        {
          spare_remove (rt, name, NULL);
          return -1;
        }
      /* v1: park a thread in it now, while no start waits (spawner.c). */
      struct spawner *sp = NULL;
      struct error serr = { 0 };
      if (rt->version == RT_CGROUP_V1 && spawner_new (&sp, &serr) == 0
          && cgroup_spare_attach_thread (&rt->host, rt->cgroup_parent, name, spawner_tid (sp), &serr) < 0)
        {
          spawner_free (sp);
          sp = NULL;
        }
      pthread_mutex_lock (&rt->spares_lock);
      bool kept = rt->n_spares < MAX_SPARES;
      if (kept)
        {
          snprintf (rt->spares[rt->n_spares].name, sizeof rt->spares[0].name, "%s", name);
          rt->spares[rt->n_spares++].spawner = sp;
        }
      pthread_mutex_unlock (&rt->spares_lock);
      if (!kept)
        {
          spare_remove (rt, name, sp);
          break;
        }
    }
  return 0;
}

void
rt_runtime_free (struct rt_runtime *rt)
{
  for (int i = 0; i < rt->n_spares; i++)
    spare_remove (rt, rt->spares[i].name, rt->spares[i].spawner);
  pthread_mutex_destroy (&rt->spares_lock);
  free (rt);
}

enum rt_cgroup_version
rt_runtime_cgroup_version (const struct rt_runtime *rt)
{
  return rt->version;
}

const char *
rt_id (const struct rt_container *c)
{
  return c->id;
}

const char *
rt_name (const struct rt_container *c)
{
  return c->name;
}

pid_t
rt_pid (const struct rt_container *c)
{
  return c->pid;
}

int
rt_pidfd (const struct rt_container *c)
{
  return c->pidfd;
}

/* ---- the child ---------------------------------------------------------- */

struct child_report
{
  int code;
  char msg[ERROR_MSG_MAX];
};

static __attribute__ ((noreturn)) void
child_fail (const struct child_plan *plan, const struct error *err)
{
  struct child_report rep = { .code = err->code };
  memcpy (rep.msg, err->msg, sizeof rep.msg);
  if (write (plan->err_fd, &rep, sizeof rep) < 0)
    _exit (126);
  _exit (127);
}

static const char *
env_get (char *const *envp, const char *name)
{
  size_t l = strlen (name);
  for (; envp && *envp; envp++)
    if (strncmp (*envp, name, l) == 0 && (*envp)[l] == '=')
      return *envp + l + 1;
  return NULL;
}

/* execvpe() searches the caller's PATH; the workload's PATH is the one that
 * counts, so search it here. Returns only on failure. */
static void
exec_in_path (const struct rt_spec *spec, struct error *err)
{
  const char *cmd = spec->argv[0];
  if (strchr (cmd, '/'))
    {
      execve (cmd, spec->argv, spec->envp);
      error_set (err, errno, "exec `%s`", cmd);
      return;
    }
  const char *path = env_get (spec->envp, "PATH");
  if (path == NULL)
    path = DEFAULT_PATH;
  int saved = ENOENT;
  for (const char *p = path; *p;)
    {
      const char *end = strchrnul (p, ':');
      char full[PATH_MAX];
      int n = snprintf (full, sizeof full, "%.*s/%s", (int) (end - p), p, cmd);
      if (end > p && n > 0 && (size_t) n < sizeof full)
        {
          execve (full, spec->argv, spec->envp);
          if (errno != ENOENT && errno != ENOTDIR)
            saved = errno;
        }
      p = *end ? end + 1 : end;
    }
  if (saved == ENOENT)
    error_setx (err, ENOENT, "command `%s` not found in the root filesystem (PATH=%s)", cmd, path);
  else
    error_set (err, saved, "exec `%s`", cmd);
}

static int
child_set_stdio (const struct rt_spec *spec, struct error *err)
{
  /* Move the fds above 2 first, so that one may name another's slot. */
  int tmp[3];
  for (int i = 0; i < 3; i++)
    {
      int src = spec->stdio[i] >= 0 ? spec->stdio[i] : open ("/dev/null", O_RDWR | O_CLOEXEC);
      tmp[i] = fcntl (src, F_DUPFD_CLOEXEC, 3);
      if (tmp[i] < 0)
        return error_set (err, errno, "stdio fd %d", spec->stdio[i]);
    }
  for (int i = 0; i < 3; i++)
    if (dup2 (tmp[i], i) < 0)
      return error_set (err, errno, "dup2 stdio %d", i);
  /* Nothing of the caller's may reach the workload. */
  if (syscall (SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
    return error_set (err, errno, "close_range");
  return 0;
}

static __attribute__ ((noreturn)) void
child_main (const struct child_plan *plan)
{
  const struct rt_spec *spec = plan->spec;
  struct error err = { 0 };
  char c;

  if (plan->sync_fd >= 0 && read (plan->sync_fd, &c, 1) != 1)
    _exit (127); /* parent gone or failed: it reports the error */
  /* v1 has no CLONE_INTO_CGROUP: move ourselves in before anything else, so
   * that everything the workload does is charged there. */
  if (!plan->in_cgroup && cgroup_clone_fd (plan->cgroup) < 0
      && cgroup_attach (plan->cgroup, 0, &err) < 0)
    child_fail (plan, &err);
  /* In a new user namespace we still carry the host's ids, which map to
   * nothing there; become the namespace's root now that the maps exist. */
  if (spec->userns
      && (syscall (SYS_setresgid, 0, 0, 0) < 0 || syscall (SYS_setresuid, 0, 0, 0) < 0))
    {
      error_set (&err, errno, "become root of the user namespace");
      child_fail (plan, &err);
    }
  /* A caller's blocked or ignored signals must not leak into the workload. */
  sigset_t none;
  sigemptyset (&none);
  sigprocmask (SIG_SETMASK, &none, NULL);
  for (int sig = 1; sig < NSIG; sig++)
    if (sig != SIGKILL && sig != SIGSTOP)
      signal (sig, SIG_DFL);
  /* Unshared here, not in clone3: the namespace's root is the cgroup we
   * are in now (v2 CLONE_INTO_CGROUP, or the parent's v1 attach). */
  if (unshare (CLONE_NEWCGROUP) < 0)
    {
      error_set (&err, errno, "unshare cgroup namespace");
      child_fail (plan, &err);
    }
  if (sethostname (plan->hostname, strlen (plan->hostname)) < 0)
    {
      error_set (&err, errno, "sethostname `%s`", plan->hostname);
      child_fail (plan, &err);
    }
  if (spec->netns_fd > 2 && setns (spec->netns_fd, CLONE_NEWNET) < 0)
    {
      error_set (&err, errno, "join the prepared network namespace");
      child_fail (plan, &err);
    }
  if (spec->netns_fd <= 2 && child_loopback_up (&err) < 0)
    child_fail (plan, &err);
  if (child_setup_rootfs (plan, &err) < 0)
    child_fail (plan, &err);
  const char *cwd = spec->cwd ? spec->cwd : "/";
  if (chdir (cwd) < 0)
    {
      error_set (&err, errno, "working directory `%s`", cwd);
      child_fail (plan, &err);
    }
  for (size_t i = 0; i < spec->n_rlimits; i++)
    {
      struct rlimit rl = { spec->rlimits[i].soft, spec->rlimits[i].hard };
      if (setrlimit (spec->rlimits[i].resource, &rl) < 0)
        {
          error_set (&err, errno, "setrlimit %d", spec->rlimits[i].resource);
          child_fail (plan, &err);
        }
    }
  if (child_set_stdio (spec, &err) < 0 || child_set_identity (plan, &err) < 0)
    child_fail (plan, &err);
  umask (022);
  if (prctl (PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
    {
      error_set (&err, errno, "set no_new_privs");
      child_fail (plan, &err);
    }
  if (plan->prog.len > 0
      && syscall (SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &plan->prog) < 0)
    {
      error_set (&err, errno, "load seccomp filter");
      child_fail (plan, &err);
    }
  exec_in_path (spec, &err);
  child_fail (plan, &err);
}

/* ---- the parent --------------------------------------------------------- */

struct clone_job
{
  struct clone_args *args;
  const struct child_plan *plan;
  int close_in_child[2]; /* the parent's ends of the pipes */
};

/* The clone3 itself: the child's pid, or -errno. In the child it does not
 * return. Runs in the caller's thread or in a spare's spawner. */
static long
clone_child (void *arg)
{
  struct clone_job *j = arg;
  long pid = syscall (SYS_clone3, j->args, sizeof *j->args);
  if (pid < 0)
    return -errno;
  if (pid == 0)
    {
      for (int i = 0; i < 2; i++)
        if (j->close_in_child[i] >= 0)
          close (j->close_in_child[i]);
      child_main (j->plan);
    }
  return pid;
}

static int
validate_spec (const struct rt_spec *spec, struct error *err)
{
  if (spec->argv == NULL || spec->argv[0] == NULL || spec->argv[0][0] == '\0')
    return error_setx (err, EINVAL, "no command given");
  if ((spec->rootfs != NULL) == (spec->n_lowers > 0))
    return error_setx (err, EINVAL, "give either a rootfs directory or lower layers");
  struct stat st;
  if (spec->rootfs)
    {
      if (stat (spec->rootfs, &st) < 0)
        return error_set (err, errno, "rootfs `%s`", spec->rootfs);
      if (!S_ISDIR (st.st_mode))
        return error_setx (err, ENOTDIR, "rootfs `%s`: not a directory", spec->rootfs);
    }
  for (size_t i = 0; i < spec->n_lowers; i++)
    {
      const char *l = spec->lowers[i];
      if (stat (l, &st) < 0)
        return error_set (err, errno, "layer `%s`", l);
      if (!S_ISDIR (st.st_mode))
        return error_setx (err, ENOTDIR, "layer `%s`: not a directory", l);
      if (strpbrk (l, ":,\\"))
        return error_setx (err, EINVAL, "layer `%s`: ':', ',' and '\\' are not allowed in layer paths", l);
    }
  if (spec->upper)
    {
      if (stat (spec->upper, &st) < 0)
        return error_set (err, errno, "upper dir `%s`", spec->upper);
      if (!S_ISDIR (st.st_mode))
        return error_setx (err, ENOTDIR, "upper dir `%s`: not a directory", spec->upper);
      if (strpbrk (spec->upper, ":,\\"))
        return error_setx (err, EINVAL, "upper dir `%s`: ':', ',' and '\\' are not allowed", spec->upper);
    }
  for (int i = 0; i < 3; i++)
    if (spec->stdio[i] >= 0 && fcntl (spec->stdio[i], F_GETFD) < 0)
      return error_set (err, errno, "stdio fd %d", spec->stdio[i]);
  if (spec->netns_fd > 2 && spec->userns)
    return error_setx (err, EINVAL, "a prepared network namespace cannot be joined from a user namespace");
  return 0;
}

static int
validate_id (const char *id, struct error *err)
{
  size_t n = strlen (id);
  if (n == 0 || n > 64 || strspn (id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                      "0123456789_.-") != n || id[0] == '.')
    return error_setx (err, EINVAL, "container id `%s`: use 1-64 of [A-Za-z0-9_.-], not starting with '.'", id);
  return 0;
}

/* Overlay options "lowerdir=top:...:bottom,upperdir=U,workdir=W". The
 * workdir must be on the upper's filesystem: beside a caller's upper, or in
 * the state dir with an ephemeral upper. */
static char *
overlay_options (struct rt_container *c, const struct rt_spec *spec, bool from_spare,
                 struct error *err)
{
  char upper[PATH_MAX + 8];
  if (spec->upper)
    {
      char parent[PATH_MAX];
      snprintf (parent, sizeof parent, "%s", spec->upper);
      char *slash = strrchr (parent, '/');
      if (slash == parent)
        slash[1] = '\0';
      else if (slash)
        *slash = '\0';
      else
        strcpy (parent, ".");
      if (snprintf (c->work_path, sizeof c->work_path, "%s/.agentd-work-XXXXXX", parent)
          >= (int) sizeof c->work_path)
        {
          c->work_path[0] = '\0';
          error_setx (err, ENAMETOOLONG, "upper dir `%s`: path too long", spec->upper);
          return NULL;
        }
      if (mkdtemp (c->work_path) == NULL)
        {
          error_set (err, errno, "create overlay workdir beside `%s`", spec->upper);
          c->work_path[0] = '\0';
          return NULL;
        }
      snprintf (upper, sizeof upper, "%s", spec->upper);
    }
  else
    {
      snprintf (upper, sizeof upper, "%s/upper", c->state_path);
      char work[PATH_MAX + 8];
      snprintf (work, sizeof work, "%s/work", c->state_path);
      if (!from_spare && (mkdir (upper, 0755) < 0 || mkdir (work, 0700) < 0))
        {
          error_set (err, errno, "create ephemeral upper dir in `%s`", c->state_path);
          return NULL;
        }
      if (spec->userns
          && (chown (upper, spec->userns_host_id, spec->userns_host_id) < 0
              || chown (work, spec->userns_host_id, spec->userns_host_id) < 0))
        {
          error_set (err, errno, "chown `%s` to the user namespace's root", upper);
          return NULL;
        }
    }
  size_t cap = 64 + 2 * PATH_MAX;
  for (size_t i = 0; i < spec->n_lowers; i++)
    cap += strlen (spec->lowers[i]) + 1;
  char *opts = malloc (cap);
  if (opts == NULL)
    {
      error_set (err, ENOMEM, "overlay options");
      return NULL;
    }
  size_t off = snprintf (opts, cap, "lowerdir=");
  for (size_t i = 0; i < spec->n_lowers; i++)
    off += snprintf (opts + off, cap - off, "%s%s", i ? ":" : "", spec->lowers[i]);
  /* In a user namespace trusted.* xattrs are out of reach: user.* it is. */
  snprintf (opts + off, cap - off, ",upperdir=%s,workdir=%s%s%s", upper,
            spec->upper ? c->work_path : c->state_path, spec->upper ? "" : "/work",
            spec->userns ? ",userxattr" : "");
  if (strlen (opts) >= 4096) /* mount(2) data is one page */
    {
      free (opts);
      error_setx (err, E2BIG, "overlay of %zu layers: layer paths too long for one mount", spec->n_lowers);
      return NULL;
    }
  return opts;
}

static int
write_id_map (pid_t pid, const char *file, uint32_t host, uint32_t size, struct error *err)
{
  char path[64], line[64];
  snprintf (path, sizeof path, "/proc/%d/%s", (int) pid, file);
  int n = snprintf (line, sizeof line, "0 %u %u\n", host, size);
  if (write_file_at (AT_FDCWD, path, line, n, err) < 0)
    return error_prefix (err, "user namespace");
  return 0;
}

static void
container_free_dirs (struct rt_container *c)
{
  struct error ignored;
  if (c->state_path[0])
    remove_tree_at (AT_FDCWD, c->state_path, &ignored);
  if (c->work_path[0])
    remove_tree_at (AT_FDCWD, c->work_path, &ignored);
}

int
rt_start (struct rt_runtime *rt, const char *id, const struct rt_spec *spec,
          struct rt_container **out, struct error *err)
{
  if (validate_id (id, err) < 0 || validate_spec (spec, err) < 0)
    return -1;

  struct rt_container *c = calloc (1, sizeof *c);
  if (c == NULL)
    return error_set (err, ENOMEM, "allocate container");
  c->pidfd = -1;
  snprintf (c->id, sizeof c->id, "%s", id);
  /* The cgroup comes first: its mkdir is also the check that no running
   * container has this id. */
  struct cgroup_limits limits = { spec->memory_max, spec->cpu_millis, spec->pids_max };
  /* A spare fits an overlay start without a user namespace (whose dirs
   * would need other owners). */
  char spare[48] = "";
  struct spawner *spawner = NULL;
  pthread_mutex_lock (&rt->spares_lock);
  if (rt->n_spares > 0 && spec->n_lowers > 0 && !spec->userns)
    {
      rt->n_spares--;
      snprintf (spare, sizeof spare, "%s", rt->spares[rt->n_spares].name);
      spawner = rt->spares[rt->n_spares].spawner;
    }
  pthread_mutex_unlock (&rt->spares_lock);
  /* A spare keeps its name: renaming a v1 cgroup takes cgroup_mutex, which
   * a spawner's move (rt_prepare, in another thread) may hold for a whole
   * RCU grace period. */
  snprintf (c->name, sizeof c->name, "%s", spare[0] ? spare : id);
  if (cgroup_create (&rt->host, rt->version, rt->cgroup_parent, c->name, spare[0] != '\0', &limits,
                     &c->cgroup, err) < 0)
    {
      if (spare[0])
        spare_remove (rt, spare, spawner);
      free (c);
      if (err->code == EEXIST)
        return error_setx (err, EEXIST, "container `%s` already exists", id);
      return -1;
    }
  struct child_plan plan = {
    .spec = spec,
    .hostname = spec->hostname ? spec->hostname : id,
    .err_fd = -1,
    .sync_fd = -1,
  };
  cleanup_free char *overlay_opts = NULL;
  char target[PATH_MAX + 8];
  int pipe_err[2] = { -1, -1 }, pipe_sync[2] = { -1, -1 };
  int ret = -1;

  if (spec->n_lowers > 0)
    {
      /* Only an overlay needs a state dir: its mount point and maybe an
       * ephemeral upper. A plain rootfs is bind-mounted onto itself. */
      if (snprintf (c->state_path, sizeof c->state_path, "%s/%s", rt->state_dir, c->name)
          >= (int) sizeof c->state_path)
        {
          error_setx (err, ENAMETOOLONG, "state dir `%s/%s`: path too long", rt->state_dir, c->name);
          c->state_path[0] = '\0';
          goto fail;
        }
      if (!spare[0] && mkdir (c->state_path, 0711) < 0)
        {
          error_set (err, errno, "create state dir `%s`", c->state_path);
          c->state_path[0] = '\0';
          goto fail;
        }
      snprintf (target, sizeof target, "%s/rootfs", c->state_path);
      if (!spare[0] && mkdir (target, 0755) < 0)
        {
          error_set (err, errno, "create mount point `%s`", target);
          goto fail;
        }
      overlay_opts = overlay_options (c, spec, spare[0] != '\0', err);
      if (overlay_opts == NULL)
        goto fail;
      plan.target = target;
      plan.overlay_opts = overlay_opts;
    }
  else
    plan.target = spec->rootfs;

  if (spec->seccomp)
    {
      size_t n;
      plan.prog.filter = (struct sock_filter *) seccomp_bpf (spec->seccomp, &n);
      plan.prog.len = n;
    }
  plan.caps = caps_default_new (err);
  if (plan.caps == NULL)
    goto fail;

  if (pipe2 (pipe_err, O_CLOEXEC) < 0)
    {
      error_set (err, errno, "pipe");
      goto fail;
    }
  plan.cgroup = c->cgroup;
  if (spec->userns && pipe2 (pipe_sync, O_CLOEXEC) < 0)
    {
      error_set (err, errno, "pipe");
      goto fail;
    }
  plan.err_fd = pipe_err[1];
  plan.sync_fd = pipe_sync[0];

  struct clone_args args = {
    .flags = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_PIDFD
             | (spec->netns_fd > 2 ? 0 : CLONE_NEWNET) | (spec->userns ? CLONE_NEWUSER : 0),
    .pidfd = (uint64_t) (uintptr_t) &c->pidfd,
    .exit_signal = SIGCHLD,
  };
  if (cgroup_clone_fd (c->cgroup) >= 0)
    {
      args.flags |= CLONE_INTO_CGROUP;
      args.cgroup = cgroup_clone_fd (c->cgroup);
    }
  /* v1 with a spare's spawner: cloned from inside the cgroup already. */
  plan.in_cgroup = spawner != NULL;
  struct clone_job job = { &args, &plan, { pipe_err[0], pipe_sync[1] } };
  long cloned = spawner ? spawner_run (spawner, clone_child, &job) : clone_child (&job);
  spawner_free (spawner); /* its thread has ended: agentd is out of the cgroup */
  spawner = NULL;
  if (cloned < 0)
    {
      error_set (err, (int) -cloned, "clone3 into new namespaces");
      goto fail;
    }
  pid_t pid = (pid_t) cloned;
  c->pid = pid;
  close (pipe_err[1]);
  pipe_err[1] = -1;
  if (pipe_sync[0] >= 0)
    {
      close (pipe_sync[0]);
      pipe_sync[0] = -1;
    }

  int step = 0;
  if (spec->userns)
    step = write_id_map (pid, "uid_map", spec->userns_host_id, spec->userns_size, err) < 0
                   || write_id_map (pid, "gid_map", spec->userns_host_id, spec->userns_size, err) < 0
               ? -1
               : 0;
  if (step == 0 && pipe_sync[1] >= 0 && write (pipe_sync[1], "", 1) != 1)
    step = error_set (err, errno, "release the child");
  if (step < 0)
    {
      kill (pid, SIGKILL); /* reaped below, by rt_destroy */
      goto fail;
    }

  struct child_report rep;
  ssize_t n;
  do
    n = read (pipe_err[0], &rep, sizeof rep);
  while (n < 0 && errno == EINTR);
  if (n != 0)
    {
      if (n == (ssize_t) sizeof rep)
        {
          rep.msg[sizeof rep.msg - 1] = '\0';
          error_setx (err, rep.code, "%s", rep.msg);
        }
      else
        error_setx (err, EIO, "container `%s`: child died during set-up", id);
      goto fail;
    }
  ret = 0;
  *out = c;

fail:
  spawner_free (spawner);
  if (plan.caps)
    cap_free (plan.caps);
  for (int i = 0; i < 2; i++)
    {
      if (pipe_err[i] >= 0)
        close (pipe_err[i]);
      if (pipe_sync[i] >= 0)
        close (pipe_sync[i]);
    }
  if (ret < 0)
    {
      struct error ignored;
      rt_destroy (c, &ignored);
    }
  return ret;
}

struct reconcile_ctx
{
  struct rt_runtime *rt;
  bool (*keep) (void *ctx, const char *name);
  void *keep_ctx;
  struct rt_reconcile_stats *stats;
};

static void
reconcile_one (void *arg, const char *name, bool busy)
{
  struct reconcile_ctx *x = arg;
  struct rt_runtime *rt = x->rt;
  if (x->keep (x->keep_ctx, name))
    return;
  pthread_mutex_lock (&rt->spares_lock);
  bool ours = false;
  for (int i = 0; i < rt->n_spares && !ours; i++)
    ours = strcmp (rt->spares[i].name, name) == 0;
  pthread_mutex_unlock (&rt->spares_lock);
  if (ours)
    return;
  if (busy)
    {
      /* Processes no saved state knows: leave them, say so. */
      if (x->stats->n_busy < RT_RECONCILE_MAX)
        snprintf (x->stats->busy[x->stats->n_busy++], sizeof x->stats->busy[0], "%s", name);
      return;
    }
  spare_remove (rt, name, NULL); /* its state dir and cgroup dirs */
  x->stats->removed++;
}

int
rt_reconcile (struct rt_runtime *rt, bool (*keep) (void *ctx, const char *name), void *ctx,
              struct rt_reconcile_stats *stats, struct error *err)
{
  memset (stats, 0, sizeof *stats);
  struct reconcile_ctx x = { rt, keep, ctx, stats };
  return cgroup_list_children (&rt->host, rt->version, rt->cgroup_parent, reconcile_one, &x, err);
}

int
rt_start_time (pid_t pid, uint64_t *out, struct error *err)
{
  char path[64], buf[1024];
  snprintf (path, sizeof path, "/proc/%d/stat", (int) pid);
  if (read_file_at (AT_FDCWD, path, buf, sizeof buf, err) < 0)
    return -1;
  /* Field 22; the command (field 2) may hold spaces, so count from its ')'. */
  char *p = strrchr (buf, ')');
  for (int field = 2; p && field < 22; field++)
    p = strchr (p + 1, ' ');
  if (p == NULL || sscanf (p + 1, "%" SCNu64, out) != 1)
    return error_setx (err, EINVAL, "%s: unexpected format", path);
  return 0;
}

int
rt_adopt (struct rt_runtime *rt, const char *id, const char *name, pid_t pid, uint64_t start_time,
          struct rt_container **out, struct error *err)
{
  if (validate_id (id, err) < 0 || validate_id (name, err) < 0)
    return -1;
  cleanup_close int pidfd = syscall (SYS_pidfd_open, pid, 0);
  if (pidfd < 0)
    return error_set (err, errno, "container `%s`: process %d", id, (int) pid);
  uint64_t now_start;
  if (rt_start_time (pid, &now_start, err) < 0)
    return error_prefix (err, "container `%s`", id);
  if (now_start != start_time)
    return error_setx (err, ESRCH, "container `%s`: pid %d is another process now", id, (int) pid);
  struct rt_container *c = calloc (1, sizeof *c);
  if (c == NULL)
    return error_set (err, ENOMEM, "allocate container");
  snprintf (c->id, sizeof c->id, "%s", id);
  snprintf (c->name, sizeof c->name, "%s", name);
  c->pid = pid;
  c->adopted = true;
  if (cgroup_create (&rt->host, rt->version, rt->cgroup_parent, name, true, NULL, &c->cgroup, err) < 0)
    {
      free (c);
      return error_prefix (err, "container `%s`", id);
    }
  if (snprintf (c->state_path, sizeof c->state_path, "%s/%s", rt->state_dir, name)
          >= (int) sizeof c->state_path
      || access (c->state_path, F_OK) < 0)
    c->state_path[0] = '\0';
  c->pidfd = steal_fd (&pidfd);
  *out = c;
  return 0;
}

/* An adopted workload's end: its pidfd turns readable; the status is lost. */
static int
wait_adopted (struct rt_container *c, bool block, struct error *err)
{
  struct pollfd p = { c->pidfd, POLLIN, 0 };
  int n;
  do
    n = poll (&p, 1, block ? -1 : 0);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    return error_set (err, errno, "container `%s`: wait", c->id);
  if (n == 0)
    return 1;
  c->reaped = true;
  c->exit = (struct rt_exit){ .unknown = true };
  return 0;
}

int
rt_wait (struct rt_container *c, bool block, struct rt_exit *out, struct error *err)
{
  if (!c->reaped && c->adopted)
    {
      int r = wait_adopted (c, block, err);
      if (r != 0)
        return r;
    }
  if (!c->reaped)
    {
      siginfo_t si = { 0 };
      for (;;)
        {
          if (waitid (P_PIDFD, c->pidfd, &si, WEXITED | (block ? 0 : WNOHANG)) == 0)
            break;
          if (errno != EINTR)
            return error_set (err, errno, "container `%s`: wait", c->id);
        }
      if (si.si_pid == 0)
        return 1;
      c->reaped = true;
      c->exit = (struct rt_exit) { 0 };
      if (si.si_code == CLD_EXITED)
        c->exit.code = si.si_status;
      else
        c->exit.signal = si.si_status;
      uint64_t ooms = 0;
      struct error ignored;
      if (c->exit.signal == SIGKILL && cgroup_oom_kills (c->cgroup, &ooms, &ignored) == 0)
        c->exit.oom_killed = ooms > 0;
    }
  *out = c->exit;
  return 0;
}

int
rt_signal (struct rt_container *c, int sig, struct error *err)
{
  if (c->reaped)
    return error_setx (err, ESRCH, "container `%s` has exited", c->id);
  if (syscall (SYS_pidfd_send_signal, c->pidfd, sig, NULL, 0) < 0)
    return error_set (err, errno, "container `%s`: signal %d", c->id, sig);
  return 0;
}

int
rt_kill_all (struct rt_container *c, struct error *err)
{
  if (cgroup_kill_all (c->cgroup, err) < 0)
    return error_prefix (err, "container `%s`", c->id);
  return 0;
}

int
rt_usage (struct rt_container *c, struct rt_usage *out, struct error *err)
{
  if (cgroup_usage (c->cgroup, out, err) < 0)
    return error_prefix (err, "container `%s`", c->id);
  return 0;
}

uint64_t
rt_writable_bytes (struct rt_container *c)
{
  if (c->work_path[0])
    return 0; /* the caller's upper dir: the caller knows its size */
  char path[PATH_MAX + 8];
  snprintf (path, sizeof path, "%s/upper", c->state_path);
  return tree_bytes_at (AT_FDCWD, path);
}

void
rt_forget (struct rt_container *c)
{
  cgroup_forget (c->cgroup);
  if (c->pidfd >= 0)
    close (c->pidfd);
  free (c);
}

int
rt_destroy (struct rt_container *c, struct error *err)
{
  int ret = 0;
  if (c->pid > 0 && !c->reaped)
    {
      struct rt_exit ignored_exit;
      if (c->cgroup && rt_kill_all (c, err) < 0)
        ret = -1;
      /* The pid namespace dies with its init; SIGKILL it in case the cgroup
       * sweep could not. */
      syscall (SYS_pidfd_send_signal, c->pidfd, SIGKILL, NULL, 0);
      if (rt_wait (c, true, &ignored_exit, err) < 0)
        ret = -1;
    }
  if (c->cgroup && cgroup_destroy (c->cgroup, err) < 0)
    ret = -1;
  container_free_dirs (c);
  if (c->pidfd >= 0)
    close (c->pidfd);
  free (c);
  return ret;
}
