/* `agentd serve`: the node daemon. One epoll loop owns every deployment;
 * workloads outlive the daemon (stop it, crash it: they keep running and
 * are adopted again at the next start). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include "../common/fsutil.h"
#include "../common/netaddr.h"
#include "config.h"
#include "commands.h"
#include "daemon.h"
#include "../common/parse.h"

#define TICK_MS 100

static void
serve_usage (FILE *out)
{
  fputs ("Usage: agentd serve [OPTIONS]      (also: agentd with no command)\n"
         "\n"
         "Run the node daemon: take deploy requests on a Unix socket, keep workloads\n"
         "running by their restart policy, forward each service's stable host port to\n"
         "its current healthy version. Workloads keep running when agentd stops.\n"
         "\n"
         "  --root DIR            state root (images, layers, logs)   (default " AGENTD_DEFAULT_ROOT ")\n"
         "  --socket PATH         API socket, mode 0660               (default " AGENTD_DEFAULT_SOCKET ")\n"
         "  --allow-uid UID       also accept this uid on the socket (repeatable; root always)\n"
         "  --socket-group GROUP  the socket's group; its members are accepted too\n"
         "  --subnet CIDR         workload addresses                  (default 10.88.0.0/16)\n"
         "  --bridge NAME         the bridge agentd owns              (default agentd0)\n"
         "  --no-network          workloads get loopback only (no veth, no host port)\n"
         "  --port-base N         first 127.0.0.1 port for services  (default 20000)\n"
         "  --metrics ADDR:PORT   serve GET /metrics there (Prometheus text), e.g. 127.0.0.1:9464\n"
         "  --log-max SIZE        per-deployment log size before rotation (default 8M)\n"
         "  --journal-max SIZE    bound of the usage journal (default 1G); past it the\n"
         "                        oldest unacknowledged usage is dropped, loudly\n"
         "  --journal-sync N      fsync the journal every N seconds (default 1; 0: never)\n"
         "  --control ADDR:PORT   stream usage to this control plane (controld)\n"
         "  --node-id ID          this node's name to the control plane (default: hostname)\n"
         "  --token-file FILE     the token the control plane expects in HELLO\n"
         "  --config FILE         settings from an agentd.yaml (root, socket, subnet, bridge,\n"
         "                        network, port_base, metrics, log_max, allow_uids,\n"
         "                        socket_group, journal_max, journal_sync, control, node_id,\n"
         "                        token_file); flags win over it\n"
         "  -h, --help            show this help\n",
         out);
}

void
daemon_defer_free (struct daemon *d, void (*fn) (void *), void *p)
{
  struct deferred *x = malloc (sizeof *x);
  if (x == NULL)
    return; /* leak rather than free too early */
  *x = (struct deferred){ fn, p, d->deferred };
  d->deferred = x;
}

void
daemon_run_deferred (struct daemon *d)
{
  while (d->deferred)
    {
      struct deferred *x = d->deferred;
      d->deferred = x->next;
      x->fn (x->p);
      free (x);
    }
}

static int
listen_unix (struct daemon *d, struct error *err)
{
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  if (strlen (d->socket_path) >= sizeof sa.sun_path)
    return error_setx (err, ENAMETOOLONG, "socket path `%s` is too long", d->socket_path);
  strcpy (sa.sun_path, d->socket_path);
  char dir[PATH_MAX];
  snprintf (dir, sizeof dir, "%s", d->socket_path);
  char *slash = strrchr (dir, '/');
  if (slash && slash != dir)
    {
      *slash = '\0';
      if (mkdir_p (dir, 0755, err) < 0)
        return -1;
    }
  int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return error_set (err, errno, "socket");
  /* A stale socket from a crash: replace it, unless an agentd answers. */
  if (connect (fd, (struct sockaddr *) &sa, sizeof sa) == 0)
    {
      close (fd);
      return error_setx (err, EADDRINUSE, "socket `%s`: another agentd is serving there", d->socket_path);
    }
  unlink (d->socket_path);
  mode_t old = umask (0117);
  int r = bind (fd, (struct sockaddr *) &sa, sizeof sa);
  umask (old);
  if (r < 0 || listen (fd, 128) < 0)
    {
      int e = errno;
      close (fd);
      return error_set (err, e, "listen on `%s`", d->socket_path);
    }
  if (d->has_allow_gid && chown (d->socket_path, 0, d->allow_gid) < 0)
    {
      int e = errno;
      close (fd);
      return error_set (err, e, "socket `%s`: set group", d->socket_path);
    }
  d->listen_fd = fd;
  d->listen_h.fn = api_accept;
  return loop_add (&d->loop, fd, EPOLLIN, &d->listen_h, err);
}

