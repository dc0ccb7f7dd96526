/* Deployments: (project, environment, service) → a running version. A new
 * version starts beside the old, becomes current once healthy, and only
 * then is the old one drained and stopped; a failed new version leaves the
 * old one serving. Exits are handled by the restart policy. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../common/cleanup.h"
#include "../common/fsutil.h"
#include "../builder/registry.h"
#include "commands.h"
#include "daemon.h"

#define HEALTH_TIMEOUT_S 30
#define PROBE_INTERVAL_S 0.002
#define DRAIN_TIMEOUT_S 10.0
#define KILL_GRACE_S 5.0
#define BACKOFF_MAX_S 10.0

const char *
restart_policy_name (enum restart_policy p)
{
  return p == RESTART_NEVER ? "never" : p == RESTART_ALWAYS ? "always" : "on-failure";
}

static int
parse_restart (const char *s, enum restart_policy *out, struct error *err)
{
  if (s == NULL || strcmp (s, "on-failure") == 0)
    *out = RESTART_ON_FAILURE;
  else if (strcmp (s, "never") == 0 || strcmp (s, "no") == 0)
    *out = RESTART_NEVER;
  else if (strcmp (s, "always") == 0)
    *out = RESTART_ALWAYS;
  else
    return error_setx (err, EINVAL, "restart `%s`: use never, on-failure or always", s);
  return 0;
}

/* Names become parts of cgroup, file and interface names: keep them tame. */
static int
check_name (const char *what, const char *s, struct error *err)
{
  size_t n = s ? strlen (s) : 0;
  if (n == 0 || n > 15 || strspn (s, "abcdefghijklmnopqrstuvwxyz0123456789-_") != n || s[0] == '-')
    return error_setx (err, EINVAL, "%s `%s`: use 1-15 of [a-z0-9-_], not starting with '-'", what,
                       s ? s : "");
  return 0;
}

void
deployment_log (struct deployment *dep, enum log_stream s, const char *fmt, ...)
{
  char text[LOG_LINE_MAX];
  va_list ap;
  va_start (ap, fmt);
  int n = vsnprintf (text, sizeof text, fmt, ap);
  va_end (ap);
  if (n < 0)
    return;
  size_t len = (size_t) n < sizeof text ? (size_t) n : sizeof text - 1;
  struct error ignored;
  uint64_t ts = log_now_us ();
  log_file_append (&dep->log, ts, s, text, len, &ignored);
  client_log_line (dep->d, dep, ts, s, text, len);
}

/* ---- environments -------------------------------------------------------- */

struct environment *
environment_get (struct daemon *d, const char *project, const char *env, bool create)
{
  for (struct environment *e = d->envs; e; e = e->link)
    if (strcmp (e->project, project) == 0 && strcmp (e->env, env) == 0)
      return e;
  if (!create)
    return NULL;
  struct environment *e = calloc (1, sizeof *e);
  if (e == NULL)
    return NULL;
  e->project = strdup (project);
  e->env = strdup (env);
  e->link = d->envs;
  d->envs = e;
  return e;
}

void
environment_drop_if_empty (struct daemon *d, struct environment *e)
{
  for (struct deployment *dep = d->deployments; dep; dep = dep->link)
    if (strcmp (dep->project, e->project) == 0 && strcmp (dep->env, e->env) == 0)
      return;
  for (struct environment **p = &d->envs; *p; p = &(*p)->link)
    if (*p == e)
      {
        *p = e->link;
        free (e->project);
        free (e->env);
        free (e);
        return;
      }
}

/* ---- addresses and the namespace pool ------------------------------------ */

/* Next fit: an address is reused as late as possible, so that peers'
 * caches of its old holder have long expired. */
static uint32_t
addr_take (struct daemon *d)
{
  uint32_t first = net_first_host (&d->net), last = net_last_host (&d->net);
  uint32_t span = last - first + 1;
  for (uint32_t i = 0; i < span; i++)
    {
      uint32_t a = first + (d->addr_cursor + i) % span;
      if (!d->addr_used[a - d->net.subnet])
        {
          d->addr_used[a - d->net.subnet] = 1;
          d->addr_cursor = a - first + 1;
          return a;
        }
    }
  return 0;
}

void
net_addr_release (struct daemon *d, uint32_t a)
{
  if (a >= d->net.subnet && a <= net_last_host (&d->net))
    d->addr_used[a - d->net.subnet] = 0;
}

/* Keep the pool of namespaces with their veth and address topped up, by
 * the preparer thread: called after replies, off the request path. */
void
net_pool_fill (struct daemon *d)
{
  if (!d->net_enabled || monotonic_seconds () < d->pool_retry_at)
    return;
  while (d->pool_n + d->pool_pending < NET_POOL_SIZE)
    {
      uint32_t a = addr_take (d);
      if (a == 0)
        return;
      preparer_request (d, a);
      if (!d->prep_running)
        {
          net_addr_release (d, a);
          return;
        }
    }
}

/* A slot from the pool; when it ran dry, one made now (the start pays). */
static int
net_slot_take (struct daemon *d, struct net_slot *out, struct error *err)
{
  if (d->pool_n > 0)
    {
      *out = d->pool[--d->pool_n];
      return 0;
    }
  uint32_t a = addr_take (d);
  if (a == 0)
    return error_setx (err, EADDRNOTAVAIL, "no address left in the subnet");
  if (net_slot_prepare (&d->net, a, out, err) < 0)
    {
      net_addr_release (d, a);
      return -1;
    }
  return 0;
}

static void
net_slot_free (struct daemon *d, struct net_slot *s)
{
  if (s->addr)
    net_addr_release (d, s->addr);
  net_slot_release (s);
  s->addr = 0;
}

/* ---- instances ------------------------------------------------------------ */

static void instance_exited (struct daemon *d, struct instance *in);

static void
instance_on_pidfd (struct loop_handler *h, uint32_t events)
{
  (void) events;
  struct instance *in = container_of (h, struct instance, pid_h);
  instance_exited (in->dep->d, in);
}

