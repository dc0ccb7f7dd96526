/* The API on agentd's Unix socket: frames in, requests dispatched, replies
 * out (PROTOCOL.md). A bad frame gets an error reply; only a frame whose
 * header loses the framing closes that one connection. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "daemon.h"
#include "usage.h"

#define CLIENT_OUT_MAX (16u << 20) /* a follower that reads no more is dropped */

struct client
{
  struct daemon *d;
  struct proto_conn conn;
  struct loop_handler h;
  bool closing; /* close once the queued error is out */
  struct deployment *follow;
  uint32_t follow_req;
  uint64_t serial; /* names it to the uplink, which answers later */
  struct client *next;
};

static void
client_free (void *p)
{
  struct client *cl = p;
  proto_conn_free (&cl->conn);
  free (cl);
}

void
client_drop (struct client *cl)
{
  struct daemon *d = cl->d;
  if (cl->conn.fd < 0)
    return;
  loop_del (&d->loop, cl->conn.fd);
  close (cl->conn.fd);
  cl->conn.fd = -1;
  for (struct deployment *dep = d->deployments; dep; dep = dep->link)
    if (dep->waiter && dep->waiter->client == cl)
      dep->waiter->client = NULL; /* the deploy goes on; nobody to tell */
  for (struct client **p = &d->clients; *p; p = &(*p)->next)
    if (*p == cl)
      {
        *p = cl->next;
        break;
      }
  daemon_defer_free (d, client_free, cl);
}

static void
client_flush (struct client *cl)
{
  struct error err = { 0 };
  int r = proto_conn_flush (&cl->conn, &err);
  if (r < 0 || (r == 0 && cl->closing))
    {
      client_drop (cl);
      return;
    }
  loop_mod (&cl->d->loop, cl->conn.fd, EPOLLIN | (r == 1 ? EPOLLOUT : 0), &cl->h);
}

int
client_reply (struct client *cl, uint8_t type, uint16_t flags, uint32_t reqid, const void *msg)
{
  if (cl == NULL || cl->conn.fd < 0)
    return -1;
  struct error err = { 0 };
  struct proto_buf b = { 0 };
  int r = proto_encode (type, msg, &b, &err);
  if (r == 0)
    r = proto_conn_queue (&cl->conn, type, flags, reqid, &b, &err);
  proto_buf_free (&b);
  if (r < 0)
    {
      fprintf (stderr, "agentd: reply %s: %s\n", proto_msg_name (type), err.msg);
      return -1;
    }
  if (cl->conn.out.len - cl->conn.out_pos > CLIENT_OUT_MAX)
    {
      client_drop (cl);
      return -1;
    }
  client_flush (cl);
  return 0;
}

int
client_error (struct client *cl, uint32_t reqid, uint64_t code, const char *fmt, ...)
{
  char msg[ERROR_MSG_MAX + 128];
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (msg, sizeof msg, fmt, ap);
  va_end (ap);
  struct msg_error e = { code, msg };
  return client_reply (cl, MSG_ERROR, PROTO_F_REPLY, reqid, &e);
}

void
client_log_line (struct daemon *d, struct deployment *dep, uint64_t ts, enum log_stream s,
                 const char *text, size_t len)
{
  for (struct client *cl = d->clients, *next; cl; cl = next)
    {
      next = cl->next;
      if (cl->follow != dep)
        continue;
      char buf[LOG_LINE_MAX + 1];
      memcpy (buf, text, len);
      buf[len] = '\0';
      struct msg_log_line line = { ts, s, buf };
      struct msg_log_lines m = { &line, 1 };
      client_reply (cl, MSG_LOG_LINES, PROTO_F_REPLY | PROTO_F_MORE, cl->follow_req, &m);
    }
}

void
clients_forget_deployment (struct daemon *d, struct deployment *dep)
{
  for (struct client *cl = d->clients, *next; cl; cl = next)
    {
      next = cl->next;
      if (cl->follow != dep)
        continue;
      cl->follow = NULL;
      struct msg_log_lines end = { 0 };
      client_reply (cl, MSG_LOG_LINES, PROTO_F_REPLY, cl->follow_req, &end);
    }
}

/* ---- requests ------------------------------------------------------------ */