static int
listen_metrics (struct daemon *d, const char *spec, struct error *err)
{
  struct sockaddr_in sa;
  if (parse_hostport (spec, &sa, err) < 0)
    return error_prefix (err, "--metrics");
  int fd = socket (AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (fd < 0 || bind (fd, (struct sockaddr *) &sa, sizeof sa) < 0 || listen (fd, 16) < 0)
    {
      int e = errno;
      if (fd >= 0)
        close (fd);
      return error_set (err, e, "--metrics: listen on %s", spec);
    }
  d->metrics_fd = fd;
  d->metrics_h.fn = metrics_accept;
  return loop_add (&d->loop, fd, EPOLLIN, &d->metrics_h, err);
}

static void
on_signal (struct loop_handler *h, uint32_t events)
{
  (void) events;
  struct daemon *d = container_of (h, struct daemon, signal_h);
  struct signalfd_siginfo si;
  while (read (d->signal_fd, &si, sizeof si) == (ssize_t) sizeof si)
    {
      fprintf (stderr, "agentd: %s: stopping; workloads keep running\n", strsignal ((int) si.ssi_signo));
      d->loop.stop = 1;
    }
}

static void
on_timer (struct loop_handler *h, uint32_t events)
{
  (void) events;
  struct daemon *d = container_of (h, struct daemon, timer_h);
  uint64_t n;
  if (read (d->timer_fd, &n, sizeof n) < 0)
    return;
  double now = monotonic_seconds ();
  deployments_tick (d, now);
  if (now >= d->next_sample)
    {
      meter_sample (d, now);
      d->next_sample = d->next_sample + 1 > now ? d->next_sample + 1 : now + 1;
    }
}

static int
keep_addr (void *ctx, uint32_t addr)
{
  struct daemon *d = ctx;
  for (struct deployment *dep = d->deployments; dep; dep = dep->link)
    if (dep->current && dep->current->net.addr == addr)
      return 1;
  return 0;
}

/* Off the request path, after the replies: the pools that make a start
 * clone + mount + exec (network namespaces with their veth; cgroups and
 * state dirs). */
static void
prepare_ahead (struct daemon *d)
{
  if (d->pool_n + d->pool_pending < NET_POOL_SIZE)
    net_pool_fill (d);
  if (d->started_since_prepare)
    {
      preparer_request (d, 0); /* spare cgroups and state dirs */
      d->started_since_prepare = false;
    }
}

static bool
keep_cgroup (void *ctx, const char *name)
{
  struct daemon *d = ctx;
  for (struct deployment *dep = d->deployments; dep; dep = dep->link)
    {
      if (dep->current && strcmp (dep->current->rt_name, name) == 0)
        return true;
      for (size_t i = 0; i < sizeof dep->draining / sizeof dep->draining[0]; i++)
        if (dep->draining[i] && strcmp (dep->draining[i]->rt_name, name) == 0)
          return true;
    }
  return false;
}

static int
daemon_start (struct daemon *d, struct error *err)
{
  char run[PATH_MAX], cache[PATH_MAX], cgparent[64];
  snprintf (d->state_dir, sizeof d->state_dir, "%s/state", d->root);
  snprintf (d->log_dir, sizeof d->log_dir, "%s/logs", d->root);
  snprintf (run, sizeof run, "%s/run", d->root);
  snprintf (cache, sizeof cache, "%s/cache", d->root);
  /* One cgroup parent per root, so that daemons side by side (tests) never
   * meet in the cgroup tree. */
  unsigned h = 5381;
  for (const char *p = d->root; *p; p++)
    h = h * 33 + (unsigned char) *p;
  snprintf (cgparent, sizeof cgparent, "agentd-%08x", h);
  /* The log fifos live as long as their workloads, not across reboots: on
   * tmpfs, where making one costs no journal write. */
  snprintf (d->fifo_dir, sizeof d->fifo_dir, "/run/agentd/fifo-%08x", h);
  if (mkdir_p (d->state_dir, 0700, err) < 0 || mkdir_p (d->log_dir, 0750, err) < 0
      || mkdir_p (d->fifo_dir, 0700, err) < 0 || mkdir_p (cache, 0700, err) < 0)
    return -1;
  if (rt_runtime_new (run, cgparent, &d->rt, err) < 0
      || rt_seccomp_default (cache, &d->seccomp, err) < 0)
    return -1;
  if (d->net_enabled)
    {
      d->addr_used = calloc ((size_t) 1 << (32 - d->net.prefix), 1);
      if (d->addr_used == NULL)
        return error_set (err, ENOMEM, "address map");
      if (net_bridge_up (&d->net, err) < 0)
        return -1;
    }
  if (loop_init (&d->loop, err) < 0)
    return -1;

  sigset_t mask;
  sigemptyset (&mask);
  sigaddset (&mask, SIGINT);
  sigaddset (&mask, SIGTERM);
  sigaddset (&mask, SIGHUP);
  sigprocmask (SIG_BLOCK, &mask, NULL);
  signal (SIGPIPE, SIG_IGN);
  d->signal_fd = signalfd (-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  d->signal_h.fn = on_signal;
  d->timer_fd = timerfd_create (CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  struct itimerspec its = { { 0, TICK_MS * 1000000 }, { 0, TICK_MS * 1000000 } };
  if (d->signal_fd < 0 || d->timer_fd < 0 || timerfd_settime (d->timer_fd, 0, &its, NULL) < 0)
    return error_set (err, errno, "signalfd/timerfd");
  d->timer_h.fn = on_timer;
  if (pipe2 (d->worker_fd, O_CLOEXEC) < 0)
    return error_set (err, errno, "worker pipe");
  fcntl (d->worker_fd[0], F_SETFL, O_NONBLOCK);
  d->worker_h.fn = worker_results;
  if (loop_add (&d->loop, d->signal_fd, EPOLLIN, &d->signal_h, err) < 0
      || loop_add (&d->loop, d->timer_fd, EPOLLIN, &d->timer_h, err) < 0
      || loop_add (&d->loop, d->worker_fd[0], EPOLLIN, &d->worker_h, err) < 0)
    return -1;

  char jdir[PATH_MAX];
  snprintf (jdir, sizeof jdir, "%s/journal", d->root);
  if (journal_open (jdir, d->journal_max, &d->journal, err) < 0)
    return -1;
  if (d->has_control)
    {
      d->uplink_h.fn = uplink_events;
      if (uplink_start (&d->control, d->journal, &d->uplink, err) < 0
          || loop_add (&d->loop, uplink_event_fd (d->uplink), EPOLLIN, &d->uplink_h, err) < 0)
        return -1;
    }
  d->started_mono = monotonic_seconds ();
  d->next_sample = d->started_mono + 1;
  if (state_load (d, err) < 0)
    fprintf (stderr, "agentd: %s\n", err->msg); /* what loaded keeps running */
  if (d->net_enabled && net_reconcile (keep_addr, d, err) < 0)
    fprintf (stderr, "agentd: %s\n", err->msg);
  struct rt_reconcile_stats rs;
  if (rt_reconcile (d->rt, keep_cgroup, d, &rs, err) < 0)
    fprintf (stderr, "agentd: %s\n", err->msg);
  if (rs.removed)
    fprintf (stderr, "agentd: removed %zu cgroups a previous run left behind\n", rs.removed);
  for (size_t i = 0; i < rs.n_busy; i++)
    fprintf (stderr, "agentd: cgroup `%s` holds processes no saved deployment knows: left alone\n",
             rs.busy[i]);
  if (preparer_start (d, err) < 0 || state_writer_start (d, err) < 0)
    return -1;
  d->started_since_prepare = true;
  prepare_ahead (d);
  return listen_unix (d, err);
}

static void
daemon_stop (struct daemon *d)
{
  struct error err = { 0 };
  preparer_stop (d);
  state_writer_stop (d);
  if (state_save (d, &err) < 0)
    fprintf (stderr, "agentd: save state: %s\n", err.msg);
  /* Prepared namespaces no workload took. */
  for (int i = 0; i < d->pool_n; i++)
    net_slot_release (&d->pool[i]);
  d->pool_n = 0;
  if (d->listen_fd >= 0)
    {
      close (d->listen_fd);
      unlink (d->socket_path);
    }
  while (d->clients)
    client_drop (d->clients);
  daemon_run_deferred (d);
  deployments_free_all (d);
  image_cache_clear (d);
  uplink_stop (d->uplink);
  journal_close (d->journal);
  free (d->addr_used);
  if (d->seccomp)
    rt_seccomp_free (d->seccomp);
  if (d->rt)
    rt_runtime_free (d->rt);
  for (int i = 0; i < 2; i++)
    if (d->worker_fd[i] >= 0)
      close (d->worker_fd[i]);
  int fds[] = { d->signal_fd, d->timer_fd, d->metrics_fd };
  for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
    if (fds[i] >= 0)
      close (fds[i]);
  loop_free (&d->loop);
}

struct serve_opts
{
  const char *subnet, *metrics;
  const char *control, *node_id, *token_file;
  char *config_storage[8]; /* strings made from agentd.yaml values */
  int n_storage;
};

/* One setting, from a flag or from agentd.yaml (`where` names which). */
static int
set_option (struct daemon *d, struct serve_opts *o, int opt, const char *arg, const char *where)
{
  struct error err = { 0 };
  int64_t v;
  switch (opt)
    {
    case 'R': d->root = arg; return 0;
    case 's': d->socket_path = arg; return 0;
    case 'n': o->subnet = arg; return 0;
    case 'm': o->metrics = arg; return 0;
    case 'N': d->net_enabled = false; return 0;
    case 'C': o->control = arg; return 0;
    case 'I': o->node_id = arg; return 0;
    case 'T': o->token_file = arg; return 0;
    case 'J':
      if (parse_size (arg, &v, &err) < 0)
        break;
      d->journal_max = (uint64_t) v;
      return 0;
    case 'S':
      if (parse_count (arg, 3600, &v, &err) < 0 && strcmp (arg, "0") != 0)
        break;
      d->journal_sync_s = strcmp (arg, "0") == 0 ? 0 : (uint64_t) v;
      return 0;
    case 'b':
      if (strlen (arg) == 0 || strlen (arg) >= sizeof d->net.bridge)
        {
          error_setx (&err, EINVAL, "`%s`: 1-15 characters", arg);
          break;
        }
      strcpy (d->net.bridge, arg);
      return 0;
    case 'p':
      if (parse_count (arg, 65000, &v, &err) < 0)
        break;
      d->port_base = (uint16_t) v;
      return 0;
    case 'l':
      if (parse_size (arg, &v, &err) < 0)
        break;
      d->log_max = (uint64_t) v;
      return 0;
    case 'u':
      if (parse_count (arg, 4294967294LL, &v, &err) < 0)
        break;
      if (d->n_allow_uid == 16)
        {
          error_setx (&err, E2BIG, "at most 16 uids");
          break;
        }
      d->allow_uid[d->n_allow_uid++] = (uid_t) v;
      return 0;
    case 'g':
      {
        struct group *g = getgrnam (arg);
        if (g == NULL)
          {
            error_setx (&err, ENOENT, "`%s`: no such group", arg);
            break;
          }
        d->allow_gid = g->gr_gid;
        d->has_allow_gid = true;
        return 0;
      }
    }
  fprintf (stderr, "agentd serve: %s: %s\n", where, err.msg);
  return -1;
}

static void
serve_opts_free (struct serve_opts *o)
{
  for (int i = 0; i < o->n_storage; i++)
    free (o->config_storage[i]);
  o->n_storage = 0;
}

static char *
keep (struct serve_opts *o, char *s)
{
  if (s && o->n_storage < (int) (sizeof o->config_storage / sizeof o->config_storage[0]))
    o->config_storage[o->n_storage++] = s;
  return s;
}

/* agentd.yaml's settings, applied before the flags (which win). */
static int
apply_config (struct daemon *d, struct serve_opts *o, const char *path)
{
  struct agentd_config c;
  struct error err = { 0 };
  if (agentd_config_load (path, &c, &err) < 0)
    {
      fprintf (stderr, "agentd serve: --config: %s\n", err.msg);
      return -1;
    }
  struct
  {
    int opt;
    char *value;
    const char *key;
  } strings[] = { { 'R', c.root, "root" },       { 's', c.socket, "socket" },
                  { 'n', c.subnet, "subnet" },   { 'b', c.bridge, "bridge" },
                  { 'm', c.metrics, "metrics" }, { 'g', c.socket_group, "socket_group" },
                  { 'C', c.control, "control" }, { 'I', c.node_id, "node_id" },
                  { 'T', c.token_file, "token_file" } };
  int r = 0;
  for (size_t i = 0; i < sizeof strings / sizeof strings[0] && r == 0; i++)
    if (strings[i].value)
      {
        char where[64];
        snprintf (where, sizeof where, "%s: %s", path, strings[i].key);
        r = set_option (d, o, strings[i].opt, keep (o, strdup (strings[i].value)), where);
      }
  if (c.has_network && !c.network)
    d->net_enabled = false;
  if (c.port_base)
    d->port_base = (uint16_t) c.port_base;
  if (c.log_max)
    d->log_max = c.log_max;
  if (c.journal_max)
    d->journal_max = c.journal_max;
  if (c.has_journal_sync)
    d->journal_sync_s = c.journal_sync;
  for (int i = 0; i < c.n_allow_uids && d->n_allow_uid < 16; i++)
    d->allow_uid[d->n_allow_uid++] = c.allow_uids[i];
  agentd_config_clear (&c);
  return r;
}

/* --control, --node-id, --token-file: the uplink's settings. */
static int
control_config (struct daemon *d, const struct serve_opts *o, struct error *err)
{
  if (o->control == NULL)
    {
      if (o->node_id || o->token_file)
        return error_setx (err, EINVAL, "--node-id and --token-file go with --control");
      return 0;
    }
  struct uplink_config *c = &d->control;
  if (parse_hostport (o->control, &c->addr, err) < 0)
    return error_prefix (err, "--control");
  snprintf (c->addr_text, sizeof c->addr_text, "%s", o->control);
  if (o->node_id)
    snprintf (c->node_id, sizeof c->node_id, "%s", o->node_id);
  else if (gethostname (c->node_id, sizeof c->node_id) < 0)
    return error_set (err, errno, "--node-id: none given, and no hostname");
  c->node_id[sizeof c->node_id - 1] = '\0';
  if (o->token_file && read_token_file (o->token_file, c->token, sizeof c->token, err) < 0)
    return error_prefix (err, "--token-file");
  d->has_control = true;
  return 0;
}

int
cmd_serve (int argc, char **argv)
{
  static const struct option longopts[] = {
    { "root", required_argument, NULL, 'R' },      { "socket", required_argument, NULL, 's' },
    { "subnet", required_argument, NULL, 'n' },    { "bridge", required_argument, NULL, 'b' },
    { "no-network", no_argument, NULL, 'N' },      { "port-base", required_argument, NULL, 'p' },
    { "metrics", required_argument, NULL, 'm' },   { "log-max", required_argument, NULL, 'l' },
    { "allow-uid", required_argument, NULL, 'u' }, { "socket-group", required_argument, NULL, 'g' },
    { "config", required_argument, NULL, 'c' },    { "help", no_argument, NULL, 'h' },
    { "control", required_argument, NULL, 'C' },   { "node-id", required_argument, NULL, 'I' },
    { "token-file", required_argument, NULL, 'T' }, { "journal-max", required_argument, NULL, 'J' },
    { "journal-sync", required_argument, NULL, 'S' },
    { 0 },
  };
  struct daemon d = { .root = AGENTD_DEFAULT_ROOT, .socket_path = AGENTD_DEFAULT_SOCKET,
                      .net_enabled = true, .port_base = 20000, .log_max = 8u << 20,
                      .journal_max = 1ull << 30, .journal_sync_s = 1,
                      .listen_fd = -1, .metrics_fd = -1, .signal_fd = -1, .timer_fd = -1,
                      .worker_fd = { -1, -1 }, .loop.epfd = -1 };
  struct serve_opts o = { .subnet = "10.88.0.0/16" };
  struct error err = { 0 };
  int opt, status = 0;
  /* First the file, then the flags over it. */
  opterr = 0;
  while ((opt = getopt_long (argc, argv, "h", longopts, NULL)) != -1 && status == 0)
    if (opt == 'c' && apply_config (&d, &o, optarg) < 0)
      status = 2;
  optind = 1;
  while (status == 0 && (opt = getopt_long (argc, argv, "h", longopts, NULL)) != -1)
    {
      char where[32] = "";
      for (const struct option *lo = longopts; lo->name; lo++)
        if (lo->val == opt)
          snprintf (where, sizeof where, "--%s", lo->name);
      if (opt == 'c')
        continue;
      if (opt == 'h')
        {
          serve_usage (stdout);
          status = -1;
        }
      else if (opt == '?' || opt == ':')
        {
          fprintf (stderr, "agentd serve: unknown or incomplete option `%s` (see `agentd serve --help`)\n",
                   argv[optind - 1]);
          status = 2;
        }
      else if (set_option (&d, &o, opt, optarg, where) < 0)
        status = 2;
    }
  if (status == 0 && optind < argc)
    {
      fprintf (stderr, "agentd serve: unexpected argument `%s`\n", argv[optind]);
      status = 2;
    }
  if (status != 0)
    {
      serve_opts_free (&o);
      return status < 0 ? 0 : status;
    }
  const char *subnet = o.subnet, *metrics = o.metrics;
  if (net_config_parse (subnet, &d.net, &err) < 0 || control_config (&d, &o, &err) < 0)
    {
      fprintf (stderr, "agentd serve: %s\n", err.msg);
      serve_opts_free (&o);
      return 2;
    }
  if (daemon_start (&d, &err) < 0 || (metrics && listen_metrics (&d, metrics, &err) < 0))
    {
      fprintf (stderr, "agentd serve: %s\n", err.msg);
      daemon_stop (&d);
      serve_opts_free (&o);
      return 1;
    }
  fprintf (stderr, "agentd: serving on %s (root %s, cgroup %s, network %s)\n", d.socket_path, d.root,
           rt_runtime_cgroup_version (d.rt) == RT_CGROUP_V2 ? "v2" : "v1",
           d.net_enabled ? subnet : "off");
  while (!d.loop.stop)
    {
      bool fast = d.probing > 0;
      if (loop_run_once (&d.loop, fast ? 1 : -1, &err) < 0)
        {
          fprintf (stderr, "agentd: %s\n", err.msg);
          break;
        }
      if (fast)
        deployments_tick (&d, monotonic_seconds ());
      daemon_run_deferred (&d);
      if (d.dirty && state_save_async (&d, &err) < 0)
        fprintf (stderr, "agentd: save state: %s\n", err.msg);
      prepare_ahead (&d);
    }
  daemon_stop (&d);
  serve_opts_free (&o);
  return 0;
}