static void
log_line_cb (void *ctx, enum log_stream s, const char *text, size_t len)
{
  struct deployment *dep = ctx;
  struct error ignored;
  uint64_t ts = log_now_us ();
  log_file_append (&dep->log, ts, s, text, len, &ignored);
  client_log_line (dep->d, dep, ts, s, text, len);
}

static void
instance_pipe_close (struct daemon *d, struct log_pipe *p, bool unlink_fifo)
{
  if (p->fd >= 0)
    loop_del (&d->loop, p->fd);
  log_pipe_close (p, unlink_fifo);
}

static void
on_stdout (struct loop_handler *h, uint32_t events)
{
  (void) events;
  struct instance *in = container_of (h, struct instance, out_h);
  log_pipe_drain (&in->out, log_line_cb, in->dep);
}

static void
on_stderr (struct loop_handler *h, uint32_t events)
{
  (void) events;
  struct instance *in = container_of (h, struct instance, err_h);
  log_pipe_drain (&in->err, log_line_cb, in->dep);
}

static int
instance_pipes_open (struct daemon *d, struct instance *in, int *wfd_out, int *wfd_err,
                     struct error *err)
{
  char path[600];
  snprintf (path, sizeof path, "%s/%s.out", d->fifo_dir, in->id);
  if (log_pipe_open (&in->out, path, LOG_STDOUT, wfd_out, err) < 0)
    return -1;
  snprintf (path, sizeof path, "%s/%s.err", d->fifo_dir, in->id);
  if (log_pipe_open (&in->err, path, LOG_STDERR, wfd_err, err) < 0)
    return -1;
  in->out_h.fn = on_stdout;
  in->err_h.fn = on_stderr;
  if (loop_add (&d->loop, in->out.fd, EPOLLIN, &in->out_h, err) < 0
      || loop_add (&d->loop, in->err.fd, EPOLLIN, &in->err_h, err) < 0)
    return -1;
  return 0;
}

/* id NULL: a new one, <deployment>-<version>-<random>, so that a cgroup
 * left by an earlier agentd on the same root never collides. */
static struct instance *
instance_new (struct deployment *dep, uint64_t version, const char *id)
{
  struct instance *in = calloc (1, sizeof *in);
  if (in == NULL)
    return NULL;
  in->dep = dep;
  in->version = version;
  unsigned short nonce = 0;
  if (getrandom (&nonce, sizeof nonce, 0) < 0)
    nonce = (unsigned short) (monotonic_seconds () * 1e6);
  if (id)
    snprintf (in->id, sizeof in->id, "%s", id);
  else
    snprintf (in->id, sizeof in->id, "%s-%llu-%04x", dep->id, (unsigned long long) version,
              nonce);
  in->probe_fd = -1;
  in->net_fd[0] = in->net_fd[1] = -1;
  in->out.fd = in->err.fd = -1;
  in->net.netns_fd = -1;
  return in;
}

static void
instance_free (void *p)
{
  free (p);
}

/* Tear down what the instance holds (after its exit, or on a failed start). */
/* How many new versions wait for their health check: while any does, the
 * loop wakes every millisecond to probe (serve.c). */
static void
set_probing (struct daemon *d, struct instance *in, bool on)
{
  if (in->probing != on)
    d->probing += on ? 1 : -1;
  in->probing = on;
}

static void
instance_release (struct daemon *d, struct instance *in)
{
  set_probing (d, in, false);
  if (in->c)
    {
      meter_final (d, in);
      loop_del (&d->loop, rt_pidfd (in->c));
      struct error err = { 0 };
      if (rt_destroy (in->c, &err) < 0)
        deployment_log (in->dep, LOG_AGENTD, "teardown of %s: %s", in->id, err.msg);
      in->c = NULL;
    }
  if (in->out.fd >= 0)
    log_pipe_drain (&in->out, log_line_cb, in->dep);
  if (in->err.fd >= 0)
    log_pipe_drain (&in->err, log_line_cb, in->dep);
  instance_pipe_close (d, &in->out, true);
  instance_pipe_close (d, &in->err, true);
  if (in->probe_fd >= 0)
    {
      loop_del (&d->loop, in->probe_fd);
      close (in->probe_fd);
      in->probe_fd = -1;
    }
  meter_forget (in);
  net_slot_free (d, &in->net);
  forward_forget_instance (d, in);
  in->state = INST_EXITED;
}

/* An image's layers and config, resolved once and kept while the store's
 * index.json is unchanged (a resolve reads and parses three documents). */
static const struct image_rootfs *
image_resolve (struct daemon *d, const char *ref, struct error *err)
{
  char index[600];
  snprintf (index, sizeof index, "%s/index.json", d->root);
  struct stat st;
  if (stat (index, &st) < 0)
    {
      error_setx (err, ENOENT, "image `%s` is not in the store `%s`", ref, d->root);
      return NULL;
    }
  struct image_cache *slot = &d->images[0];
  for (size_t i = 0; i < IMAGE_CACHE_SIZE; i++)
    {
      struct image_cache *e = &d->images[i];
      if (e->ref && strcmp (e->ref, ref) == 0 && e->mtime.tv_sec == st.st_mtim.tv_sec
          && e->mtime.tv_nsec == st.st_mtim.tv_nsec && e->ino == st.st_ino)
        {
          e->used = ++d->images_clock;
          return &e->img;
        }
      if (e->used < slot->used)
        slot = e;
    }
  struct store *s = NULL;
  struct image_rootfs img = { 0 };
  if (store_open (d->root, &s, err) < 0)
    return NULL;
  int r = image_rootfs (s, ref, &img, err);
  store_close (s);
  if (r < 0)
    return NULL;
  image_rootfs_clear (&slot->img);
  free (slot->ref);
  slot->ref = strdup (ref);
  slot->img = img;
  slot->mtime = st.st_mtim;
  slot->ino = st.st_ino;
  slot->used = ++d->images_clock;
  return &slot->img;
}