static bool
matches (const char *filter, const char *value)
{
  return filter == NULL || filter[0] == '\0' || strcmp (filter, value) == 0;
}

static void
do_list (struct client *cl, uint32_t reqid, const struct msg_list *m)
{
  struct daemon *d = cl->d;
  size_t n = 0;
  for (struct deployment *dep = d->deployments; dep; dep = dep->link)
    n++;
  struct msg_deployment_info *v = calloc (n + 1, sizeof *v);
  struct info_buf *bufs = calloc (n + 1, sizeof *bufs);
  if (v == NULL || bufs == NULL)
    {
      free (v);
      free (bufs);
      client_error (cl, reqid, PROTO_E_FAILED, "list: out of memory");
      return;
    }
  size_t k = 0;
  for (struct deployment *dep = d->deployments; dep; dep = dep->link)
    if (matches (m->project, dep->project) && matches (m->env, dep->env)
        && matches (m->service, dep->service))
      {
        deployment_info (dep, &bufs[k], &v[k]);
        k++;
      }
  struct msg_list_result r = { v, k };
  client_reply (cl, MSG_LIST_RESULT, PROTO_F_REPLY, reqid, &r);
  free (v);
  free (bufs);
}

static struct deployment *
find_one (struct client *cl, uint32_t reqid, const char *project, const char *env,
          const char *service)
{
  struct daemon *d = cl->d;
  if (project == NULL || env == NULL || service == NULL)
    {
      client_error (cl, reqid, PROTO_E_INVALID, "give project, env and service");
      return NULL;
    }
  struct deployment *dep = deployment_find (d, project, env, service);
  if (dep == NULL)
    client_error (cl, reqid, PROTO_E_NOT_FOUND, "no service `%s` in %s/%s", service, project, env);
  return dep;
}

static void
do_logs (struct client *cl, uint32_t reqid, const struct msg_logs *m)
{
  struct deployment *dep = find_one (cl, reqid, m->project, m->env, m->service);
  if (dep == NULL)
    return;
  struct log_record *recs = NULL;
  size_t n = 0;
  struct error err = { 0 };
  if (log_file_read (dep->log.path, m->tail, &recs, &n, &err) < 0)
    {
      client_error (cl, reqid, PROTO_E_FAILED, "%s", err.msg);
      return;
    }
  /* In frames well under the size limit. */
  size_t at = 0;
  do
    {
      size_t k = 0, bytes = 0;
      struct msg_log_line *lines = calloc (n - at + 1, sizeof *lines);
      if (lines == NULL)
        break;
      while (at + k < n && bytes < PROTO_MAX_PAYLOAD / 2)
        {
          lines[k] = (struct msg_log_line){ recs[at + k].ts_us, recs[at + k].stream,
                                            recs[at + k].text };
          bytes += strlen (recs[at + k].text) + 16;
          k++;
        }
      at += k;
      struct msg_log_lines r = { lines, k };
      bool last = at == n && !m->follow;
      client_reply (cl, MSG_LOG_LINES, PROTO_F_REPLY | (last ? 0 : PROTO_F_MORE), reqid, &r);
      free (lines);
    }
  while (at < n);
  log_records_free (recs, n);
  if (m->follow)
    {
      cl->follow = dep;
      cl->follow_req = reqid;
    }
}

static void
do_down (struct client *cl, uint32_t reqid, const struct msg_down *m)
{
  struct daemon *d = cl->d;
  if (m->project == NULL || m->env == NULL)
    {
      client_error (cl, reqid, PROTO_E_INVALID, "give project and env");
      return;
    }
  char *removed[512];
  size_t n = 0;
  struct error err = { 0 };
  for (struct deployment *dep = d->deployments, *next; dep; dep = next)
    {
      next = dep->link;
      if (strcmp (dep->project, m->project) || strcmp (dep->env, m->env)
          || !matches (m->service, dep->service) || n == 511)
        continue;
      removed[n++] = strdup (dep->id);
      deployment_remove (d, dep, &err);
    }
  removed[n] = NULL;
  if (n == 0 && m->service)
    client_error (cl, reqid, PROTO_E_NOT_FOUND, "no service `%s` in %s/%s", m->service,
                  m->project, m->env);
  else if (n == 0 && environment_get (d, m->project, m->env, false) == NULL)
    client_error (cl, reqid, PROTO_E_NOT_FOUND, "no environment %s/%s", m->project, m->env);
  else
    {
      struct environment *e = environment_get (d, m->project, m->env, false);
      if (e && m->service == NULL)
        {
          e->expires_at = 0;
          environment_drop_if_empty (d, e);
        }
      struct msg_down_result r = { removed };
      client_reply (cl, MSG_DOWN_RESULT, PROTO_F_REPLY, reqid, &r);
    }
  for (size_t i = 0; i < n; i++)
    free (removed[i]);
}