void
image_cache_clear (struct daemon *d)
{
  for (size_t i = 0; i < IMAGE_CACHE_SIZE; i++)
    {
      image_rootfs_clear (&d->images[i].img);
      free (d->images[i].ref);
      d->images[i].ref = NULL;
    }
}

static int
instance_start (struct daemon *d, struct instance *in, const struct dspec *sp, struct error *err)
{
  cleanup_free char **argv = NULL;
  cleanup_free char **envp = NULL;
  int wfd_out = -1, wfd_err = -1;
  int ret = -1;

  const struct image_rootfs *img = image_resolve (d, sp->image, err);
  if (img == NULL)
    return -1;
  const struct image_config *c = &img->config;
  /* The command: Entrypoint, then the deploy's argv or the image's Cmd. */
  size_t ne = 0, nc = 0, nenv = 0, ngiven = 0;
  while (c->entrypoint && c->entrypoint[ne])
    ne++;
  char **tail = sp->argv && sp->argv[0] ? sp->argv : c->cmd;
  while (tail && tail[nc])
    nc++;
  if (ne + nc == 0)
    {
      error_setx (err, EINVAL, "image `%s` has no Entrypoint or Cmd: give a command", sp->image);
      goto out;
    }
  argv = calloc (ne + nc + 1, sizeof *argv);
  while (c->env && c->env[nenv])
    nenv++;
  while (sp->envv && sp->envv[ngiven])
    ngiven++;
  envp = calloc (nenv + ngiven + 3, sizeof *envp);
  if (argv == NULL || envp == NULL)
    {
      error_set (err, ENOMEM, "command line");
      goto out;
    }
  if (ne)
    memcpy (argv, c->entrypoint, ne * sizeof *argv);
  if (nc)
    memcpy (argv + ne, tail, nc * sizeof *argv);
  /* The image's variables, then the deploy's (which win). */
  size_t n = 0;
  for (size_t i = 0; i < nenv + ngiven; i++)
    {
      char *kv = i < nenv ? c->env[i] : sp->envv[i - nenv];
      char *eq = strchr (kv, '=');
      if (eq == NULL)
        continue;
      size_t k = 0;
      while (k < n && !(strncmp (envp[k], kv, (size_t) (eq - kv + 1)) == 0))
        k++;
      envp[k] = kv;
      if (k == n)
        n++;
    }
  static char path_env[] = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  bool has_path = false;
  for (size_t i = 0; i < n; i++)
    has_path |= strncmp (envp[i], "PATH=", 5) == 0;
  if (!has_path)
    envp[n++] = path_env;

  struct rt_spec spec = {
    .lowers = (const char *const *) img->lowers,
    .n_lowers = img->n_lowers,
    .argv = argv,
    .envp = envp,
    .cwd = c->workdir,
    .memory_max = (int64_t) sp->memory,
    .cpu_millis = (int64_t) sp->cpu_millis,
    .pids_max = (int64_t) sp->pids,
    .seccomp = d->seccomp,
    .hostname = in->dep->service,
  };
  if (c->user && image_lookup_user (img, c->user, &spec.uid, &spec.gid, err) < 0)
    goto out;
  if (d->net_enabled)
    {
      if (net_slot_take (d, &in->net, err) < 0)
        goto out;
      spec.netns_fd = in->net.netns_fd;
    }
  if (instance_pipes_open (d, in, &wfd_out, &wfd_err, err) < 0)
    goto out;
  spec.stdio[0] = -1;
  spec.stdio[1] = wfd_out;
  spec.stdio[2] = wfd_err;
  if (rt_start (d->rt, in->id, &spec, &in->c, err) < 0)
    goto out;
  in->pid = rt_pid (in->c);
  snprintf (in->rt_name, sizeof in->rt_name, "%s", rt_name (in->c));
  if (rt_start_time (in->pid, &in->start_time, err) < 0)
    in->start_time = 0;
  in->pid_h.fn = instance_on_pidfd;
  if (loop_add (&d->loop, rt_pidfd (in->c), EPOLLIN, &in->pid_h, err) < 0)
    goto out;
  /* The namespace fd was only needed to join it. */
  close (in->net.netns_fd);
  in->net.netns_fd = -1;
  in->started_mono = monotonic_seconds ();
  d->started_since_prepare = true;
  in->port = sp->port;
  in->state = INST_STARTING;
  ret = 0;
out:
  if (wfd_out >= 0)
    close (wfd_out);
  if (wfd_err >= 0)
    close (wfd_err);
  if (ret < 0)
    instance_release (d, in);
  return ret;
}

/* ---- health and switching ------------------------------------------------- */

static void reply_result (struct daemon *d, struct deployment *dep, struct instance *in,
                          const char *status);

static void
drain (struct daemon *d, struct deployment *dep, struct instance *old)
{
  (void) d;
  old->state = INST_DRAINING;
  old->drain_deadline = monotonic_seconds () + DRAIN_TIMEOUT_S;
  for (size_t i = 0; i < sizeof dep->draining / sizeof dep->draining[0]; i++)
    if (dep->draining[i] == NULL)
      {
        dep->draining[i] = old;
        return;
      }
  /* No slot: stop it now. */
  struct error ignored;
  rt_signal (old->c, SIGTERM, &ignored);
  old->term_sent = true;
  old->kill_at = monotonic_seconds () + KILL_GRACE_S;
}

static void
instance_healthy (struct daemon *d, struct instance *in)
{
  struct deployment *dep = in->dep;
  set_probing (d, in, false);
  in->state = INST_RUNNING;
  if (dep->has_next_spec)
    {
      dspec_clear (&dep->spec);
      dep->spec = dep->next_spec;
      memset (&dep->next_spec, 0, sizeof dep->next_spec);
      dep->has_next_spec = false;
    }
  struct instance *old = dep->current;
  dep->current = in;
  dep->next = NULL;
  dep->started_at = (uint64_t) time (NULL);
  dep->failures_in_row = 0;
  if (old && old->state != INST_EXITED)
    drain (d, dep, old);
  else if (old)
    daemon_defer_free (d, instance_free, old);
  deployment_log (dep, LOG_AGENTD, "version %llu (%s) is %s, pid %d",
                  (unsigned long long) in->version, in->id,
                  in->port ? "healthy" : "running", (int) in->pid);
  d->dirty = true;
  reply_result (d, dep, in, "running");
}