static void
do_env_list (struct client *cl, uint32_t reqid, const struct msg_env_list *m)
{
  struct daemon *d = cl->d;
  size_t n = 0;
  for (struct environment *e = d->envs; e; e = e->link)
    n++;
  struct msg_env_info *v = calloc (n + 1, sizeof *v);
  size_t k = 0;
  for (struct environment *e = d->envs; v && e; e = e->link)
    {
      if (!matches (m->project, e->project))
        continue;
      uint64_t services = 0;
      for (struct deployment *dep = d->deployments; dep; dep = dep->link)
        services += strcmp (dep->project, e->project) == 0 && strcmp (dep->env, e->env) == 0;
      v[k++] = (struct msg_env_info){ e->project, e->env, services,
                                      strcmp (e->env, "production") == 0, e->ttl_seconds,
                                      e->expires_at };
    }
  struct msg_env_list_result r = { v, k };
  client_reply (cl, MSG_ENV_LIST_RESULT, PROTO_F_REPLY, reqid, &r);
  free (v);
}

static void
do_status (struct client *cl, uint32_t reqid)
{
  struct daemon *d = cl->d;
  uint64_t n = 0, running = 0;
  for (struct deployment *dep = d->deployments; dep; dep = dep->link)
    {
      n++;
      running += dep->current && dep->current->state == INST_RUNNING;
    }
  char subnet[32] = "", a[16];
  net_addr_str (d->net.subnet, a);
  snprintf (subnet, sizeof subnet, "%s/%d", a, d->net.prefix);
  struct msg_status_result r = {
    .version = AGENTD_VERSION,
    .root = (char *) d->root,
    .cgroup = rt_runtime_cgroup_version (d->rt) == RT_CGROUP_V2 ? "v2" : "v1",
    .bridge = d->net_enabled ? d->net.bridge : "none",
    .subnet = subnet,
    .pid = (uint64_t) getpid (),
    .uptime_s = (uint64_t) (monotonic_seconds () - d->started_mono),
    .deployments = n,
    .running = running,
  };
  client_reply (cl, MSG_STATUS_RESULT, PROTO_F_REPLY, reqid, &r);
}

static void
do_usage (struct client *cl, uint32_t reqid, const struct msg_usage *m)
{
  struct daemon *d = cl->d;
  if (d->uplink)
    {
      /* The control plane's ledger holds what the journal has handed on. */
      struct error err = { 0 };
      if (uplink_usage (d->uplink, cl->serial, reqid, m, &err) < 0)
        client_error (cl, reqid, PROTO_E_FAILED, "%s", err.msg);
      return;
    }
  char dir[600];
  snprintf (dir, sizeof dir, "%s/journal", d->root);
  uint64_t since_ms = m->since_s ? ((uint64_t) time (NULL) - m->since_s) * 1000 : 0;
  struct usage_total *t;
  size_t n;
  struct error err = { 0 };
  if (usage_totals (dir, since_ms, &t, &n, &err) < 0)
    {
      client_error (cl, reqid, PROTO_E_FAILED, "%s", err.msg);
      return;
    }
  struct msg_usage_row *rows = calloc (n + 1, sizeof *rows);
  size_t k = 0;
  for (size_t i = 0; rows && i < n; i++)
    {
      /* ids are project.env.service */
      char project[32] = "", env[32] = "", service[32] = "";
      sscanf (t[i].id, "%31[^.].%31[^.].%31s", project, env, service);
      if (!matches (m->project, project) || !matches (m->env, env) || !matches (m->service, service))
        continue;
      rows[k++] = (struct msg_usage_row){ t[i].id,
                                          t[i].seconds,
                                          (uint64_t) (t[i].cpu_s * 1e6),
                                          (uint64_t) (t[i].gb_s * 1e9),
                                          t[i].rx,
                                          t[i].tx,
                                          (uint64_t) (usage_cost (&t[i]) * 1e9 + 0.5),
                                          (uint64_t) (t[i].disk_gb_s * 1e9) };
    }
  struct msg_usage_result r = { rows, k, "journal" };
  client_reply (cl, MSG_USAGE_RESULT, PROTO_F_REPLY, reqid, &r);
  free (rows);
  free (t);
}

static void
dispatch (struct client *cl, const struct proto_frame *f)
{
  uint32_t id = f->h.request_id;
  if (f->h.flags & PROTO_F_REPLY)
    {
      client_error (cl, id, PROTO_E_INVALID, "%s: agentd takes requests, not replies",
                    proto_msg_name (f->h.type));
      return;
    }
  const struct proto_msg_desc *desc = proto_msg_desc (f->h.type);
  union
  {
    struct msg_deploy deploy;
    struct msg_list list;
    struct msg_logs logs;
    struct msg_down down;
    struct msg_env_list env_list;
    struct msg_status status;
    struct msg_usage usage;
  } m;
  uint8_t t = f->h.type;
  bool request = t == MSG_DEPLOY || t == MSG_LIST || t == MSG_LOGS || t == MSG_DOWN
                 || t == MSG_ENV_LIST || t == MSG_STATUS || t == MSG_USAGE;
  if (desc == NULL || !request)
    {
      client_error (cl, id, PROTO_E_UNKNOWN_TYPE, "unknown request type 0x%02x", t);
      return;
    }
  struct error err = { 0 };
  if (proto_decode (t, f->payload, f->h.length, &m, &err) < 0)
    {
      client_error (cl, id, PROTO_E_MALFORMED, "%s", err.msg);
      return;
    }
  switch (t)
    {
    case MSG_DEPLOY:
      if (deploy_request (cl->d, cl, id, &m.deploy, &err) < 0)
        client_error (cl, id,
                      err.code == ENOENT   ? PROTO_E_NOT_FOUND
                      : err.code == EACCES ? PROTO_E_DENIED
                                           : PROTO_E_INVALID,
                      "%s", err.msg);
      break;
    case MSG_LIST: do_list (cl, id, &m.list); break;
    case MSG_LOGS: do_logs (cl, id, &m.logs); break;
    case MSG_DOWN: do_down (cl, id, &m.down); break;
    case MSG_ENV_LIST: do_env_list (cl, id, &m.env_list); break;
    case MSG_STATUS: do_status (cl, id); break;
    case MSG_USAGE: do_usage (cl, id, &m.usage); break;
    }
  proto_msg_clear (t, &m);
}