static void probe_start (struct daemon *d, struct instance *in);

static void
probe_done (struct loop_handler *h, uint32_t events)
{
  struct instance *in = container_of (h, struct instance, probe_h);
  struct daemon *d = in->dep->d;
  int soerr = 0;
  socklen_t sl = sizeof soerr;
  getsockopt (in->probe_fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
  loop_del (&d->loop, in->probe_fd);
  close (in->probe_fd);
  in->probe_fd = -1;
  if (soerr == 0 && (events & (EPOLLERR | EPOLLHUP)) == 0)
    instance_healthy (d, in);
  else
    in->next_probe = monotonic_seconds () + PROBE_INTERVAL_S;
}

/* A non-blocking connect to the workload's port; its completion is health. */
static void
probe_start (struct daemon *d, struct instance *in)
{
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons (in->port),
                            .sin_addr.s_addr = htonl (in->net.addr) };
  int fd = socket (AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return;
  int r = connect (fd, (struct sockaddr *) &sa, sizeof sa);
  if (r == 0)
    {
      close (fd);
      instance_healthy (d, in);
      return;
    }
  if (errno != EINPROGRESS)
    {
      close (fd);
      in->next_probe = monotonic_seconds () + PROBE_INTERVAL_S;
      return;
    }
  in->probe_fd = fd;
  in->probe_h.fn = probe_done;
  struct error ignored;
  if (loop_add (&d->loop, fd, EPOLLOUT, &in->probe_h, &ignored) < 0)
    {
      close (fd);
      in->probe_fd = -1;
    }
}

static void
deploy_failed (struct daemon *d, struct deployment *dep, struct instance *in, const char *why)
{
  d->dirty = true;
  dspec_clear (&dep->next_spec);
  dep->has_next_spec = false;
  deployment_log (dep, LOG_AGENTD, "version %llu failed: %s%s",
                  (unsigned long long) in->version, why,
                  dep->current ? "; the previous version keeps serving" : "");
  if (dep->waiter)
    {
      client_error (dep->waiter->client, dep->waiter->request_id, PROTO_E_FAILED,
                    "deploy %s version %llu failed: %s%s", dep->id,
                    (unsigned long long) in->version, why,
                    dep->current ? " (the previous version keeps serving)" : "");
      free (dep->waiter);
      dep->waiter = NULL;
    }
  dep->next = NULL;
}

/* ---- exits and restarts --------------------------------------------------- */

static void
describe_exit (const struct rt_exit *ex, char *out, size_t cap)
{
  if (ex->unknown)
    snprintf (out, cap, "exited while agentd was away (status unknown)");
  else if (ex->oom_killed)
    snprintf (out, cap, "killed by the OOM killer (signal %d)", ex->signal);
  else if (ex->signal)
    snprintf (out, cap, "killed by signal %d (%s)", ex->signal, strsignal (ex->signal));
  else
    snprintf (out, cap, "exited with status %d", ex->code);
}

static void
schedule_restart (struct daemon *d, struct deployment *dep, bool failed)
{
  enum restart_policy p = dep->spec.restart;
  if (p == RESTART_NEVER || (p == RESTART_ON_FAILURE && !failed))
    return;
  double backoff = 0.1;
  for (uint64_t i = 0; i < dep->failures_in_row && backoff < BACKOFF_MAX_S; i++)
    backoff *= 2;
  if (backoff > BACKOFF_MAX_S)
    backoff = BACKOFF_MAX_S;
  dep->restart_at = monotonic_seconds () + backoff;
  deployment_log (dep, LOG_AGENTD, "restarting in %.1f s (policy %s)", backoff,
                  restart_policy_name (p));
  (void) d;
}

static void
instance_exited (struct daemon *d, struct instance *in)
{
  struct deployment *dep = in->dep;
  struct rt_exit ex = { 0 };
  struct error err = { 0 };
  if (in->c && rt_wait (in->c, false, &ex, &err) != 0)
    return; /* not yet (or an error: the next event tells) */
  char why[96];
  describe_exit (&ex, why, sizeof why);
  bool failed = ex.unknown || ex.signal || ex.code != 0;
  instance_release (d, in);

  if (in == dep->next)
    {
      deploy_failed (d, dep, in, why);
      daemon_defer_free (d, instance_free, in);
      if (dep->current == NULL)
        {
          snprintf (dep->last_exit, sizeof dep->last_exit, "%s", why);
          dep->failures_in_row++;
        }
      d->dirty = true;
      return;
    }
  if (in == dep->current)
    {
      snprintf (dep->last_exit, sizeof dep->last_exit, "%s", why);
      deployment_log (dep, LOG_AGENTD, "version %llu %s", (unsigned long long) in->version, why);
      if (failed)
        dep->failures_in_row++;
      /* A version that ran a while earns a fresh backoff. */
      if (monotonic_seconds () - in->started_mono > 10)
        dep->failures_in_row = failed ? 1 : 0;
      schedule_restart (d, dep, failed);
      d->dirty = true;
      return; /* current stays, EXITED, until the restart replaces it */
    }
  for (size_t i = 0; i < sizeof dep->draining / sizeof dep->draining[0]; i++)
    if (dep->draining[i] == in)
      dep->draining[i] = NULL;
  daemon_defer_free (d, instance_free, in);
}

static int
start_version (struct daemon *d, struct deployment *dep, const struct dspec *sp, struct error *err)
{
  struct instance *in = instance_new (dep, ++dep->next_version, NULL);
  if (in == NULL)
    return error_set (err, ENOMEM, "instance");
  double t0 = monotonic_seconds ();
  if (instance_start (d, in, sp, err) < 0)
    {
      free (in);
      return -1;
    }
  dep->next = in;
  if (dep->waiter)
    {
      dep->waiter->start_us = (uint64_t) ((monotonic_seconds () - t0) * 1e6);
      dep->waiter->exec_mono_ns = (uint64_t) (monotonic_seconds () * 1e9);
    }
  in->health_deadline = in->started_mono + (double) sp->health_timeout_s;
  if (sp->port == 0 || !d->net_enabled)
    instance_healthy (d, in);
  else
    {
      set_probing (d, in, true);
      probe_start (d, in);
    }
  return 0;
}

void
deployment_restart_now (struct daemon *d, struct deployment *dep)
{
  dep->restart_at = 0;
  struct error err = { 0 };
  if (dep->next || dep->spec.image == NULL)
    return;
  if (start_version (d, dep, &dep->spec, &err) < 0)
    {
      dep->failures_in_row++;
      snprintf (dep->last_exit, sizeof dep->last_exit, "restart failed");
      deployment_log (dep, LOG_AGENTD, "restart failed: %s", err.msg);
      schedule_restart (d, dep, true);
      return;
    }
  dep->restarts++;
  d->dirty = true;
}

/* ---- replies --------------------------------------------------------------- */

static void
reply_result (struct daemon *d, struct deployment *dep, struct instance *in, const char *status)
{
  (void) d;
  struct pending *w = dep->waiter;
  if (w == NULL)
    return;
  char addr[16] = "", address[32] = "", url[64] = "";
  if (in->net.addr)
    {
      net_addr_str (in->net.addr, addr);
      if (in->port)
        snprintf (address, sizeof address, "%s:%u", addr, in->port);
      else
        snprintf (address, sizeof address, "%s", addr);
    }
  if (dep->host_port)
    snprintf (url, sizeof url, "http://127.0.0.1:%u", dep->host_port);
  double now = monotonic_seconds ();
  struct msg_deploy_result r = {
    .id = dep->id,
    .version = in->version,
    .status = (char *) status,
    .address = address,
    .url = url,
    .pull_us = w->pull_us,
    .start_us = w->start_us,
    .ready_us = (uint64_t) ((now - w->t_request) * 1e6) - w->pull_us,
    .total_us = (uint64_t) ((now - w->t_request) * 1e6),
    .exec_mono_ns = w->exec_mono_ns,
  };
  client_reply (w->client, MSG_DEPLOY_RESULT, PROTO_F_REPLY, w->request_id, &r);
  free (w);
  dep->waiter = NULL;
}

static void
progress (struct deployment *dep, const char *phase, const char *msg, uint64_t done,
          uint64_t total)
{
  if (dep->waiter == NULL)
    return;
  struct msg_progress p = { (char *) phase, (char *) msg, done, total };
  client_reply (dep->waiter->client, MSG_PROGRESS, PROTO_F_REPLY | PROTO_F_MORE,
                dep->waiter->request_id, &p);
}

/* ---- pulls in worker threads ------------------------------------------------ */

enum worker_msg_kind
{
  WORKER_PROGRESS,
  WORKER_DONE,
};

struct pull_job
{
  char dep_id[72];
  char *root, *image;
  bool insecure;
  int fd; /* the daemon's worker pipe */
  double last_progress;
  int ret;
  struct error err;
  double t0;
};

struct worker_msg
{
  enum worker_msg_kind kind;
  struct pull_job *job;
  struct registry_progress p;
};

static void
pull_progress (void *ctx, const struct registry_progress *p)
{
  struct pull_job *j = ctx;
  double now = monotonic_seconds ();
  if (now - j->last_progress < 0.1 && p->blobs_done < p->blobs_total)
    return;
  j->last_progress = now;
  struct worker_msg m = { WORKER_PROGRESS, j, *p };
  if (write (j->fd, &m, sizeof m) < 0)
    return; /* progress is best effort */
}

static void *
pull_thread (void *arg)
{
  struct pull_job *j = arg;
  struct store *s = NULL;
  struct registry_opts opts = { .timeout_s = 30, .insecure = j->insecure,
                                .progress = pull_progress, .progress_ctx = j };
  struct image_stats st;
  j->ret = store_open (j->root, &s, &j->err);
  if (j->ret == 0)
    j->ret = image_pull (s, j->image, &opts, &agentd_layer_limits, &st, &j->err);
  store_close (s);
  struct worker_msg m = { WORKER_DONE, j, { 0 } };
  while (write (j->fd, &m, sizeof m) < 0 && errno == EINTR)
    ;
  return NULL;
}

static struct deployment *
deployment_by_id (struct daemon *d, const char *id)
{
  for (struct deployment *dep = d->deployments; dep; dep = dep->link)
    if (strcmp (dep->id, id) == 0)
      return dep;
  return NULL;
}

void
worker_results (struct loop_handler *h, uint32_t events)
{
  (void) events;
  struct daemon *d = container_of (h, struct daemon, worker_h);
  struct worker_msg m;
  while (read (d->worker_fd[0], &m, sizeof m) == (ssize_t) sizeof m)
    {
      struct pull_job *j = m.job;
      struct deployment *dep = deployment_by_id (d, j->dep_id);
      if (m.kind == WORKER_PROGRESS)
        {
          if (dep)
            {
              char msg[128];
              snprintf (msg, sizeof msg, "pulling %s: %zu/%zu layers, %.1f/%.1f MB", j->image,
                        m.p.blobs_done, m.p.blobs_total, m.p.bytes_done / 1e6,
                        m.p.bytes_total / 1e6);
              progress (dep, "pull", msg, m.p.bytes_done, m.p.bytes_total);
            }
          continue;
        }
      if (dep)
        {
          dep->pulling = false;
          if (dep->waiter)
            dep->waiter->pull_us = (uint64_t) ((monotonic_seconds () - j->t0) * 1e6);
          struct error err = { 0 };
          if (j->ret < 0)
            {
              dspec_clear (&dep->next_spec);
              dep->has_next_spec = false;
              if (dep->waiter)
                client_error (dep->waiter->client, dep->waiter->request_id, PROTO_E_FAILED,
                              "pull %s: %s", j->image, j->err.msg);
              free (dep->waiter);
              dep->waiter = NULL;
              if (dep->current == NULL)
                deployment_remove (d, dep, &err);
            }
          else
            {
              progress (dep, "start", "image pulled; starting", 0, 0);
              if (start_version (d, dep, &dep->next_spec, &err) < 0)
                {
                  dspec_clear (&dep->next_spec);
                  dep->has_next_spec = false;
                  if (dep->waiter)
                    client_error (dep->waiter->client, dep->waiter->request_id, PROTO_E_FAILED,
                                  "start %s: %s", dep->id, err.msg);
                  free (dep->waiter);
                  dep->waiter = NULL;
                  if (dep->current == NULL)
                    deployment_remove (d, dep, &err);
                }
            }
        }
      free (j->root);
      free (j->image);
      free (j);
    }
}

static int
pull_start (struct daemon *d, struct deployment *dep, struct error *err)
{
  struct pull_job *j = calloc (1, sizeof *j);
  if (j == NULL)
    return error_set (err, ENOMEM, "pull job");
  snprintf (j->dep_id, sizeof j->dep_id, "%s", dep->id);
  j->root = strdup (d->root);
  j->image = strdup (dep->next_spec.image);
  j->insecure = dep->next_spec.insecure_registry;
  j->fd = d->worker_fd[1];
  j->t0 = monotonic_seconds ();
  pthread_t t;
  pthread_attr_t attr;
  pthread_attr_init (&attr);
  pthread_attr_setdetachstate (&attr, PTHREAD_CREATE_DETACHED);
  int e = pthread_create (&t, &attr, pull_thread, j);
  pthread_attr_destroy (&attr);
  if (e != 0)
    {
      free (j->root);
      free (j->image);
      free (j);
      return error_set (err, e, "start a pull thread");
    }
  dep->pulling = true;
  progress (dep, "pull", "image not in the store: pulling", 0, 0);
  return 0;
}

/* ---- the DEPLOY request ----------------------------------------------------- */

struct deployment *
deployment_find (struct daemon *d, const char *project, const char *env, const char *service)
{
  for (struct deployment *dep = d->deployments; dep; dep = dep->link)
    if (strcmp (dep->project, project) == 0 && strcmp (dep->env, env) == 0
        && strcmp (dep->service, service) == 0)
      return dep;
  return NULL;
}

static void
strv_free (char **v)
{
  for (char **p = v; p && *p; p++)
    free (*p);
  free (v);
}

void
dspec_clear (struct dspec *sp)
{
  free (sp->image);
  strv_free (sp->argv);
  strv_free (sp->envv);
  memset (sp, 0, sizeof *sp);
}

static void deployment_free (void *p);

/* agentd stops: forget every deployment, leaving the workloads running. */
void
deployments_free_all (struct daemon *d)
{
  while (d->deployments)
    {
      struct deployment *dep = d->deployments;
      d->deployments = dep->link;
      struct instance *all[2 + sizeof dep->draining / sizeof dep->draining[0]] = { dep->current, dep->next };
      memcpy (all + 2, dep->draining, sizeof dep->draining);
      for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (all[i])
          {
            if (all[i]->c)
              rt_forget (all[i]->c);
            log_pipe_close (&all[i]->out, false);
            log_pipe_close (&all[i]->err, false);
            meter_forget (all[i]);
            if (all[i]->net.netns_fd >= 0)
              close (all[i]->net.netns_fd);
            free (all[i]);
          }
      if (dep->listen_fd >= 0)
        close (dep->listen_fd);
      log_file_close (&dep->log);
      free (dep->waiter);
      deployment_free (dep);
    }
  while (d->envs)
    {
      struct environment *e = d->envs;
      d->envs = e->link;
      free (e->project);
      free (e->env);
      free (e);
    }
}

static void
deployment_free (void *p)
{
  struct deployment *dep = p;
  free (dep->project);
  free (dep->env);
  free (dep->service);
  dspec_clear (&dep->spec);
  dspec_clear (&dep->next_spec);
  free (dep);
}

int
deployment_listen (struct daemon *d, struct deployment *dep, uint16_t port, struct error *err)
{
  if (port == 0 || dep->listen_fd >= 0)
    return 0;
  int fd = socket (AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return error_set (err, errno, "socket");
  int one = 1;
  setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
  /* A saved port first (the endpoint survives restarts), else the first
   * free one from the base. */
  for (uint32_t p = dep->host_port ? dep->host_port : d->port_base; p < 65536; p++)
    {
      sa.sin_port = htons ((uint16_t) p);
      if (bind (fd, (struct sockaddr *) &sa, sizeof sa) == 0)
        {
          dep->host_port = (uint16_t) p;
          break;
        }
      if (dep->host_port && p == dep->host_port)
        {
          close (fd);
          return error_set (err, errno, "listen on 127.0.0.1:%u", dep->host_port);
        }
    }
  if (listen (fd, 512) < 0)
    {
      close (fd);
      return error_set (err, errno, "listen for %s", dep->id);
    }
  dep->listen_fd = fd;
  dep->listen_h.fn = forward_accept;
  return loop_add (&d->loop, fd, EPOLLIN, &dep->listen_h, err);
}

static struct deployment *
deployment_new (struct daemon *d, const struct msg_deploy *m, struct error *err)
{
  struct deployment *dep = calloc (1, sizeof *dep);
  if (dep == NULL)
    {
      error_set (err, ENOMEM, "deployment");
      return NULL;
    }
  snprintf (dep->id, sizeof dep->id, "%s.%s.%s", m->project, m->env, m->service);
  dep->project = strdup (m->project);
  dep->env = strdup (m->env);
  dep->service = strdup (m->service);
  dep->d = d;
  dep->listen_fd = -1;
  dep->log.fd = -1;
  if (log_file_open (&dep->log, d->log_dir, dep->id, d->log_max, err) < 0)
    {
      deployment_free (dep);
      return NULL;
    }
  dep->link = d->deployments;
  d->deployments = dep;
  return dep;
}

static char **
strv_dup (char **v)
{
  size_t n = 0;
  while (v && v[n])
    n++;
  char **r = calloc (n + 1, sizeof *r);
  for (size_t i = 0; r && i < n; i++)
    r[i] = strdup (v[i]);
  return r;
}

int
credit_stop_index (struct daemon *d, const char *project)
{
  for (int i = 0; i < d->n_credit_stops; i++)
    if (strcmp (d->credit_stops[i], project) == 0)
      return i;
  return -1;
}

int
deploy_request (struct daemon *d, struct client *cl, uint32_t reqid, struct msg_deploy *m,
                struct error *err)
{
  enum restart_policy restart = RESTART_ON_FAILURE;
  if (check_name ("project", m->project, err) < 0 || check_name ("env", m->env, err) < 0
      || check_name ("service", m->service, err) < 0 || parse_restart (m->restart, &restart, err) < 0)
    return -1;
  if (credit_stop_index (d, m->project) >= 0)
    return error_setx (err, EACCES,
                       "project %s is out of credits on the control plane at %s: add credits "
                       "(controld credits add %s DOLLARS), then deploy again",
                       m->project, d->control.addr_text, m->project);
  if (m->image == NULL || m->image[0] == '\0')
    return error_setx (err, EINVAL, "image: give an image reference");
  if (m->port > 65535)
    return error_setx (err, EINVAL, "port %llu: must be 1-65535", (unsigned long long) m->port);
  for (char **e = m->envv; e && *e; e++)
    if (strchr (*e, '=') == NULL || **e == '=')
      return error_setx (err, EINVAL, "env `%s`: expected K=V", *e);
  if (m->health_timeout_s > 3600)
    return error_setx (err, EINVAL, "health timeout: at most 3600 s");
  if (m->cpu_millis > 64000)
    return error_setx (err, EINVAL, "cpus %.3f: at most 64", m->cpu_millis / 1000.0);
  if (m->memory_bytes && m->memory_bytes < (4u << 20))
    return error_setx (err, EINVAL, "memory %llu bytes: at least 4M",
                       (unsigned long long) m->memory_bytes);

  struct deployment *dep = deployment_find (d, m->project, m->env, m->service);
  if (dep && (dep->next || dep->pulling || dep->waiter))
    return error_setx (err, EBUSY, "a deploy of %s is already in progress", dep->id);
  bool created = dep == NULL;
  if (created && (dep = deployment_new (d, m, err)) == NULL)
    return -1;
  /* The spec of the new version; the serving one's stays until it is healthy. */
  struct dspec *sp = &dep->next_spec;
  dspec_clear (sp);
  sp->image = strdup (m->image);
  sp->argv = m->argv ? strv_dup (m->argv) : NULL;
  sp->envv = strv_dup (m->envv);
  sp->port = (uint16_t) m->port;
  sp->memory = m->memory_bytes ? m->memory_bytes : 256u << 20;
  sp->cpu_millis = m->cpu_millis ? m->cpu_millis : 1000;
  sp->pids = m->pids ? m->pids : 256;
  sp->restart = restart;
  sp->insecure_registry = m->insecure_registry != 0;
  sp->health_timeout_s = m->health_timeout_s ? m->health_timeout_s : HEALTH_TIMEOUT_S;
  dep->has_next_spec = true;
  dep->restart_at = 0;

  struct environment *e = environment_get (d, m->project, m->env, true);
  if (e && m->ttl_seconds)
    {
      e->ttl_seconds = m->ttl_seconds;
      e->expires_at = (uint64_t) time (NULL) + m->ttl_seconds;
    }
  else if (e && e->ttl_seconds)
    e->expires_at = (uint64_t) time (NULL) + e->ttl_seconds; /* a deploy renews it */

  dep->waiter = calloc (1, sizeof *dep->waiter);
  if (dep->waiter == NULL)
    return error_set (err, ENOMEM, "deploy request");
  *dep->waiter = (struct pending){ .client = cl, .request_id = reqid, .t_request = monotonic_seconds () };
  d->dirty = true;

  if (deployment_listen (d, dep, sp->port, err) < 0)
    goto fail;
  progress (dep, "accepted", "deploy accepted", 0, 0);
  /* In the store already, or pulled first (in a worker thread). */
  struct error perr = { 0 };
  if (image_resolve (d, sp->image, &perr) == NULL)
    {
      if (strchr (sp->image, '/') == NULL)
        {
          error_setx (err, ENOENT, "image `%s` is not in the store and is not a registry reference (HOST[:PORT]/REPO[:TAG])",
                      sp->image);
          goto fail;
        }
      if (pull_start (d, dep, err) < 0)
        goto fail;
      return 0;
    }
  if (start_version (d, dep, sp, err) < 0)
    goto fail;
  return 0;

fail:
  free (dep->waiter);
  dep->waiter = NULL;
  dspec_clear (&dep->next_spec);
  dep->has_next_spec = false;
  if (created)
    {
      struct error ignored;
      deployment_remove (d, dep, &ignored);
    }
  return -1;
}

/* ---- removal and the periodic tick -------------------------------------------- */

static void
instance_stop_now (struct daemon *d, struct instance *in)
{
  if (in == NULL)
    return;
  if (in->state != INST_EXITED)
    instance_release (d, in); /* kills, reaps, removes the cgroup */
  daemon_defer_free (d, instance_free, in);
}

int
deployment_remove (struct daemon *d, struct deployment *dep, struct error *err)
{
  (void) err;
  for (struct deployment **p = &d->deployments; *p; p = &(*p)->link)
    if (*p == dep)
      {
        *p = dep->link;
        break;
      }
  if (dep->waiter)
    {
      client_error (dep->waiter->client, dep->waiter->request_id, PROTO_E_FAILED,
                    "%s was removed while its deploy ran", dep->id);
      free (dep->waiter);
      dep->waiter = NULL;
    }
  instance_stop_now (d, dep->next);
  instance_stop_now (d, dep->current);
  for (size_t i = 0; i < sizeof dep->draining / sizeof dep->draining[0]; i++)
    instance_stop_now (d, dep->draining[i]);
  if (dep->listen_fd >= 0)
    {
      loop_del (&d->loop, dep->listen_fd);
      close (dep->listen_fd);
    }
  clients_forget_deployment (d, dep);
  deployment_log (dep, LOG_AGENTD, "removed");
  log_file_close (&dep->log);
  struct environment *e = environment_get (d, dep->project, dep->env, false);
  if (e)
    environment_drop_if_empty (d, e);
  /* A pull still running for it finds no deployment by that id. */
  daemon_defer_free (d, deployment_free, dep);
  d->dirty = true;
  return 0;
}

static void
tick_instance (struct daemon *d, struct deployment *dep, struct instance *in, double now)
{
  struct error ignored;
  if (in->state == INST_STARTING && in == dep->next)
    {
      if (now > in->health_deadline)
        {
          char why[96];
          snprintf (why, sizeof why, "port %u did not accept connections within %.0f s",
                    in->port, in->health_deadline - in->started_mono);
          deploy_failed (d, dep, in, why);
          instance_release (d, in);
          daemon_defer_free (d, instance_free, in);
          return;
        }
      if (in->probe_fd < 0 && now >= in->next_probe)
        probe_start (d, in);
      return;
    }
  if (in->state == INST_DRAINING && !in->term_sent
      && (in->forwarded == 0 || now > in->drain_deadline))
    {
      rt_signal (in->c, SIGTERM, &ignored);
      in->term_sent = true;
      in->kill_at = now + KILL_GRACE_S;
    }
  else if (in->term_sent && now > in->kill_at && in->c)
    rt_kill_all (in->c, &ignored);
}

void
deployments_tick (struct daemon *d, double now)
{
  uint64_t wall = (uint64_t) time (NULL);
  for (struct environment *e = d->envs, *next; e; e = next)
    {
      next = e->link;
      if (e->expires_at == 0 || wall < e->expires_at)
        continue;
      fprintf (stderr, "agentd: environment %s/%s reached its time-to-live: tearing it down\n",
               e->project, e->env);
      char project[64], env[64];
      snprintf (project, sizeof project, "%s", e->project);
      snprintf (env, sizeof env, "%s", e->env);
      struct error ignored;
      for (struct deployment *dep = d->deployments, *dn; dep; dep = dn)
        {
          dn = dep->link;
          if (strcmp (dep->project, project) == 0 && strcmp (dep->env, env) == 0)
            deployment_remove (d, dep, &ignored);
        }
      next = d->envs; /* the list changed */
      struct environment *left = environment_get (d, project, env, false);
      if (left)
        {
          left->expires_at = 0;
          environment_drop_if_empty (d, left);
        }
    }
  for (struct deployment *dep = d->deployments; dep; dep = dep->link)
    {
      if (dep->next)
        tick_instance (d, dep, dep->next, now);
      for (size_t i = 0; i < sizeof dep->draining / sizeof dep->draining[0]; i++)
        if (dep->draining[i])
          tick_instance (d, dep, dep->draining[i], now);
      if (dep->restart_at && now >= dep->restart_at)
        deployment_restart_now (d, dep);
      struct error ignored;
      if (dep->spec.port && dep->listen_fd < 0)
        deployment_listen (d, dep, dep->spec.port, &ignored);
    }
}

/* ---- adoption after a restart ---------------------------------------------- */

int
instance_adopt (struct daemon *d, struct deployment *dep, const char *id, const char *name,
                uint64_t version, pid_t pid, uint64_t start_time, uint32_t addr, struct error *err)
{
  struct instance *in = instance_new (dep, version, id);
  if (in == NULL)
    return error_set (err, ENOMEM, "instance");
  if (rt_adopt (d->rt, in->id, name, pid, start_time, &in->c, err) < 0)
    {
      free (in);
      return -1;
    }
  in->pid = pid;
  snprintf (in->rt_name, sizeof in->rt_name, "%s", name);
  in->start_time = start_time;
  in->adopted = true;
  in->net.addr = addr;
  if (addr && d->addr_used)
    {
      d->addr_used[addr - d->net.subnet] = 1;
      net_veth_name (addr, in->net.veth);
    }
  in->pid_h.fn = instance_on_pidfd;
  if (instance_pipes_open (d, in, NULL, NULL, err) < 0
      || loop_add (&d->loop, rt_pidfd (in->c), EPOLLIN, &in->pid_h, err) < 0)
    {
      instance_release (d, in);
      free (in);
      return -1;
    }
  in->state = INST_RUNNING;
  in->started_mono = monotonic_seconds ();
  dep->current = in;
  return 0;
}

void
deployment_info (const struct deployment *dep, struct info_buf *b, struct msg_deployment_info *out)
{
  char *addr = b->addr, *url = b->url;
  const struct instance *in = dep->current;
  const char *state = "starting";
  if (dep->pulling)
    state = "pulling";
  else if (in && in->state == INST_RUNNING)
    state = "running";
  else if (dep->restart_at)
    state = "restarting";
  else if (in && in->state == INST_EXITED)
    state = "exited";
  else if (!in && !dep->next)
    state = "failed";
  addr[0] = url[0] = '\0';
  if (in && in->net.addr)
    {
      char a[16];
      net_addr_str (in->net.addr, a);
      snprintf (addr, sizeof b->addr, "%s", a);
    }
  if (dep->host_port)
    snprintf (url, sizeof b->url, "http://127.0.0.1:%u", dep->host_port);
  *out = (struct msg_deployment_info){
    .id = (char *) dep->id,
    .project = dep->project,
    .env = dep->env,
    .service = dep->service,
    .image = dep->spec.image,
    .state = (char *) state,
    .version = in ? in->version : 0,
    .pid = in && in->state != INST_EXITED ? (uint64_t) in->pid : 0,
    .restarts = dep->restarts,
    .address = addr,
    .url = url,
    .last_exit = (char *) dep->last_exit,
    .started_at = dep->started_at,
    .port = dep->spec.port,
    .host_port = dep->host_port,
    .restart = (char *) restart_policy_name (dep->spec.restart),
  };
}