static void
on_client (struct loop_handler *h, uint32_t events)
{
  struct client *cl = container_of (h, struct client, h);
  struct error err = { 0 };
  if (events & EPOLLOUT)
    client_flush (cl);
  if (cl->conn.fd < 0 || cl->closing || !(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
    return;
  int r = proto_conn_read (&cl->conn, &err);
  struct proto_frame f;
  int got = 0;
  while (cl->conn.fd >= 0 && (got = proto_conn_next (&cl->conn, &f, &err)) == 1)
    dispatch (cl, &f);
  if (cl->conn.fd < 0)
    return;
  if (got < 0)
    {
      /* The framing is lost: say why, then close. */
      struct msg_error e = { err.code == EMSGSIZE ? PROTO_E_TOO_LARGE : PROTO_E_MALFORMED, err.msg };
      cl->closing = true;
      struct proto_buf b = { 0 };
      struct error ignored;
      if (proto_encode (MSG_ERROR, &e, &b, &ignored) == 0)
        proto_conn_queue (&cl->conn, MSG_ERROR, PROTO_F_REPLY, 0, &b, &ignored);
      proto_buf_free (&b);
      client_flush (cl);
      return;
    }
  if (r <= 0)
    client_drop (cl);
}

/* The control plane ran out of a project's credits: its workloads stop
 * (taken down as by deploy down), the control plane hears which, and its
 * deploys are refused until it says the credits are back. */
static void
stop_project (struct daemon *d, uint32_t reqid, const char *project)
{
  if (credit_stop_index (d, project) < 0 && d->n_credit_stops < 64)
    snprintf (d->credit_stops[d->n_credit_stops++], sizeof d->credit_stops[0], "%s", project);
  char *stopped[512];
  size_t n = 0;
  struct error err = { 0 };
  for (struct deployment *dep = d->deployments, *next; dep; dep = next)
    {
      next = dep->link;
      if (strcmp (dep->project, project) != 0 || n == 511)
        continue;
      stopped[n++] = strdup (dep->id);
      deployment_log (dep, LOG_AGENTD, "stopped: the control plane says project %s is out of "
                                       "credits", project);
      if (deployment_remove (d, dep, &err) < 0)
        fprintf (stderr, "agentd: %s\n", err.msg);
    }
  stopped[n] = NULL;
  fprintf (stderr, "agentd: project %s is out of credits: stopped %zu deployment(s)\n", project, n);
  uplink_stopped (d->uplink, reqid, project, stopped);
  for (size_t i = 0; i < n; i++)
    free (stopped[i]);
}

void
uplink_events (struct loop_handler *h, uint32_t events)
{
  (void) events;
  struct daemon *d = container_of (h, struct daemon, uplink_h);
  struct uplink_event ev;
  while (uplink_next_event (d->uplink, &ev) == 1)
    {
      int k;
      if (ev.kind == UPLINK_STOP_PROJECT)
        stop_project (d, ev.reqid, ev.project);
      else if (ev.kind == UPLINK_RESUME_PROJECT)
        {
          if ((k = credit_stop_index (d, ev.project)) >= 0)
            memcpy (d->credit_stops[k], d->credit_stops[--d->n_credit_stops], sizeof d->credit_stops[k]);
          fprintf (stderr, "agentd: project %s has credits again: deploys are taken\n", ev.project);
        }
      else
        {
          struct client *cl = d->clients;
          while (cl && cl->serial != ev.client)
            cl = cl->next;
          if (cl == NULL)
            ; /* it hung up meanwhile */
          else if (ev.type == MSG_USAGE_RESULT)
            client_reply (cl, MSG_USAGE_RESULT, PROTO_F_REPLY, ev.reqid, &ev.msg.usage);
          else
            client_error (cl, ev.reqid, ev.msg.error.code ? ev.msg.error.code : PROTO_E_FAILED,
                          "control plane: %s", ev.msg.error.message ? ev.msg.error.message : "?");
        }
      uplink_event_clear (&ev);
    }
}

static bool
peer_allowed (struct daemon *d, const struct ucred *cr)
{
  if (cr->uid == 0)
    return true;
  for (int i = 0; i < d->n_allow_uid; i++)
    if (d->allow_uid[i] == cr->uid)
      return true;
  return d->has_allow_gid && cr->gid == d->allow_gid;
}

void
api_accept (struct loop_handler *h, uint32_t events)
{
  (void) events;
  struct daemon *d = container_of (h, struct daemon, listen_h);
  for (;;)
    {
      int fd = accept4 (d->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0)
        return;
      struct client *cl = calloc (1, sizeof *cl);
      if (cl == NULL)
        {
          close (fd);
          continue;
        }
      cl->d = d;
      cl->serial = ++d->client_serial;
      proto_conn_init (&cl->conn, fd);
      cl->h.fn = on_client;
      cl->next = d->clients;
      d->clients = cl;
      struct error err = { 0 };
      if (loop_add (&d->loop, fd, EPOLLIN, &cl->h, &err) < 0)
        {
          client_drop (cl);
          continue;
        }
      struct ucred cr;
      socklen_t len = sizeof cr;
      if (getsockopt (fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0 || !peer_allowed (d, &cr))
        {
          cl->closing = true;
          client_error (cl, 0, PROTO_E_DENIED,
                        "uid %d may not use agentd (the socket policy allows root%s)",
                        (int) cr.uid, d->n_allow_uid || d->has_allow_gid ? " and the listed users or group" : " only");
        }
    }
}
